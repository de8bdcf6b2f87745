// Training jobs in the queue, with pods labelled by the real admission decision
// (workloads/resolve.ts + webhooks/mutate.ts) from their operator's workload: a
// PyTorchJob waits until its whole gang exists and starts whole; a member deleted while
// the gang waits takes the gang back a step; a failed worker re-created by its operator
// joins its running gang at once; a RayCluster's autoscaled workers above the gang start
// one by one within quota; a deleted workload's pods leave no units and its job record closes.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { loadConfig } from '../../config/load.js';
import { JobIndex } from '../../queue/job-index.js';
import { applyPatch } from '../webhooks/helpers.js';
import { mutatePod } from '../../webhooks/mutate.js';
import { policyFromConfig, type ClusterFacts } from '../../webhooks/policy.js';
import type { KubeObject } from '../../workloads/kind.js';
import { resolveWorkload, type ObjectReader } from '../../workloads/resolve.js';
import { gpuNode } from '../helpers/k8s.js';
import { NS, podOf, pyTorchJob, rayCluster } from '../workloads/fixtures.js';
import { GPU, T0, keys, limit, newCache, pass, queues, queueSpec, waitOf } from './helpers.js';

const policy = policyFromConfig(loadConfig({ env: {} }).webhooks, [GPU]);
const facts: ClusterFacts = { namespaceLabels: () => undefined, products: () => [], largestNode: () => null };
const nsLabels = { 'sluice.io/managed': 'true', 'sluice.io/default-queue': 'team-a' };

function readerOf(objects: KubeObject[]): ObjectReader {
  return {
    read: (kind, ref) => {
      const o = objects.find((x) => x.kind === kind.kind && x.metadata?.name === ref.name);
      return o ? { ok: o } : { missing: 'object', reason: 'not found' };
    },
  };
}

let seq = 0;
/** The pod as the apiserver stores it after sluice's mutating webhook. */
async function admitted(pod: V1Pod, objects: KubeObject[], created = T0): Promise<V1Pod> {
  const r = await resolveWorkload(pod, NS, readerOf(objects), [GPU]);
  const m = mutatePod({
    pod,
    username: 'system:serviceaccount:kubeflow:training-operator',
    nsLabels,
    policy,
    facts,
    workload: r.status === 'found' ? r.workload : null,
  });
  const out = applyPatch(structuredClone(pod), m.ops);
  out.metadata!.uid = `uid-${pod.metadata!.name}-${++seq}`;
  out.metadata!.creationTimestamp = new Date(created) as unknown as Date;
  return out;
}

const running = (p: V1Pod, node: string): V1Pod => {
  const q = structuredClone(p);
  q.spec!.schedulingGates = [];
  q.spec!.nodeName = node;
  q.status = { phase: 'Running' };
  return q;
};

t.test("a PyTorchJob's pods are held until the whole gang exists, then start whole", async (t) => {
  const pt = pyTorchJob('mnist', 3, 2); // Master + 3 Workers, 2 GPUs each
  const pods = [];
  for (const name of ['mnist-master-0', 'mnist-worker-0', 'mnist-worker-1']) pods.push(await admitted(podOf(pt, name, 2), [pt]));
  t.same(
    pods.map((p) => p.metadata!.labels!['sluice.io/gang-size']),
    ['4', '4', '4'],
    'the webhook wrote the gang from the PyTorchJob',
  );
  const cache = newCache([gpuNode('n1'), gpuNode('n2')], pods);
  const before = pass(cache, 'unlimited', T0 + 1000).ev;
  t.same(keys(before), [], 'room for all, yet nothing starts with 3 of 4');
  t.match(waitOf(before, 'team-a/pytorchjob-mnist'), { waitingFor: 'gang', reason: /gang: 3 of 4 pods seen/ });

  // A member deleted while the gang waits: the gang is one further from whole; nothing starts.
  cache.deletePod(pods[1]!.metadata!.uid!);
  t.match(
    waitOf(pass(cache, 'unlimited', T0 + 2000).ev, 'team-a/pytorchjob-mnist'),
    { waitingFor: 'gang', reason: /2 of 4/ },
    'deleted member: 2 of 4, still held',
  );
  // The operator re-creates it, and the last worker arrives.
  cache.upsertPod(await admitted(podOf(pt, 'mnist-worker-0', 2), [pt]));
  cache.upsertPod(await admitted(podOf(pt, 'mnist-worker-2', 2), [pt]));
  const after = pass(cache, 'unlimited', T0 + 3000).ev;
  t.same(keys(after), ['team-a/pytorchjob-mnist'], 'released as one unit');
  t.equal(after.releases[0]!.pods.length, 4, 'all four pods');
  t.same(after.releases[0]!.need, [{ resource: GPU, count: 8 }]);
});

t.test('a failed worker re-created by its operator joins its running gang at once', async (t) => {
  const pt = pyTorchJob('ddp', 3, 4);
  const names = ['ddp-master-0', 'ddp-worker-0', 'ddp-worker-1', 'ddp-worker-2'];
  const pods = [];
  for (const [i, name] of names.entries()) pods.push(running(await admitted(podOf(pt, name, 4), [pt]), `n${i % 2}`));
  const failed = structuredClone(pods[2]!);
  failed.status = { phase: 'Failed' };
  pods[2] = failed;
  const replacement = await admitted(podOf(pt, 'ddp-worker-1', 4), [pt], T0 + 60_000);
  // A queue whose whole quota the three running members use: a new gang could not start.
  const cache = newCache([gpuNode('n0'), gpuNode('n1')], [...pods, replacement]);
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 12, bestEffortCap: 12 })]));
  const ev = pass(cache, qs, T0 + 61_000).ev;
  t.same(keys(ev), ['team-a/pytorchjob-ddp'], 'released at once, not held as a new gang of 1 of 4');
  t.equal(ev.releases[0]!.inFlight, true, 'as the missing member of a gang in flight');
  t.same(
    ev.releases[0]!.pods.map((p) => p.name),
    ['ddp-worker-1'],
  );
});

t.test("a RayCluster's autoscaled workers above the gang are elastic: one by one, within quota", async (t) => {
  const rc = rayCluster('rc', { replicas: 2, minReplicas: 2, autoscaling: true }); // CPU head, gang of 2 GPU workers
  const gang = [];
  for (const name of ['rc-gpu-w0', 'rc-gpu-w1']) gang.push(running(await admitted(podOf(rc, name, 1), [rc]), 'n1'));
  t.equal(gang[0]!.metadata!.labels!['sluice.io/gang-size'], '2');
  const scaled = [];
  for (const [i, name] of ['rc-gpu-w2', 'rc-gpu-w3'].entries()) scaled.push(await admitted(podOf(rc, name, 1), [rc], T0 + 1000 + i));
  const cache = newCache([gpuNode('n1')], [...gang, ...scaled]);
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 3, bestEffortCap: 3 })]));
  const ev = pass(cache, qs, T0 + 5000).ev;
  t.same(keys(ev), ['team-a/raycluster-rc/rc-gpu-w2'], 'the first autoscaled worker fits the quota (3), alone');
  t.match(waitOf(ev, 'team-a/raycluster-rc/rc-gpu-w3'), { waitingFor: 'quota' }, 'the second waits for quota, not for a gang');
});

t.test('a deleted workload: its pods go (garbage collection), no unit is left and its job record closes', async (t) => {
  const pt = pyTorchJob('gone', 1, 1);
  const pods = [await admitted(podOf(pt, 'gone-master-0'), [pt])];
  const cache = newCache([gpuNode('n1')], pods);
  const index = new JobIndex(cache);
  for (const p of cache.allPods()) index.update(p.uid, p);
  t.ok(index.view('team-a/pytorchjob-gone', new Set()), 'the job is known while its pod waits');
  index.dirty.clear();
  cache.deletePod(pods[0]!.metadata!.uid!);
  index.update(pods[0]!.metadata!.uid!, undefined);
  t.same(keys(pass(cache, 'unlimited', T0).ev), []);
  t.equal(waitOf(pass(cache, 'unlimited', T0).ev, 'team-a/pytorchjob-gone'), undefined, 'nothing waits');
  t.ok(index.dirty.has('team-a/pytorchjob-gone'), 'its record is revisited');
  t.equal(index.view('team-a/pytorchjob-gone', new Set()), undefined, 'with no pods: the manager records it deleted (queue/manager.ts)');
});
