// End to end for job frameworks against a real control plane: sluice serving the webhooks
// (webhooks.queueing on, jobFrameworks on) and the queue manager, with its RBAC from
// manifests/base/rbac.yaml. Runs only when KUBECONFIG points at a reachable cluster and the
// sluice admin API is given (SLUICE_E2E_API_URL, SLUICE_API_TOKEN, SLUICE_E2E_CA_FILE as in
// queue.e2e.test.ts); otherwise it reports itself skipped with the reason.
//
// No operator runs in the test cluster: the test installs minimal CRDs for PyTorchJob and
// JobSet (group, kind and versions as the operators publish them, schema left open) unless
// the cluster has them, creates the custom resources, and makes their children as the
// operators would: the PyTorchJob's pods with an owner reference to it; the JobSet's child
// Jobs with an owner reference to it, whose pods kube-controller-manager's Job controller
// makes. It checks that each gang waits whole (no gate removed before its last member
// exists), is released whole, that a Job labelled only with kueue.x-k8s.io/queue-name lands
// in that sluice queue, and that deleting a workload removes its gated pods (garbage
// collection) and leaves nothing waiting. Nodes are Node objects with patched status (no
// kubelets). Everything it creates is removed at the end.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1CustomResourceDefinition,
  type V1Pod,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import { makeGpuNode, sluiceTarget, sluiceApi, removeTestObjects } from './cluster.js';

const RUN = Date.now().toString(36);
const NS = `sluice-e2e-jobs-${RUN}`;
const QUEUE = `e2e-jobs-${RUN}`;
const KUEUE_QUEUE = `e2e-kueue-${RUN}`;
const GATE = 'sluice.io/queue';
const GPU = 'nvidia.com/gpu';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const { found, apiUrl, token, caFile, skip } = await sluiceTarget({
  test: 'the job frameworks end-to-end test',
  cluster: 'sluice as webhook and queue manager',
});

if (skip !== null || 'skip' in found) {
  t.comment(`job frameworks end-to-end test skipped: ${skip}`);
  t.pass('skipped: no cluster or no sluice API', { skip: skip ?? 'no cluster' });
} else {
  const kc = found.kc;
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const api = sluiceApi(apiUrl!, token!, caFile ? readFileSync(caFile) : undefined);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const nodeNames = [`sluice-e2e-jobs-a-${RUN}`, `sluice-e2e-jobs-b-${RUN}`];
  const createdCrds: string[] = [];

  // When each pod of the namespace lost its gate, as the watch shows it.
  const gateRemovedAt = new Map<string, number>();
  const createdAt = new Map<string, number>();
  let watchAbort: AbortController | null = null;
  const onPod = (_phase: string, pod: V1Pod): void => {
    const name = pod.metadata?.name;
    if (!name) return;
    if (!createdAt.has(name)) createdAt.set(name, Date.now());
    const gated = (pod.spec?.schedulingGates ?? []).some((g) => g.name === GATE);
    if (!gated && !gateRemovedAt.has(name)) gateRemovedAt.set(name, Date.now());
  };

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20000): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(100);
    }
  };

  const crd = (group: string, kind: string, plural: string, versions: string[]): V1CustomResourceDefinition => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
      })),
    },
  });
  const installCrd = async (c: V1CustomResourceDefinition): Promise<void> => {
    const name = c.metadata!.name!;
    try {
      await ext.createCustomResourceDefinition({ body: c });
      createdCrds.push(name);
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e; // the cluster has it already (a real operator): use it
    }
    await waitFor(`CRD ${name} to be established`, async () => {
      const got = await ext.readCustomResourceDefinition({ name });
      return (got.status?.conditions ?? []).some((x) => x.type === 'Established' && x.status === 'True') ? true : undefined;
    });
  };

  const makeNode = (name: string, gpus: number): Promise<void> => makeGpuNode(core, name, gpus, RUN, 'sluice jobs e2e');

  /** A pod template as an operator's manifest has it: no sluice labels at all. */
  const podTemplate = (gpus: number): V1PodTemplateSpec => ({
    metadata: {},
    spec: {
      nodeSelector: { 'sluice.io/e2e': RUN },
      terminationGracePeriodSeconds: 0,
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', resources: { limits: { [GPU]: String(gpus) } } }],
    },
  });

  const isGated = (p: V1Pod): boolean => (p.spec?.schedulingGates ?? []).some((g) => g.name === GATE);
  const podsOf = async (selector: (p: V1Pod) => boolean): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: NS })).items.filter(selector);

  t.before(async () => {
    const q = await api('PUT', `/api/v1/queues/${QUEUE}`, { limits: [{ resource: GPU, guaranteed: 8, bestEffortCap: 0 }] });
    if (q.status !== 201 && q.status !== 200) throw new Error(`PUT /api/v1/queues/${QUEUE} answered ${q.status}: ${JSON.stringify(q.body)}`);
    const k = await api('PUT', `/api/v1/queues/${KUEUE_QUEUE}`, { limits: [{ resource: GPU, guaranteed: 2, bestEffortCap: 0 }] });
    if (k.status !== 201 && k.status !== 200) throw new Error(`PUT /api/v1/queues/${KUEUE_QUEUE} answered ${k.status}: ${JSON.stringify(k.body)}`);
    await installCrd(crd('kubeflow.org', 'PyTorchJob', 'pytorchjobs', ['v1']));
    await installCrd(crd('jobset.x-k8s.io', 'JobSet', 'jobsets', ['v1alpha2']));
    await installCrd(crd('ray.io', 'RayCluster', 'rayclusters', ['v1']));
    await installCrd(crd('leaderworkerset.x-k8s.io', 'LeaderWorkerSet', 'leaderworkersets', ['v1']));
    await core.createNamespace({ body: { metadata: { name: NS, labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': QUEUE } } } });
    for (const n of nodeNames) await makeNode(n, 4);
    watchAbort = await new Watch(kc).watch(`/api/v1/namespaces/${NS}/pods`, {}, onPod, () => undefined);
    await sleep(1000);
  });

  t.teardown(async () => {
    watchAbort?.abort();
    await removeTestObjects(core, NS, nodeNames);
    for (const name of createdCrds) await ext.deleteCustomResourceDefinition({ name }).catch(() => undefined);
    await api('DELETE', `/api/v1/queues/${QUEUE}`).catch(() => undefined);
    await api('DELETE', `/api/v1/queues/${KUEUE_QUEUE}`).catch(() => undefined);
  });

  /** A custom resource of one of the CRDs above; its uid, for owner references. */
  const createCr = async (apiVersion: string, kind: string, plural: string, name: string, spec: object): Promise<{ uid: string }> => {
    const [group, version] = apiVersion.split('/') as [string, string];
    const body = { apiVersion, kind, metadata: { name, namespace: NS }, spec };
    const made = (await custom.createNamespacedCustomObject({ group, version, namespace: NS, plural, body })) as { metadata: { uid: string } };
    return { uid: made.metadata.uid };
  };
  const createPyTorchJob = (name: string, workers: number, gpus: number): Promise<{ uid: string }> =>
    createCr('kubeflow.org/v1', 'PyTorchJob', 'pytorchjobs', name, {
      pytorchReplicaSpecs: { Master: { replicas: 1, template: podTemplate(gpus) }, Worker: { replicas: workers, template: podTemplate(gpus) } },
    });

  /** Who makes the pods of a kind, and the label its operator puts on them. */
  type Operator = { apiVersion: string; kind: string; nameLabel: string };
  const TRAINING: Operator = { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', nameLabel: 'training.kubeflow.org/job-name' };
  const KUBERAY: Operator = { apiVersion: 'ray.io/v1', kind: 'RayCluster', nameLabel: 'ray.io/cluster' };
  /** A pod as the operator makes it: owned by the workload, from its template. */
  const createOwnedPod = async (job: string, uid: string, name: string, gpus: number, op: Operator = TRAINING): Promise<void> => {
    const tpl = podTemplate(gpus);
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: {
          name,
          namespace: NS,
          labels: { [op.nameLabel]: job },
          ownerReferences: [{ apiVersion: op.apiVersion, kind: op.kind, name: job, uid, controller: true, blockOwnerDeletion: true }],
        },
        spec: tpl.spec!,
      },
    });
  };
  /** Pods never run here (no kubelet): mark them done so their GPUs and quota are free again. */
  const finishPods = async (selector: (p: V1Pod) => boolean): Promise<void> => {
    for (const p of await podsOf(selector)) {
      await core.patchNamespacedPodStatus({ name: p.metadata!.name!, namespace: NS, body: { status: { phase: 'Succeeded' } } }, merge);
    }
  };
  /** Checks a gang that waits with some members: each gated, named and sized from its workload. */
  const expectWaiting = (t: Test, pods: V1Pod[], job: string, size: number, why: string): void => {
    for (const p of pods) {
      t.ok(isGated(p), `${p.metadata!.name} gated: ${why}`);
      t.equal(p.metadata?.labels?.['sluice.io/job'], job, `job ${job}`);
      t.equal(p.metadata?.labels?.['sluice.io/gang-size'], String(size), `gang size ${size} from the workload spec`);
    }
  };
  /** Waits until every named pod lost its gate; checks none lost it before `lastAt`. */
  const expectReleasedWhole = async (t: Test, names: string[], lastAt: number): Promise<void> => {
    await waitFor(`${names.length} gates removed`, async () => (names.every((n) => gateRemovedAt.has(n)) ? true : undefined));
    const removed = names.map((n) => gateRemovedAt.get(n)!);
    t.ok(
      removed.every((at) => at >= lastAt),
      'no gate removed before the last member existed',
    );
    t.comment(
      `gang of ${names.length} released ${Math.max(...removed) - lastAt} ms after its last member was created; gates removed within ${Math.max(...removed) - Math.min(...removed)} ms of each other`,
    );
  };

  t.test('a PyTorchJob waits whole and is released whole', async (t) => {
    const job = `mnist-${RUN}`;
    const { uid } = await createPyTorchJob(job, 3, 2); // 4 pods x 2 GPUs: 8, the queue's quota
    const names = [`${job}-master-0`, `${job}-worker-0`, `${job}-worker-1`, `${job}-worker-2`];
    for (const n of names.slice(0, 3)) await createOwnedPod(job, uid, n, 2);
    await sleep(3000);
    expectWaiting(t, await podsOf((p) => p.metadata!.name!.startsWith(job)), `pytorchjob-${job}`, 4, '3 of 4 members');
    const waiting = await api('GET', `/api/v1/jobs/${NS}/pytorchjob-${job}`);
    t.match(waiting.body, { state: 'queued', waitingFor: 'gang' }, 'the admin API says it waits for its gang');
    const lastAt = Date.now();
    await createOwnedPod(job, uid, names[3]!, 2);
    await expectReleasedWhole(t, names, lastAt);
  });

  t.test("a JobSet's child Jobs are one gang: pods from the Job controller wait for the other Job", async (t) => {
    // A queue with 8 GPUs, 8 already held by the PyTorchJob above: free them first.
    await finishPods((p) => p.metadata!.name!.startsWith(`mnist-${RUN}`));
    const js = `llm-${RUN}`;
    const made = await createCr('jobset.x-k8s.io/v1alpha2', 'JobSet', 'jobsets', js, {
      replicatedJobs: [{ name: 'workers', replicas: 2, template: { spec: { parallelism: 2, completions: 2, template: podTemplate(1) } } }],
    });
    const owner = [{ apiVersion: 'jobset.x-k8s.io/v1alpha2', kind: 'JobSet', name: js, uid: made.uid, controller: true, blockOwnerDeletion: true }];
    const childJob = (i: number) => ({
      metadata: { name: `${js}-workers-${i}`, namespace: NS, ownerReferences: owner, labels: { 'jobset.sigs.k8s.io/jobset-name': js } },
      spec: { parallelism: 2, completions: 2, backoffLimit: 0, template: podTemplate(1) },
    });
    await batch.createNamespacedJob({ namespace: NS, body: childJob(0) });
    const first = await waitFor('the Job controller to create 2 pods', async () => {
      const pods = await podsOf((p) => p.metadata?.labels?.['batch.kubernetes.io/job-name'] === `${js}-workers-0`);
      return pods.length === 2 ? pods : undefined;
    });
    await sleep(3000);
    expectWaiting(
      t,
      await podsOf((p) => first.some((f) => f.metadata!.name === p.metadata!.name)),
      `jobset-${js}`,
      4,
      '2 of 4 members (named after the JobSet, not the child Job; replicas x parallelism)',
    );
    const lastAt = Date.now();
    await batch.createNamespacedJob({ namespace: NS, body: childJob(1) });
    const all = await waitFor('four JobSet pods released', async () => {
      const pods = await podsOf((p) => p.metadata?.labels?.['sluice.io/job'] === `jobset-${js}`);
      return pods.length === 4 && pods.every((p) => gateRemovedAt.has(p.metadata!.name!)) ? pods : undefined;
    });
    t.ok(
      all.every((p) => gateRemovedAt.get(p.metadata!.name!)! >= lastAt),
      'none released before the second Job existed',
    );
  });

  t.test('a Job labelled only with kueue.x-k8s.io/queue-name lands in that sluice queue', async (t) => {
    const name = `kueue-${RUN}`;
    await batch.createNamespacedJob({
      namespace: NS,
      body: {
        metadata: { name, namespace: NS, labels: { 'kueue.x-k8s.io/queue-name': KUEUE_QUEUE } },
        spec: { parallelism: 1, completions: 1, backoffLimit: 0, template: podTemplate(1) },
      },
    });
    const pod = await waitFor("the Job's pod", async () => (await podsOf((p) => p.metadata?.labels?.['batch.kubernetes.io/job-name'] === name))[0]);
    t.equal(pod.metadata?.labels?.['kueue.x-k8s.io/queue-name'], undefined, 'the Job controller did not copy the label to the pod');
    t.equal(pod.metadata?.labels?.['sluice.io/queue'], KUEUE_QUEUE, 'yet the pod is in the queue the Job names');
    await waitFor('its gate removed', async () => (gateRemovedAt.has(pod.metadata!.name!) ? true : undefined));
  });

  t.test('deleting a waiting workload removes its gated pods and leaves nothing waiting', async (t) => {
    const job = `gone-${RUN}`;
    const { uid } = await createPyTorchJob(job, 3, 1);
    await createOwnedPod(job, uid, `${job}-master-0`, 1);
    await createOwnedPod(job, uid, `${job}-worker-0`, 1);
    await sleep(1000);
    t.ok((await podsOf((p) => p.metadata!.name!.startsWith(job))).every(isGated), 'two of four: gated');
    await custom.deleteNamespacedCustomObject({
      group: 'kubeflow.org',
      version: 'v1',
      namespace: NS,
      plural: 'pytorchjobs',
      name: job,
      propagationPolicy: 'Background',
    });
    // The garbage collector learns new CRDs from discovery (every 30 s or so): allow for that.
    await waitFor(
      'the garbage collector to delete the pods',
      async () => ((await podsOf((p) => p.metadata!.name!.startsWith(job))).length === 0 ? true : undefined),
      90000,
    );
    const r = await waitFor(
      'the job to leave the queue',
      async () => {
        const jobs = (await api('GET', `/api/v1/queues/${QUEUE}/jobs`)).body as { waiting: Array<{ name: string }> };
        return jobs.waiting.some((w) => w.name === `pytorchjob-${job}`) ? undefined : jobs;
      },
      10000,
    );
    t.ok(r, 'nothing of it waits');
  });
  t.test('a RayCluster waits whole (head + minReplicas workers) and a worker the autoscaler adds starts on its own', async (t) => {
    await finishPods((p) => p.spec?.nodeName !== undefined); // free the nodes and the queue's quota
    const rc = `ray-${RUN}`;
    const { uid } = await createCr('ray.io/v1', 'RayCluster', 'rayclusters', rc, {
      enableInTreeAutoscaling: true,
      headGroupSpec: { rayStartParams: {}, template: podTemplate(1) },
      workerGroupSpecs: [{ groupName: 'gpu', replicas: 2, minReplicas: 2, maxReplicas: 4, rayStartParams: {}, template: podTemplate(1) }],
    });
    const names = [`${rc}-head`, `${rc}-gpu-worker-0`, `${rc}-gpu-worker-1`];
    for (const n of names.slice(0, 2)) await createOwnedPod(rc, uid, n, 1, KUBERAY);
    await sleep(3000);
    expectWaiting(t, await podsOf((p) => p.metadata!.name!.startsWith(rc)), `raycluster-${rc}`, 3, 'head and 1 of 2 workers');
    const lastAt = Date.now();
    await createOwnedPod(rc, uid, names[2]!, 1, KUBERAY);
    await expectReleasedWhole(t, names, lastAt);
    const extra = `${rc}-gpu-worker-2`; // above minReplicas: an elastic member, no new gang to wait for
    await createOwnedPod(rc, uid, extra, 1, KUBERAY);
    await waitFor('the autoscaled worker released alone', async () => (gateRemovedAt.has(extra) ? true : undefined));
    t.pass('the autoscaled worker started without a second gang');
  });

  t.test('a LeaderWorkerSet group is one gang: the leader waits for its workers', async (t) => {
    const lws = `lws-${RUN}`;
    const { uid } = await createCr('leaderworkerset.x-k8s.io/v1', 'LeaderWorkerSet', 'leaderworkersets', lws, {
      replicas: 1,
      leaderWorkerTemplate: { size: 3, workerTemplate: podTemplate(1) },
    });
    // As the LWS controller (and its pod webhook, for the group index) would: a leader
    // StatefulSet owned by the LWS, then a worker StatefulSet owned by the leader pod.
    // kube-controller-manager's StatefulSet controller makes the pods.
    const statefulSet = (name: string, replicas: number, owner: { apiVersion: string; kind: string; name: string; uid: string }) => {
      const labels = { 'leaderworkerset.sigs.k8s.io/name': lws, 'leaderworkerset.sigs.k8s.io/group-index': '0', 'sluice-e2e/sts': name };
      const tpl = podTemplate(1);
      return {
        metadata: { name, namespace: NS, ownerReferences: [{ ...owner, controller: true, blockOwnerDeletion: true }] },
        spec: {
          replicas,
          serviceName: lws,
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { ...tpl.spec!, restartPolicy: 'Always' } },
        },
      };
    };
    await apps.createNamespacedStatefulSet({
      namespace: NS,
      body: statefulSet(lws, 1, { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: lws, uid }),
    });
    const leader = await waitFor('the StatefulSet controller to create the leader', async () => (await podsOf((p) => p.metadata!.name === `${lws}-0`))[0]);
    await sleep(3000);
    expectWaiting(t, await podsOf((p) => p.metadata!.name === `${lws}-0`), `leaderworkerset-${lws}-0`, 3, 'leader without its 2 workers');
    const lastAt = Date.now();
    await apps.createNamespacedStatefulSet({
      namespace: NS,
      body: statefulSet(`${lws}-0`, 2, { apiVersion: 'v1', kind: 'Pod', name: leader.metadata!.name!, uid: leader.metadata!.uid! }),
    });
    await expectReleasedWhole(t, [`${lws}-0`, `${lws}-0-0`, `${lws}-0-1`], lastAt);
  });
}
