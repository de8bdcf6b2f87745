// End to end for estimated start times (docs/eta.md) against a real cluster: sluice serving
// the webhooks (webhooks.queueing on), the extender and the queue manager. Runs only when
// KUBECONFIG points at a reachable cluster and the sluice admin API is given
// (SLUICE_E2E_API_URL, SLUICE_API_TOKEN; SLUICE_E2E_CA_FILE for its CA); otherwise it
// reports itself skipped with the reason.
//
// It makes one 4-GPU node (a Node object with patched status, no kubelet), a namespace
// labelled sluice.io/managed=true and a queue of 4 guaranteed GPUs with a maxDuration of
// 1 h. A first job of 4 GPUs declaring sluice.io/expected-duration 10m is released and
// bound; a second job of 4 GPUs then waits for quota, and its submit warning (read from
// `kubectl create`) must carry an ETA of about the first job's remaining time, not "now";
// GET /api/v1/jobs/... must show estimatedStartTime once the background forecast has run.
// Bad input: a malformed duration and one beyond the queue's maxDuration are denied.
// Everything it creates is removed at the end.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { kubectlCreate, makeGpuNode, sluiceTarget, removeTestObjects, sluiceApi } from './cluster.js';

const RUN = Date.now().toString(36);
const NS = `sluice-e2e-eta-${RUN}`;
const QUEUE = `e2e-eta-${RUN}`;
const GPU = 'nvidia.com/gpu';
const MIN = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const { found, apiUrl, token, caFile, skip } = await sluiceTarget({
  test: 'the ETA end-to-end test',
  cluster: 'sluice as webhook, scheduler extender and queue manager',
  kubectlFor: 'the test reads the submit-time warnings from `kubectl create`',
});

if (skip !== null || 'skip' in found) {
  t.comment(`ETA end-to-end test skipped: ${skip}`);
  t.pass('skipped: no cluster or no sluice API', { skip: skip ?? 'no cluster' });
} else {
  const core = found.kc.makeApiClient(CoreV1Api);
  const api = sluiceApi(apiUrl!, token!, caFile ? readFileSync(caFile) : undefined);
  const nodeName = `sluice-e2e-eta-${RUN}`;

  /** A plain pod: the namespace makes it sluice's and names its queue. */
  const gpuPod = (name: string, gpus: number, expected?: string): V1Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, ...(expected ? { annotations: { 'sluice.io/expected-duration': expected } } : {}) },
    spec: {
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
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15000): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(100);
    }
  };
  const boundNode = (name: string): Promise<string> =>
    waitFor(`pod ${name} to be bound`, async () => (await core.readNamespacedPod({ name, namespace: NS })).spec?.nodeName || undefined);

  t.before(async () => {
    const q = await api('PUT', `/api/v1/queues/${QUEUE}`, { maxDurationSeconds: 3600, limits: [{ resource: GPU, guaranteed: 4, bestEffortCap: 0 }] });
    if (q.status !== 201 && q.status !== 200) throw new Error(`PUT /api/v1/queues/${QUEUE} answered ${q.status}: ${JSON.stringify(q.body)}`);
    await core.createNamespace({ body: { metadata: { name: NS, labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': QUEUE } } } });
    await makeGpuNode(core, nodeName, 4, RUN, 'sluice ETA e2e');
    await sleep(1000); // sluice sees the queue (NOTIFY) and the node (watch)
  });

  t.teardown(async () => {
    await removeTestObjects(core, NS, [nodeName]);
    await api('DELETE', `/api/v1/queues/${QUEUE}`).catch(() => undefined);
  });

  const first = `run-${RUN}`;
  const second = `wait-${RUN}`;

  t.test('a waiting job behind a running job of known duration gets its ETA in the warning and the API', async (t) => {
    const w1 = await submit(t, gpuPod(first, 4, '10m'));
    t.same(w1, [`fits now: will be released at once (queue ${QUEUE})`], 'the first job fits');
    t.equal(await boundNode(first), nodeName, 'and is bound');
    const firstPod = await core.readNamespacedPod({ name: first, namespace: NS });
    // No kubelet: no status.startTime, so sluice counts the run from the pod's creation.
    const startedMs = new Date(firstPod.status?.startTime ?? firstPod.metadata!.creationTimestamp!).getTime();
    const expectedStart = startedMs + 10 * MIN;

    const submittedMs = Date.now();
    const w2 = await submit(t, gpuPod(second, 4, '20m'));
    t.equal(w2.length, 1, 'one warning');
    const reason = `queued in ${QUEUE}: 4 of 4 guaranteed ${GPU} in use, job needs 4, position 1 of 1`;
    t.ok(w2[0]?.startsWith(reason), `the reason first: ${w2[0]}`);
    const eta = w2[0]?.slice(reason.length) ?? '';
    t.notMatch(eta, /start now|no running job to wait for/, 'not "now": the running job holds the quota');
    const m = /^; expected start in about (\d+) min \(from 1 declared duration\)$/.exec(eta);
    t.ok(m, `an ETA from the one declared duration: "${eta}"`);
    const left = (expectedStart - submittedMs) / MIN;
    if (m) t.ok(Math.abs(Number(m[1]) - left) <= 1, `about the first job's remaining ${left.toFixed(1)} min (said ${m[1]})`);

    // The background forecast runs at most every queue.etaIntervalSeconds (10 s by default).
    const job = await waitFor(
      'estimatedStartTime in GET /api/v1/jobs',
      async () => {
        const r = await api('GET', `/api/v1/jobs/${NS}/pod-${second}`);
        const b = r.body as { estimatedStartTime?: string | null };
        return r.status === 200 && b.estimatedStartTime
          ? (r.body as { state: string; estimatedStartTime: string; estimatedStart: { basis: { declared: number }; unknownReason: string | null } })
          : undefined;
      },
      40_000,
    );
    t.equal(job.state, 'queued');
    const at = Date.parse(job.estimatedStartTime);
    t.ok(
      Math.abs(at - expectedStart) < MIN,
      `estimatedStartTime ${job.estimatedStartTime} is the first job's end (${new Date(expectedStart).toISOString()}) within a minute`,
    );
    t.match(job.estimatedStart, { basis: { declared: 1 }, unknownReason: null });
  });

  t.test('a malformed duration, and one beyond the queue maxDuration, are denied and name why', async (t) => {
    const bad = await kubectlCreate(gpuPod(`bad-${RUN}`, 1, 'soon'));
    t.not(bad.code, 0, 'denied');
    t.match(bad.stderr, 'annotation sluice.io/expected-duration is "soon"; write a positive duration such as 45m');
    const long = await kubectlCreate(gpuPod(`long-${RUN}`, 1, '2h'));
    t.not(long.code, 0, 'denied');
    t.match(long.stderr, `declares 2h (7200 s) but queue ${QUEUE} allows at most 1h (3600 s)`);
  });
}
