// End to end: best-effort preemption through the real kube-scheduler with sluice as its
// extender (manifests/scheduler/extender.yaml, with preemptVerb), sluice's webhooks, queue
// manager and PriorityClasses installed (manifests/). Runs only when KUBECONFIG points at a
// reachable cluster and SLUICE_E2E_QUEUE names a queue with at least 8 guaranteed
// nvidia.com/gpu and a best-effort cap of at least 16; otherwise it reports itself skipped.
// With SLUICE_E2E_API_URL + SLUICE_API_TOKEN (SLUICE_E2E_CA_FILE) it also reads the victims'
// job records, and with SLUICE_E2E_METRICS_URL (sluice's ops listener) its counters.
//
// 1. Two 8-GPU nodes filled with best-effort pods (node A: eight 1-GPU pods, node B: two
//    4-GPU pods), then a guaranteed 8-GPU pod: it is released by the queue manager (best-
//    effort GPUs count as free), kube-scheduler preempts exactly node B's two pods (the
//    fewest pods for the 8 GPUs), node A is untouched, the victims get sluice's Event and
//    job records in state `preempted`, sluice_preemptions_total counts it, the pod binds to B.
// 2. A mixed node (a guaranteed 2-GPU pod, best-effort 4-, 1- and 1-GPU pods): a guaranteed
//    4-GPU pod takes back only the 4-GPU best-effort pod.
// 3. kube-scheduler proposes a guaranteed pod (a lower-priority one, made while the class
//    had value 500, short of CPU for the preemptor): sluice refuses, nothing is deleted.
// 4. PriorityClasses as the cluster has them: sluice-best-effort recreated with value 10
//    while sluice runs, a best-effort pod is admitted with priority 10; with the class at
//    50 and PreemptLowerPriority, a best-effort preemptor preempts nothing; with the class
//    deleted, a pod is admitted with a warning naming it. The classes are restored.
// Without kubelets a deleted pod stays Terminating, so the test force-deletes pods once
// they are marked, as a kubelet would finish them. Everything it creates is removed.
import t from 'tap';
import { getText, kubectlCreate, reachableCluster, sluiceApi } from './cluster.js';
import { readFileSync } from 'node:fs';
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  SchedulingV1Api,
  setHeaderOptions,
  type V1Node,
  type V1Pod,
  type V1PriorityClass,
} from '@kubernetes/client-node';

const RUN = Date.now().toString(36);
const NS = `sluice-e2e-p-${RUN}`;
const QUEUE = process.env.SLUICE_E2E_QUEUE ?? '';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sum of a Prometheus counter over the series whose labels include every one of `match`. */
function counter(metrics: string, name: string, match: readonly string[]): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `)) || !match.every((m) => line.includes(m))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function preemptionCluster(): Promise<{ kc: KubeConfig } | { skip: string }> {
  const found = await reachableCluster('sluice as scheduler extender (with preemptVerb) and queue manager');
  if ('skip' in found) return found;
  if (!QUEUE) return { skip: 'SLUICE_E2E_QUEUE is not set: name a sluice queue with >= 8 guaranteed nvidia.com/gpu and a best-effort cap >= 16' };
  const kc = found.kc;
  for (const name of ['sluice-guaranteed', 'sluice-best-effort']) {
    try {
      await kc.makeApiClient(SchedulingV1Api).readPriorityClass({ name });
    } catch {
      return { skip: `PriorityClass ${name} does not exist: apply manifests/base/priorityclasses.yaml (or install sluice) first` };
    }
  }
  return { kc };
}

const found = await preemptionCluster();
if ('skip' in found) {
  t.comment(`preemption end-to-end tests skipped: ${found.skip}`);
  t.pass('skipped: no cluster', { skip: found.skip });
} else {
  const kc = found.kc;
  const core = kc.makeApiClient(CoreV1Api);
  const scheduling = kc.makeApiClient(SchedulingV1Api);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const GPU = 'nvidia.com/gpu';
  const BE_CLASS = 'sluice-best-effort';
  const G_CLASS = 'sluice-guaranteed';
  const nodes: string[] = [];
  const created = new Set<string>();
  const api =
    process.env.SLUICE_E2E_API_URL && process.env.SLUICE_API_TOKEN
      ? sluiceApi(
          process.env.SLUICE_E2E_API_URL,
          process.env.SLUICE_API_TOKEN,
          process.env.SLUICE_E2E_CA_FILE ? readFileSync(process.env.SLUICE_E2E_CA_FILE) : undefined,
        )
      : null;
  const metricsUrl = process.env.SLUICE_E2E_METRICS_URL;
  /** sluice_preemptions_total for this queue and reason (null without SLUICE_E2E_METRICS_URL). */
  const preemptions = async (reason: string): Promise<number | null> =>
    metricsUrl ? counter(await getText(`${metricsUrl}/metrics`), 'sluice_preemptions_total', [`queue="${QUEUE}"`, `reason="${reason}"`]) : null;
  const preemptedGpus = async (): Promise<number | null> =>
    metricsUrl ? counter(await getText(`${metricsUrl}/metrics`), 'sluice_preempted_gpus_total', []) : null;

  const makeNode = async (name: string): Promise<void> => {
    await core.createNode({
      body: {
        metadata: {
          name,
          labels: { 'kubernetes.io/hostname': name, 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB', 'nvidia.com/gpu.count': '8', 'sluice.io/e2e': RUN },
        },
      } as V1Node,
    });
    nodes.push(name);
    // TaintNodesByCondition put node.kubernetes.io/not-ready on it; no node controller lifts it here.
    await core.patchNode({ name, body: { spec: { taints: null } } }, merge);
    const alloc = { cpu: '64', memory: '256Gi', pods: '110', [GPU]: '8' };
    await core.patchNodeStatus(
      {
        name,
        body: {
          status: {
            capacity: alloc,
            allocatable: alloc,
            conditions: [
              { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'sluice e2e', lastHeartbeatTime: new Date(), lastTransitionTime: new Date() },
            ],
          },
        },
      },
      merge,
    );
  };

  const pod = (name: string, gpus: number, qos: 'guaranteed' | 'best-effort', node?: string, cpu?: string): V1Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { 'sluice.io/queue': QUEUE, 'sluice.io/qos': qos } },
    spec: {
      nodeSelector: node ? { 'kubernetes.io/hostname': node } : { 'sluice.io/e2e': RUN },
      tolerations: [{ operator: 'Exists' }],
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', resources: { ...(cpu ? { requests: { cpu } } : {}), limits: { [GPU]: String(gpus) } } }],
    },
  });
  const create = async (body: V1Pod): Promise<V1Pod> => {
    const p = await core.createNamespacedPod({ namespace: NS, body });
    created.add(body.metadata!.name!);
    return p;
  };

  const read = (name: string): Promise<V1Pod | null> => core.readNamespacedPod({ name, namespace: NS }).catch(() => null);
  const until = async <T>(what: () => Promise<T | null | undefined | false>, seconds: number, everyMs = 100): Promise<T | null> => {
    const end = Date.now() + seconds * 1000;
    for (;;) {
      const v = await what();
      if (v) return v;
      if (Date.now() > end) return null;
      await sleep(everyMs);
    }
  };
  const boundTo = (name: string): Promise<string | null> => until(async () => (await read(name))?.spec?.nodeName, 60);
  /** Acts as the kubelets: force-deletes the pods among `names` marked for deletion; returns them. */
  const reap = async (names: readonly string[], victims: Set<string>): Promise<void> => {
    for (const name of names) {
      const p = await read(name);
      if (p?.metadata?.deletionTimestamp) {
        victims.add(name);
        await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 }).catch(() => undefined);
      }
    }
  };
  /** Deletes pods at once and waits until the apiserver no longer has them. */
  const remove = async (names: readonly string[]): Promise<void> => {
    for (const name of names) await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 }).catch(() => undefined);
    await until(async () => (await Promise.all(names.map(read))).every((p) => p === null), 30, 250);
    for (const name of names) created.delete(name);
  };
  /** Watches pods for `seconds`: true if none of them was marked for deletion. */
  const untouchedFor = async (names: readonly string[], seconds: number): Promise<boolean> =>
    (await until(async () => (await Promise.all(names.map(read))).some((p) => !p || p.metadata?.deletionTimestamp), seconds, 250)) === null;

  // PriorityClasses: the originals are put back after the tests that replace them.
  const original = new Map<string, V1PriorityClass>();
  const putClass = async (name: string, value: number, preemptionPolicy: string): Promise<void> => {
    await scheduling.deletePriorityClass({ name }).catch(() => undefined);
    await until(
      async () =>
        await scheduling.readPriorityClass({ name }).then(
          () => false,
          () => true,
        ),
      10,
      100,
    );
    await scheduling.createPriorityClass({ body: { metadata: { name }, value, preemptionPolicy, description: `sluice e2e ${RUN}` } });
  };
  const restoreClass = async (name: string): Promise<void> => {
    const o = original.get(name);
    if (!o) return;
    const now = await scheduling.readPriorityClass({ name }).catch(() => null);
    if (now && now.value === o.value && now.preemptionPolicy === o.preemptionPolicy) return;
    await scheduling.deletePriorityClass({ name }).catch(() => undefined);
    await until(
      async () =>
        await scheduling.readPriorityClass({ name }).then(
          () => false,
          () => true,
        ),
      10,
      100,
    );
    await scheduling.createPriorityClass({
      body: { metadata: { name }, value: o.value, preemptionPolicy: o.preemptionPolicy, description: o.description, globalDefault: o.globalDefault },
    });
  };
  /** What the webhooks make of a pod now: a server-side dry run (the webhooks run; nothing is stored). */
  const dryRun = (body: V1Pod): Promise<{ pod: V1Pod } | { error: string }> =>
    core.createNamespacedPod({ namespace: NS, body, dryRun: 'All' }).then(
      (p) => ({ pod: p }),
      (e: unknown) => ({ error: String((e as { body?: unknown }).body ?? e) }),
    );
  /** Waits until sluice's informer has the class (a dry run gets `value`); returns the wait in ms, or null. */
  const sluiceSeesPriority = async (qos: 'guaranteed' | 'best-effort', value: number): Promise<number | null> => {
    const t0 = Date.now();
    const ok = await until(
      async () => {
        const r = await dryRun(pod(`dry-${RUN}`, 1, qos));
        return 'pod' in r && r.pod.spec?.priority === value;
      },
      10,
      50,
    );
    return ok ? Date.now() - t0 : null;
  };

  t.before(async () => {
    await core.createNamespace({ body: { metadata: { name: NS, labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': QUEUE } } } });
    for (const name of [G_CLASS, BE_CLASS]) original.set(name, await scheduling.readPriorityClass({ name }));
  });
  t.teardown(async () => {
    await restoreClass(G_CLASS).catch((e: unknown) => t.comment(`could not restore ${G_CLASS}: ${String(e)}`));
    await restoreClass(BE_CLASS).catch((e: unknown) => t.comment(`could not restore ${BE_CLASS}: ${String(e)}`));
    await remove([...created]);
    for (const n of nodes) await core.deleteNode({ name: n }).catch(() => undefined);
    await core.deleteNamespace({ name: NS }).catch(() => undefined);
  });

  t.test('a guaranteed 8-GPU pod takes back exactly the fewest best-effort pods', async (t) => {
    const [nodeA, nodeB] = [`sluice-e2e-pa-${RUN}`, `sluice-e2e-pb-${RUN}`];
    await makeNode(nodeA);
    await makeNode(nodeB);
    const fill: Array<[string, number, string]> = [
      ...Array.from({ length: 8 }, (_, i): [string, number, string] => [`be-a${i}-${RUN}`, 1, nodeA]),
      [`be-b0-${RUN}`, 4, nodeB],
      [`be-b1-${RUN}`, 4, nodeB],
    ];
    for (const [name, gpus, node] of fill) await create(pod(name, gpus, 'best-effort', node));
    for (const [name, , node] of fill) t.equal(await boundTo(name), node, `${name} bound`);
    const jobOf = new Map<string, string>();
    for (const [name] of fill) jobOf.set(name, (await read(name))?.metadata?.labels?.['sluice.io/job'] ?? '');
    const before = { preempted: await preemptions('preempted'), gpus: await preemptedGpus() };

    const train = `train-${RUN}`;
    const t0 = Date.now();
    await create(pod(train, 8, 'guaranteed'));
    const times: Record<string, number> = {};
    const victims = new Set<string>();
    const bound = await until(
      async () => {
        const p = await read(train);
        if (times.released === undefined && p && (p.spec?.schedulingGates ?? []).length === 0) times.released = Date.now() - t0;
        if (times.nominated === undefined && p?.status?.nominatedNodeName) times.nominated = Date.now() - t0;
        const n = victims.size;
        await reap(
          fill.map(([name]) => name),
          victims,
        );
        if (n === 0 && victims.size > 0) times.victimsMarked = Date.now() - t0;
        return p?.spec?.nodeName;
      },
      120,
      50,
    );
    times.bound = Date.now() - t0;
    t.comment(
      `guaranteed pod: created -> released ${times.released} ms, -> victims marked for deletion ${times.victimsMarked} ms, -> nominated ${times.nominated ?? '(not seen)'} ms, -> bound ${times.bound} ms (polled every 50 ms; victims force-deleted as soon as marked)`,
    );
    t.ok(times.released !== undefined, 'released (no scheduling gate left)');
    const trainPod = await read(train);
    t.equal(trainPod?.spec?.priorityClassName, G_CLASS, 'the webhook set the class');
    t.equal(trainPod?.spec?.priority, original.get(G_CLASS)?.value, "with the class's value");
    t.equal(bound, nodeB, 'bound to the node whose two pods made room');
    t.same([...victims].sort(), [`be-b0-${RUN}`, `be-b1-${RUN}`], "exactly node B's two pods were preempted");
    for (const [name, , node] of fill.filter(([, , n]) => n === nodeA)) {
      const p = await read(name);
      t.ok(p && !p.metadata?.deletionTimestamp && p.spec?.nodeName === node, `${name} untouched`);
    }
    for (const v of [`be-b0-${RUN}`, `be-b1-${RUN}`]) {
      const events = await until(
        async () => {
          const e = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${v},reason=PreemptedBySluice` });
          return e.items.length > 0 ? e.items : null;
        },
        10,
        250,
      );
      t.match(
        events?.[0]?.message ?? '',
        new RegExp(`^preempted by ${NS}/${train}, guaranteed in queue ${QUEUE}: 4 ${GPU} on node ${nodeB}`),
        `${v} has sluice's Event`,
      );
    }
    if (api) {
      for (const v of [`be-b0-${RUN}`, `be-b1-${RUN}`]) {
        const job = jobOf.get(v)!;
        const rec = await until(
          async () => {
            const r = await api('GET', `/api/v1/jobs/${NS}/${job}`);
            const b = r.body as { state?: string } | null;
            return r.status === 200 && b?.state === 'preempted' ? (b as { state: string; reason: string; qos: string; gpus: number }) : null;
          },
          10,
          250,
        );
        t.ok(rec, `job record ${NS}/${job} is in state preempted`, { last: (await api('GET', `/api/v1/jobs/${NS}/${job}`)).body });
        t.match(rec?.reason ?? '', `preempted by ${NS}/${train}, guaranteed in queue ${QUEUE}`, 'and says by whom');
        t.equal(rec?.qos, 'best-effort');
        t.equal(rec?.gpus, 4);
      }
      const trainJob = trainPod?.metadata?.labels?.['sluice.io/job'] ?? '';
      const tj = await api('GET', `/api/v1/jobs/${NS}/${trainJob}`);
      t.equal(tj.status, 200, "the preemptor's job is known");
      t.notOk(['preempted'].includes((tj.body as { state?: string }).state ?? ''), 'the preemptor is not recorded as preempted', { body: tj.body });
    } else t.comment('SLUICE_E2E_API_URL/SLUICE_API_TOKEN not set: job records not checked');
    if (metricsUrl) {
      t.equal((await preemptions('preempted'))! - before.preempted!, 1, 'sluice_preemptions_total{reason="preempted"} counted one preemption');
      t.equal((await preemptedGpus())! - before.gpus!, 8, 'sluice_preempted_gpus_total counted 8 GPUs');
    } else t.comment('SLUICE_E2E_METRICS_URL not set: counters not checked');
    // The next tests need the queue's guaranteed quota and best-effort cap back.
    await remove([...fill.map(([name]) => name), train]);
  });

  t.test('a mixed node: the guaranteed pod stays, only the fewest best-effort GPUs go', async (t) => {
    const nodeC = `sluice-e2e-pc-${RUN}`;
    await makeNode(nodeC);
    const g = `g-c-${RUN}`;
    const fill: Array<[string, number, 'guaranteed' | 'best-effort']> = [
      [g, 2, 'guaranteed'],
      [`be-c4-${RUN}`, 4, 'best-effort'],
      [`be-c1a-${RUN}`, 1, 'best-effort'],
      [`be-c1b-${RUN}`, 1, 'best-effort'],
    ];
    for (const [name, gpus, qos] of fill) await create(pod(name, gpus, qos, nodeC));
    for (const [name] of fill) t.equal(await boundTo(name), nodeC, `${name} bound`);
    const p = `p-c-${RUN}`;
    const t0 = Date.now();
    await create(pod(p, 4, 'guaranteed', nodeC));
    const victims = new Set<string>();
    const bound = await until(
      async () => {
        await reap(
          fill.map(([name]) => name),
          victims,
        );
        return (await read(p))?.spec?.nodeName;
      },
      60,
      50,
    );
    t.comment(`mixed node: guaranteed 4-GPU pod created -> bound ${Date.now() - t0} ms`);
    t.equal(bound, nodeC, 'the preemptor is bound');
    t.same([...victims], [`be-c4-${RUN}`], 'only the 4-GPU best-effort pod was preempted');
    for (const name of [g, `be-c1a-${RUN}`, `be-c1b-${RUN}`]) {
      const q = await read(name);
      t.ok(q && !q.metadata?.deletionTimestamp && q.spec?.nodeName === nodeC, `${name} untouched`);
    }
    await remove([...fill.map(([name]) => name), p]);
  });

  t.test('a guaranteed pod kube-scheduler proposes as a victim is never one', async (t) => {
    const nodeD = `sluice-e2e-pd-${RUN}`;
    await makeNode(nodeD);
    // A guaranteed pod of lower priority than the preemptor: made while the class had 500.
    await putClass(G_CLASS, 500, 'PreemptLowerPriority');
    t.ok(await sluiceSeesPriority('guaranteed', 500), 'sluice writes the new class value 500');
    const low = `g-low-${RUN}`;
    const be = `be-d-${RUN}`;
    await create(pod(low, 2, 'guaranteed', nodeD, '60'));
    await create(pod(be, 1, 'best-effort', nodeD, '2'));
    t.equal((await read(low))?.spec?.priority, 500, 'the guaranteed pod has priority 500');
    for (const name of [low, be]) t.equal(await boundTo(name), nodeD, `${name} bound`);
    await restoreClass(G_CLASS);
    t.ok(await sluiceSeesPriority('guaranteed', original.get(G_CLASS)!.value!), 'sluice writes the restored class value');
    // GPUs are free on the node; 10 CPUs are not: only removing the guaranteed pod (60 CPUs) makes room.
    const noVictimsBefore = await preemptions('no_victims');
    const p = `p-d-${RUN}`;
    await create(pod(p, 2, 'guaranteed', nodeD, '10'));
    if (metricsUrl) {
      const asked = await until(async () => (await preemptions('no_victims'))! > noVictimsBefore!, 30, 250);
      t.ok(asked, 'kube-scheduler asked sluice to preempt and sluice answered with no victims (sluice_preemptions_total{reason="no_victims"})');
    }
    t.ok(await untouchedFor([low, be], 5), 'nothing on the node was marked for deletion');
    const pp = await read(p);
    t.notOk(pp?.spec?.nodeName, 'the preemptor stays pending');
    t.notOk(pp?.status?.nominatedNodeName, 'and is not nominated to the node');
    await remove([p, low, be]);
  });

  t.test('PriorityClasses as the cluster has them; a best-effort preemptor preempts nothing', async (t) => {
    const nodeE = `sluice-e2e-pe-${RUN}`;
    await makeNode(nodeE);
    await putClass(BE_CLASS, 10, 'Never');
    const seen = await sluiceSeesPriority('best-effort', 10);
    t.ok(seen !== null, `sluice writes the class value 10 (seen after ${seen} ms)`);
    const be = `be-e-${RUN}`;
    const made = await kubectlCreate(pod(be, 4, 'best-effort', nodeE, '60'));
    created.add(be);
    t.equal(made.code, 0, 'a best-effort pod is admitted with the class at value 10', { stderr: made.stderr });
    t.notMatch(made.stderr, 'must not be provided');
    t.equal((await read(be))?.spec?.priority, 10, 'with spec.priority 10');
    t.equal(await boundTo(be), nodeE, `${be} bound`);

    // A best-effort pod that may preempt by its class (50 > 10, PreemptLowerPriority) and is
    // short of CPU on a node with free GPUs: kube-scheduler proposes the best-effort pod; sluice
    // must refuse because the preemptor is itself best-effort.
    await putClass(BE_CLASS, 50, 'PreemptLowerPriority');
    t.ok(await sluiceSeesPriority('best-effort', 50), 'sluice writes the class value 50');
    const before = await preemptions('best_effort_preemptor');
    const x = `be-x-${RUN}`;
    await create(pod(x, 2, 'best-effort', nodeE, '10'));
    t.equal((await read(x))?.spec?.preemptionPolicy, 'PreemptLowerPriority', 'the best-effort preemptor may preempt by its class');
    if (metricsUrl) {
      const asked = await until(async () => (await preemptions('best_effort_preemptor'))! > before!, 30, 250);
      t.ok(asked, 'kube-scheduler asked sluice; sluice answered best_effort_preemptor');
    }
    t.ok(await untouchedFor([be], 5), 'the best-effort pod on the node was not preempted');
    t.notOk((await read(x))?.spec?.nodeName, 'the best-effort preemptor stays pending');
    await remove([x]);

    // The class deleted: admitted unchanged on that point, with a warning naming the class.
    await scheduling.deletePriorityClass({ name: BE_CLASS });
    const warned = await until(
      async () => {
        const r = await kubectlCreate(pod(`dry-${RUN}`, 1, 'best-effort', nodeE), ['--dry-run=server']);
        return r.warnings.some((w) => w.includes(`PriorityClass ${BE_CLASS}`)) ? r : null;
      },
      10,
      100,
    );
    t.ok(warned, 'sluice sees the class is gone');
    const orphan = `be-noclass-${RUN}`;
    const r = await kubectlCreate(pod(orphan, 1, 'best-effort', nodeE));
    created.add(orphan);
    t.equal(r.code, 0, 'a best-effort pod is admitted without its class', { stderr: r.stderr });
    t.ok(
      r.warnings.some(
        (w) => w.startsWith(`PriorityClass ${BE_CLASS} (sluice.io/qos=best-effort) does not exist`) && w.includes(`kubectl create priorityclass ${BE_CLASS}`),
      ),
      'with a warning naming the missing class and how to create it',
      { warnings: r.warnings },
    );
    const op = await read(orphan);
    t.not(op?.spec?.priorityClassName, BE_CLASS, 'the missing class is not written on the pod');
    await restoreClass(BE_CLASS);
    t.equal((await scheduling.readPriorityClass({ name: BE_CLASS })).value, original.get(BE_CLASS)!.value, 'the class is restored');
    await remove([be, orphan]);
  });
}
