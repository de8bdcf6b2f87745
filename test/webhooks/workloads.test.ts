// The webhooks with job frameworks on: pods owned by each workload kind, sent through the
// real api listener, get their job and gang from the workload (read from a stand-in
// apiserver over HTTP); queue and QoS come from the workload when the pod has none;
// Kueue's queue-name is honoured; a workload that cannot be read leaves the pod a job
// of its own, with a warning; a gang larger than the queue's quota is denied at admission.
import t, { type Test } from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { ApiTransport } from '../../cluster/api-transport.js';
import { ClusterCache } from '../../cluster/cache.js';
import { NamespaceStore } from '../../cluster/namespaces.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { SnapshotBinder } from '../../scheduler/binder.js';
import { buildServers } from '../../server/app.js';
import type { QueueDirectory } from '../../store/queue-directory.js';
import type { KubeObject } from '../../workloads/kind.js';
import { WorkloadReader } from '../../workloads/reader.js';
import { childJob, job, jobSet, leaderWorkerSet, lwsPod, mpiJob, NS, podOf, pyTorchJob, rayCluster, rayJob, tfJob } from '../workloads/fixtures.js';
import { applyPatch, decodePatch } from './helpers.js';

const RESOURCE: Record<string, string> = {
  JobSet: 'jobsets',
  Job: 'jobs',
  PyTorchJob: 'pytorchjobs',
  TFJob: 'tfjobs',
  MPIJob: 'mpijobs',
  RayCluster: 'rayclusters',
  RayJob: 'rayjobs',
  LeaderWorkerSet: 'leaderworkersets',
};

/** A queue "team-a" with 16 GPUs guaranteed, and "research" with 64. */
const queues: QueueDirectory = {
  async lookup(name) {
    const guaranteed = name === 'team-a' ? 16 : name === 'research' ? 64 : -1;
    if (guaranteed < 0) return { status: 'missing' };
    return {
      status: 'found',
      queue: {
        name,
        parent: null,
        cohort: null,
        open: true,
        weight: 1,
        limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed, bestEffortCap: guaranteed, perJobMax: 0, perUserMax: 0 }],
      },
    };
  },
};

async function setup(t: Test, objects: KubeObject[], o: { workloads?: boolean } = {}) {
  const api = await StandInApiserver.start();
  api.onRequest((r) => {
    const obj = objects.find((x) => r.path === `/apis/${x.apiVersion}/namespaces/${x.metadata!.namespace}/${RESOURCE[x.kind!]}/${x.metadata!.name}`);
    return obj ? { status: 200, body: obj } : undefined;
  });
  const transport = new ApiTransport(api.kubeConfig());
  const log = createLogger('silent');
  const metrics = new Metrics({ defaultMetrics: false });
  const config = loadConfig({ env: {}, base: { logLevel: 'silent', webhooks: { queueing: true } } });
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 100 });
  const namespaces = new NamespaceStore();
  namespaces.replaceAll([
    { metadata: { name: NS, labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': 'team-a' } } },
    { metadata: { name: 'elsewhere', labels: {} } },
  ]);
  const workloads = o.workloads === false ? null : new WorkloadReader((path, timeoutMs) => transport.call('GET', path, { timeoutMs }), log, metrics);
  const servers = await buildServers({ config, log, metrics, cache, binder: new SnapshotBinder(cache), notReady: () => null, namespaces, queues, workloads });
  t.teardown(async () => {
    await servers.api.close();
    await servers.ops.close();
    transport.close();
    await api.close();
  });
  const review = (pod: V1Pod, op = 'CREATE') => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `u-${Math.random()}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: pod.metadata!.namespace,
      operation: op,
      userInfo: { username: 'system:serviceaccount:kubeflow:training-operator' },
      object: pod,
    },
  });
  /** mutate, then validate the patched pod, as the apiserver would. */
  const admit = async (pod: V1Pod) => {
    const m = (await servers.api.inject({ method: 'POST', url: '/webhooks/mutate', payload: review(pod) })).json().response;
    const patched = applyPatch(structuredClone(pod), decodePatch(m));
    const v = (await servers.api.inject({ method: 'POST', url: '/webhooks/validate', payload: review(patched) })).json().response;
    return {
      labels: patched.metadata?.labels ?? {},
      warnings: (m.warnings ?? []) as string[],
      gated: (patched.spec?.schedulingGates ?? []).length > 0,
      validate: v,
    };
  };
  const gets = () => api.requests.filter((r) => r.method === 'GET').length;
  return { admit, gets };
}

t.test('each kind: the job and gang of its pods come from the workload', async (t) => {
  const js = jobSet('llm', 2, 1);
  const jsChild = childJob(js, 'llm-workers-0', 1);
  const rj = rayJob('tune', { replicas: 2, minReplicas: 2 });
  const rjCluster = rayCluster(
    'tune-raycluster-x',
    { replicas: 2, minReplicas: 2 },
    { ownerReferences: [{ apiVersion: 'ray.io/v1', kind: 'RayJob', name: 'tune', uid: rj.metadata!.uid!, controller: true }] },
  );
  const cases: Array<[string, KubeObject[], V1Pod, string, string | undefined]> = [];
  const pt = pyTorchJob('mnist', 7);
  cases.push(['PyTorchJob', [pt], podOf(pt, 'mnist-worker-3'), 'pytorchjob-mnist', '8']);
  const tf = tfJob('tf');
  cases.push(['TFJob', [tf], podOf(tf, 'tf-worker-0'), 'tfjob-tf', '4']);
  const mpi = mpiJob('pi', 4);
  cases.push(['MPIJob', [mpi], podOf(mpi, 'pi-worker-0'), 'mpijob-pi', '4']);
  cases.push(['JobSet', [js, jsChild], podOf(jsChild, 'llm-workers-0-0-x'), 'jobset-llm', '2']);
  const rc = rayCluster('rc', { replicas: 3, minReplicas: 1, autoscaling: true });
  cases.push(['RayCluster', [rc], podOf(rc, 'rc-worker-x'), 'raycluster-rc', undefined]);
  cases.push(['RayJob', [rj, rjCluster], podOf(rjCluster, 'tune-worker-x'), 'rayjob-tune', '2']);
  const lws = leaderWorkerSet('vllm', 2, 4);
  cases.push(['LeaderWorkerSet', [lws], lwsPod(lws, 1, 2), 'leaderworkerset-vllm-1', '4']);
  const gangJob = job('ddp', 4, { 'sluice.io/gang': 'true' });
  cases.push(['Job (sluice.io/gang)', [gangJob], podOf(gangJob, 'ddp-x'), 'job-ddp', '4']);
  const sweep = job('sweep', 8);
  cases.push(['Job (elastic)', [sweep], podOf(sweep, 'sweep-x'), 'job-sweep', undefined]);
  for (const [what, objects, pod, jobName, gang] of cases) {
    const s = await setup(t, objects);
    const r = await s.admit(pod);
    t.equal(r.labels['sluice.io/job'], jobName, `${what}: job`);
    t.equal(r.labels['sluice.io/gang-size'], gang, `${what}: gang size ${gang ?? '(none: elastic)'}`);
    t.ok(r.gated, `${what}: gated`);
    t.same(r.warnings, [], `${what}: no warning`);
    t.equal(r.validate.allowed, true, `${what}: allowed`);
  }
});

t.test('RayCluster with the autoscaler: head + minReplicas form the gang', async (t) => {
  const rc = rayCluster('rc', { replicas: 3, minReplicas: 2, autoscaling: true, headGpus: 1 });
  const s = await setup(t, [rc]);
  t.equal((await s.admit(podOf(rc, 'rc-head'))).labels['sluice.io/gang-size'], '3');
});

t.test('the pods of one workload cost one read, not one per pod', async (t) => {
  const pt = pyTorchJob('big', 31);
  const s = await setup(t, [pt]);
  for (let i = 0; i < 32; i++) await s.admit(podOf(pt, `big-${i}`));
  t.equal(s.gets(), 1, '32 pods, one GET of the PyTorchJob');
});

t.test("queue and QoS from the workload; Kueue's queue-name when no sluice queue is set", async (t) => {
  const labelled = pyTorchJob('a', 1, 1, { labels: { 'sluice.io/queue': 'research', 'sluice.io/qos': 'best-effort' } });
  const kueue = pyTorchJob('b', 1, 1, { labels: { 'kueue.x-k8s.io/queue-name': 'research' } });
  const both = pyTorchJob('c', 1, 1, { labels: { 'kueue.x-k8s.io/queue-name': 'research', 'sluice.io/queue': 'team-a' } });
  const s = await setup(t, [labelled, kueue, both]);
  const a = await s.admit(podOf(labelled, 'a-0'));
  t.equal(a.labels['sluice.io/queue'], 'research', "the workload's sluice.io/queue reaches the pod");
  t.equal(a.labels['sluice.io/qos'], 'best-effort', 'and its QoS');
  t.equal((await s.admit(podOf(kueue, 'b-0'))).labels['sluice.io/queue'], 'research', 'kueue.x-k8s.io/queue-name names the queue');
  t.equal((await s.admit(podOf(both, 'c-0'))).labels['sluice.io/queue'], 'team-a', "a sluice label wins over Kueue's");
  const own = podOf(labelled, 'a-1', 1, { 'sluice.io/queue': 'team-a' });
  t.equal((await s.admit(own)).labels['sluice.io/queue'], 'team-a', "the pod's own label wins over its workload's");
  const kueuePod = podOf(pyTorchJob('unread', 1), 'u-0', 1, { 'kueue.x-k8s.io/queue-name': 'research' });
  t.equal((await s.admit(kueuePod)).labels['sluice.io/queue'], 'research', "Kueue's label on the pod itself");
});

t.test("a workload labelled with a sluice queue brings its pods into scope in any namespace; Kueue's label alone does not", async (t) => {
  const inOther = pyTorchJob('x', 1, 1, { namespace: 'elsewhere', labels: { 'sluice.io/queue': 'research' } });
  const kueueOnly = pyTorchJob('y', 1, 1, { namespace: 'elsewhere', labels: { 'kueue.x-k8s.io/queue-name': 'research' } });
  const s = await setup(t, [inOther, kueueOnly]);
  const pod = podOf(inOther, 'x-0');
  pod.metadata!.namespace = 'elsewhere';
  const r = await s.admit(pod);
  t.equal(r.labels['sluice.io/queue'], 'research');
  t.equal(r.labels['sluice.io/gang-size'], '2');
  const k = podOf(kueueOnly, 'y-0');
  k.metadata!.namespace = 'elsewhere';
  const rk = await s.admit(k);
  t.equal(rk.labels['sluice.io/queue'], undefined, 'left to Kueue');
  t.equal(rk.gated, false);
});

t.test('an explicit sluice.io/gang-size on the pod still wins', async (t) => {
  const pt = pyTorchJob('mnist', 7);
  const s = await setup(t, [pt]);
  const pod = podOf(pt, 'p', 1, { 'sluice.io/gang-size': '2' });
  t.equal((await s.admit(pod)).labels['sluice.io/gang-size'], '2');
});

t.test('a workload that cannot be read: the pod is a job of its own, with a warning; nothing is stuck', async (t) => {
  const missing = pyTorchJob('gone', 7);
  const s = await setup(t, []);
  const r = await s.admit(podOf(missing, 'gone-worker-0'));
  t.equal(r.labels['sluice.io/job'], 'pytorchjob-gone', 'named after its controller, as without job frameworks');
  t.equal(r.labels['sluice.io/gang-size'], undefined, 'no gang: it cannot wait for members sluice cannot count');
  t.match(r.warnings, [
    /sluice cannot tell this pod's job and gang: PyTorchJob team-a\/gone cannot be read: .*CRD .* not installed; the pod is queued as a job of its own, with no gang/,
  ]);
  t.equal(r.validate.allowed, true);

  const bad = pyTorchJob('bad', 2);
  (bad.spec as { pytorchReplicaSpecs: { Worker: { replicas: unknown } } }).pytorchReplicaSpecs.Worker.replicas = 'lots';
  const s2 = await setup(t, [bad]);
  t.match((await s2.admit(podOf(bad, 'bad-0'))).warnings, [
    /PyTorchJob team-a\/bad gives no gang: spec.pytorchReplicaSpecs.Worker.replicas is "lots", not a whole number/,
  ]);
});

t.test("a gang larger than the queue's quota is denied at admission, with the numbers", async (t) => {
  const pt = pyTorchJob('huge', 31, 1);
  const s = await setup(t, [pt]);
  const r = await s.admit(podOf(pt, 'huge-0'));
  t.equal(r.validate.allowed, false);
  t.match(r.validate.status.message, /job asks 32 nvidia.com\/gpu \(32 pods of 1\) but queue team-a's guaranteed quota is 16/);
});

t.test("job frameworks off: the pod's controller names its job, no read", async (t) => {
  const pt = pyTorchJob('mnist', 7);
  const s = await setup(t, [pt], { workloads: false });
  const r = await s.admit(podOf(pt, 'p'));
  t.equal(r.labels['sluice.io/job'], 'pytorchjob-mnist');
  t.equal(r.labels['sluice.io/gang-size'], undefined);
  t.equal(s.gets(), 0);
});
