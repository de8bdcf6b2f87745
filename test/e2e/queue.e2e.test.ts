// End to end for the queue manager against a real cluster: sluice serving the webhooks (with
// webhooks.queueing on) and the kube-scheduler extender, and its queue manager releasing
// gated pods. Runs only when KUBECONFIG points at a reachable cluster and the sluice admin
// API is given (SLUICE_E2E_API_URL, SLUICE_API_TOKEN; SLUICE_E2E_CA_FILE for its CA when it
// is not in NODE_EXTRA_CA_CERTS); otherwise it reports itself skipped with the reason.
//
// It creates two 4-GPU nodes (Node objects with patched status, no kubelets), a namespace
// labelled sluice.io/managed=true, and a queue with 4 guaranteed GPUs; submits plain GPU
// pods with `kubectl create` (so the AdmissionReview warning can be read from its stderr);
// checks that pods within quota are released and bound by kube-scheduler through sluice,
// that pods beyond it stay gated with the reason visible in the admin API and as an Event,
// that finishing a pod releases the next one in FIFO order (and how long that takes), and
// that a gang of 2 goes whole or not at all. Pods "finish" by a status patch (phase
// Succeeded): with no kubelet nothing else would. Everything it creates is removed at the
// end. SLUICE_E2E_METRICS_URL (sluice's ops listener, e.g. http://127.0.0.1:8080) adds a
// check that the binds went through sluice's extender.
import t, { type Test } from 'tap';
import { getText, kubectlCreate, makeGpuNode, sluiceTarget, sluiceApi, removeTestObjects } from './cluster.js';
import { readFileSync } from 'node:fs';
import { CoreV1Api, PatchStrategy, Watch, setHeaderOptions, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';

const RUN = Date.now().toString(36);
const NS = `sluice-e2e-q-${RUN}`;
const QUEUE = `e2e-${RUN}`;
const GATE = 'sluice.io/queue';
const GPU = 'nvidia.com/gpu';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sum of a Prometheus counter over the series whose labels include `match`. */
function counter(metrics: string, name: string, match: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(match)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const { found, apiUrl, token, caFile, skip } = await sluiceTarget({
  test: 'the queue end-to-end test',
  cluster: 'sluice as webhook, scheduler extender and queue manager',
  kubectlFor: 'the test reads the submit-time warnings from `kubectl create`',
});

if (skip !== null || 'skip' in found) {
  t.comment(`queue end-to-end test skipped: ${skip}`);
  t.pass('skipped: no cluster or no sluice API', { skip: skip ?? 'no cluster' });
} else {
  const kc = found.kc;
  const core = kc.makeApiClient(CoreV1Api);
  const api = sluiceApi(apiUrl!, token!, caFile ? readFileSync(caFile) : undefined);
  const metricsUrl = process.env.SLUICE_E2E_METRICS_URL;
  const nodeNames = [`sluice-e2e-q-a-${RUN}`, `sluice-e2e-q-b-${RUN}`];
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  // Every pod of the namespace as the watch shows it: when its gate went and when it was bound.
  const seen = new Map<string, { gateRemovedAt?: number; boundAt?: number; node?: string }>();
  let watchAbort: AbortController | null = null;
  const onPod = (_phase: string, pod: V1Pod): void => {
    const name = pod.metadata?.name;
    if (!name) return;
    const s = seen.get(name) ?? {};
    const now = Date.now();
    const gated = (pod.spec?.schedulingGates ?? []).some((g) => g.name === GATE);
    if (!gated && s.gateRemovedAt === undefined) s.gateRemovedAt = now;
    if (pod.spec?.nodeName && s.boundAt === undefined) {
      s.boundAt = now;
      s.node = pod.spec.nodeName;
    }
    seen.set(name, s);
  };

  const makeNode = (name: string, gpus: number): Promise<void> => makeGpuNode(core, name, gpus, RUN, 'sluice queue e2e');

  /** A plain pod: no sluice labels; the namespace makes it sluice's and names its queue. */
  const gpuPod = (name: string, gpus: number, labels: Record<string, string> = {}): V1Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: {
      // Only this test's nodes: other nodes of the cluster must not change the answer.
      nodeSelector: { 'sluice.io/e2e': RUN },
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', resources: { limits: { [GPU]: String(gpus) } } }],
    },
  });

  const submit = async (t: Test, pod: V1Pod): Promise<string[]> => {
    const r = await kubectlCreate(pod);
    t.equal(r.code, 0, `kubectl create ${pod.metadata!.name} succeeds`, { stderr: r.stderr });
    return r.warnings;
  };

  const readPod = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: NS });
  const isGated = (p: V1Pod): boolean => (p.spec?.schedulingGates ?? []).some((g) => g.name === GATE);

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15000): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(50);
    }
  };
  const boundNode = (name: string): Promise<string> =>
    waitFor(`pod ${name} to be bound`, async () => {
      const p = await readPod(name);
      return p.spec?.nodeName || undefined;
    });
  const gateRemovedAt = (name: string, timeoutMs = 10000): Promise<number> =>
    waitFor(`the gate of pod ${name} to be removed`, async () => seen.get(name)?.gateRemovedAt, timeoutMs);
  /** Finishes a pod the way a kubelet would report it; returns when the patch was sent. */
  const finish = async (name: string): Promise<number> => {
    const at = Date.now();
    await core.patchNamespacedPodStatus({ name, namespace: NS, body: { status: { phase: 'Succeeded' } } }, merge);
    return at;
  };
  const podEvents = async (name: string, reason: string): Promise<CoreV1Event[]> =>
    (await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name},reason=${reason}` })).items;

  interface WaitingJob {
    position: number;
    name: string;
    waitingFor: string;
    reason: string;
    gangSize: number;
    podsSeen: number;
  }
  interface QueueJobs {
    waiting: WaitingJob[];
    running: Array<{ name: string; state: string }>;
  }
  const queueJobs = async (): Promise<QueueJobs> => {
    const r = await api('GET', `/api/v1/queues/${QUEUE}/jobs`);
    if (r.status !== 200) throw new Error(`GET /api/v1/queues/${QUEUE}/jobs answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body as QueueJobs;
  };

  const latencies: Array<{ what: string; ms: number }> = [];
  const bindsBefore = metricsUrl ? counter(await getText(`${metricsUrl}/metrics`), 'sluice_binds_total', 'result="bound"') : 0;

  t.before(async () => {
    const q = await api('PUT', `/api/v1/queues/${QUEUE}`, { limits: [{ resource: GPU, guaranteed: 4, bestEffortCap: 0 }] });
    if (q.status !== 201 && q.status !== 200) throw new Error(`PUT /api/v1/queues/${QUEUE} answered ${q.status}: ${JSON.stringify(q.body)}`);
    await core.createNamespace({ body: { metadata: { name: NS, labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': QUEUE } } } });
    for (const n of nodeNames) await makeNode(n, 4);
    watchAbort = await new Watch(kc).watch(`/api/v1/namespaces/${NS}/pods`, {}, onPod, () => undefined);
    // sluice sees the queue (NOTIFY) and the nodes (watch) within moments.
    await sleep(1000);
  });

  t.teardown(async () => {
    watchAbort?.abort();
    await removeTestObjects(core, NS, nodeNames);
    await api('DELETE', `/api/v1/queues/${QUEUE}`).catch(() => undefined);
    if (latencies.length > 0) {
      const ms = latencies.map((l) => l.ms).sort((a, b) => a - b);
      t.comment(
        `gate removal after the capacity event (status patch sent -> gate gone in the watch), ms: ${latencies.map((l) => `${l.what}=${l.ms}`).join(', ')}; min ${ms[0]}, median ${ms[Math.floor(ms.length / 2)]}, max ${ms[ms.length - 1]}`,
      );
    }
  });

  t.test('jobs within quota are released at once and bound by kube-scheduler through sluice', async (t) => {
    const w1 = await submit(t, gpuPod(`a1-${RUN}`, 2));
    t.same(w1, [`fits now: will be released at once (queue ${QUEUE})`], 'kubectl prints the submit-time warning');
    const n1 = await boundNode(`a1-${RUN}`);
    t.ok(nodeNames.includes(n1), `a1 bound to one of the test's nodes (${n1})`);
    const w2 = await submit(t, gpuPod(`a2-${RUN}`, 2));
    t.same(w2, [`fits now: will be released at once (queue ${QUEUE})`]);
    const n2 = await boundNode(`a2-${RUN}`);
    // binpack (sluice's prioritize): the node a1 left fuller, where the default scoring would spread.
    t.equal(n2, n1, 'a2 packed onto the node of a1 (sluice scored the nodes)');
    const pod = await readPod(`a1-${RUN}`);
    t.equal(pod.metadata?.labels?.['sluice.io/queue'], QUEUE, 'the webhook labelled the pod with the namespace default queue');
    t.equal(pod.spec?.priorityClassName, 'sluice-guaranteed');
    const released = await waitFor('a Released event on a1', async () => ((await podEvents(`a1-${RUN}`, 'Released')).length > 0 ? true : undefined), 5000);
    t.ok(released, 'a Released event on the pod');
    if (metricsUrl) {
      const after = counter(await getText(`${metricsUrl}/metrics`), 'sluice_binds_total', 'result="bound"');
      t.ok(after - bindsBefore >= 2, `sluice's extender bound the pods (sluice_binds_total{result="bound"} +${after - bindsBefore})`);
    }
  });

  // Submitted 1.1 s apart: creationTimestamp has 1 s resolution. Names run against the
  // submission order so that ordering by name would be caught.
  const waiters = [`w-c-${RUN}`, `w-b-${RUN}`, `w-a-${RUN}`];

  t.test('jobs beyond quota stay gated; the reason shows in the admin API and as an Event', async (t) => {
    for (const [i, name] of waiters.entries()) {
      if (i > 0) await sleep(1100);
      const w = await submit(t, gpuPod(name, 2));
      // The queue's reason, then the estimated start (docs/eta.md): the jobs holding the
      // quota declare no run time and have no history, so it cannot be known (never "now").
      const reason = `queued in ${QUEUE}: 4 of 4 guaranteed ${GPU} in use, job needs 2, position ${i + 1} of ${i + 1}`;
      t.equal(w.length, 1, `one warning for ${name}`);
      t.ok(w[0]?.startsWith(reason), `warning for ${name} starts with the reason: ${w[0]}`);
      t.match(w[0]?.slice(reason.length) ?? '', /^; (ETA not yet known|ETA not known: it waits on jobs whose run time is unknown .+)$/, `then the ETA`);
    }
    await sleep(1500);
    for (const name of waiters) {
      const p = await readPod(name);
      t.ok(isGated(p), `${name} still carries the gate`);
      t.notOk(p.spec?.nodeName, `${name} not bound`);
      const cond = (p.status?.conditions ?? []).find((c) => c.type === 'PodScheduled');
      t.equal(cond?.reason, 'SchedulingGated', `${name} is SchedulingGated`);
    }
    const jobs = await queueJobs();
    t.same(
      jobs.waiting.map((w) => [w.position, w.name, w.waitingFor]),
      waiters.map((n, i) => [i + 1, `pod-${n}`, 'quota']),
      'waiting in FIFO order, each for quota',
    );
    for (const w of jobs.waiting) t.equal(w.reason, `queue ${QUEUE}: 4 of 4 guaranteed ${GPU} in use, job needs 2`, `reason of ${w.name}`);
    t.same(jobs.running.map((r) => r.name).sort(), [`pod-a1-${RUN}`, `pod-a2-${RUN}`], 'running: the two jobs within quota');
    const one = await api('GET', `/api/v1/jobs/${NS}/pod-${waiters[0]}`);
    t.equal(one.status, 200);
    t.match(one.body, { state: 'queued', position: 1, waitingFor: 'quota', queue: QUEUE, gpus: 2 });
    const ev = await waitFor(`a Queued event on ${waiters[0]}`, async () => (await podEvents(waiters[0]!, 'Queued'))[0], 5000);
    t.match(ev.message, `waiting in queue ${QUEUE}, position 1 of `, 'the Event says where the job waits');
    t.match(ev.message, `4 of 4 guaranteed ${GPU} in use`, 'and why');
    t.equal(ev.source?.component, 'sluice-queue');
  });

  t.test('finishing a pod releases the next job in FIFO order, at once', async (t) => {
    const steps: Array<[finished: string, next: string]> = [
      [`a1-${RUN}`, waiters[0]!],
      [`a2-${RUN}`, waiters[1]!],
      [waiters[0]!, waiters[2]!],
    ];
    for (const [done, next] of steps) {
      const at = await finish(done);
      const removed = await gateRemovedAt(next);
      latencies.push({ what: `${done.replace(`-${RUN}`, '')}->${next.replace(`-${RUN}`, '')}`, ms: removed - at });
      t.ok(removed - at < 1500, `${next} released ${removed - at} ms after ${done} finished (< 1500 ms)`);
      await sleep(300); // anything released wrongly alongside would show by now
      const stillGated = waiters.filter((w) => seen.get(w)?.gateRemovedAt === undefined);
      t.same(stillGated, waiters.slice(waiters.indexOf(next) + 1), `only ${next} was released`);
      t.ok(nodeNames.includes(await boundNode(next)), `${next} bound`);
    }
    const order = [...waiters].sort((a, b) => seen.get(a)!.gateRemovedAt! - seen.get(b)!.gateRemovedAt!);
    t.same(order, waiters, 'released in submission order');
  });

  t.test('a gang of 2 is released whole, only when all of it fits', async (t) => {
    // Held now: w-b (2) and w-a (2): the queue's 4 are in use.
    const gang = [`g-0-${RUN}`, `g-1-${RUN}`];
    const labels = { 'sluice.io/job': `gang-${RUN}`, 'sluice.io/gang-size': '2' };
    const w0 = await submit(t, gpuPod(gang[0]!, 2, labels));
    t.match(w0[0], new RegExp(`^queued in ${QUEUE}: `), 'the first gang pod is queued');
    const jobs = await waitFor('the half gang in the queue', async () => (await queueJobs()).waiting.find((w) => w.name === `gang-${RUN}`), 5000);
    t.match(jobs, { waitingFor: 'gang', gangSize: 2, podsSeen: 1 });
    t.match(jobs.reason, 'gang: 1 of 2 pods seen');
    await submit(t, gpuPod(gang[1]!, 2, labels));
    // 2 GPUs of quota free: not enough for the gang's 4; neither pod may go.
    await finish(waiters[1]!);
    await sleep(1500);
    for (const g of gang) t.ok(isGated(await readPod(g)), `${g} still gated with half the room`);
    const waiting = (await queueJobs()).waiting.find((w) => w.name === `gang-${RUN}`);
    t.match(waiting, { waitingFor: 'quota', podsSeen: 2 }, 'the whole gang waits for quota');
    const at = await finish(waiters[2]!);
    const removed = await Promise.all(gang.map((g) => gateRemovedAt(g)));
    latencies.push({ what: 'w-a->gang', ms: Math.max(...removed) - at });
    t.ok(Math.abs(removed[0]! - removed[1]!) < 1000, `both gates removed together (${Math.abs(removed[0]! - removed[1]!)} ms apart)`);
    t.ok(Math.max(...removed) - at < 1500, `gang released ${Math.max(...removed) - at} ms after the room appeared`);
    for (const g of gang) t.ok(nodeNames.includes(await boundNode(g)), `${g} bound`);
  });

  t.test('FIFO holds for jobs submitted within the same second', async (t) => {
    // The gang holds the queue's 4 GPUs. Submit "z" then "a" inside one second.
    while (Date.now() % 1000 > 100) await sleep(10);
    const first = `fifo-z-${RUN}`;
    const second = `fifo-a-${RUN}`;
    await core.createNamespacedPod({ namespace: NS, body: gpuPod(first, 2) });
    await core.createNamespacedPod({ namespace: NS, body: gpuPod(second, 2) });
    const [cz, ca] = await Promise.all([readPod(first), readPod(second)]);
    t.comment(`creationTimestamps: ${first} ${cz.metadata?.creationTimestamp?.toISOString()}, ${second} ${ca.metadata?.creationTimestamp?.toISOString()}`);
    await sleep(500);
    await finish(`g-0-${RUN}`); // frees 2 GPUs of quota: room for one of them
    const winner = await Promise.race([gateRemovedAt(first).then(() => first), gateRemovedAt(second).then(() => second)]);
    t.equal(winner, first, `${first}, submitted first, is released first`);
  });

  t.test('a finished job reads as finished once its pods are gone', async (t) => {
    const name = `a1-${RUN}`;
    await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 });
    await sleep(3000); // the manager notices, the recorder writes (every second)
    const r = await api('GET', `/api/v1/jobs/${NS}/pod-${name}`);
    t.equal(r.status, 200);
    t.match(r.body, { state: 'finished' }, 'state finished, from Postgres');
    t.not((r.body as { finishedAt: unknown }).finishedAt, null, 'finishedAt set');
  });
}
