// Snapshot mode's cluster as objects (cluster/in-memory.ts): pods created, changed and
// deleted reach the cache as a watch would deliver them, and the objects keep sluice's own
// changes (a gate removed, a bind) when they are changed later.
import t from 'tap';
import { ClusterCache } from '../../cluster/cache.js';
import { InMemoryCluster, InMemoryClusterError } from '../../cluster/in-memory.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';

const NOW = Date.parse('2026-01-05T09:00:00Z');

function setup() {
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30_000, recentPodWindow: 100, now: () => NOW });
  const cluster = new InMemoryCluster(cache, () => NOW);
  cluster.load({
    nodes: [gpuNode('g1', { gpus: 8 })],
    pods: [gpuPod('running', { gpus: 2, node: 'g1', uid: 'u-running' })],
    namespaces: [],
    priorityClasses: [],
  });
  return { cache, cluster };
}

t.test('create: a uid, the creation time of its clock, Pending; the cache sees it', async (t) => {
  const { cache, cluster } = setup();
  t.ok(cache.synced);
  const pod = gpuPod('new', { gpus: 4 });
  delete pod.metadata!.uid;
  pod.spec!.schedulingGates = [{ name: 'sluice.io/queue' }];
  const made = cluster.create(pod);
  t.match(made.metadata!.uid, /^[0-9a-f-]{36}$/);
  t.equal(new Date(made.metadata!.creationTimestamp!).getTime(), NOW);
  t.equal(made.status!.phase, 'Pending');
  t.same(cache.pod(made.metadata!.uid!)!.gates, ['sluice.io/queue']);
  t.throws(() => cluster.create(pod), new InMemoryClusterError(409, 'pods "new" already exists in namespace team-a'));
});

t.test("sluice's gate removal and bind show in the objects; a later kubelet update keeps them", async (t) => {
  const { cache, cluster } = setup();
  const pod = gpuPod('w', { gpus: 4 });
  pod.spec!.schedulingGates = [{ name: 'sluice.io/queue' }];
  const uid = cluster.create(pod).metadata!.uid!;
  t.ok(cache.ungate(uid, 'sluice.io/queue'), 'the queue manager releases (snapshot mode: on the cache)');
  t.equal(cluster.pod('team-a', 'w')!.spec!.schedulingGates, undefined, 'the stored pod lost its gate');
  t.equal(cache.assume(uid, 'g1', [{ resource: 'nvidia.com/gpu', count: 4 }]).ok, true);
  cache.confirmAssumed(uid, 'team-a', 'w');
  t.equal(cluster.pod('team-a', 'w')!.spec!.nodeName, 'g1', 'the bind shows in the stored pod');
  cluster.update('team-a', 'w', (p) => void (p.status = { phase: 'Running' }));
  const rec = cache.pod(uid)!;
  t.same([rec.nodeName, rec.gates, rec.terminal], ['g1', [], false], 'the update kept node and gate');
  cluster.update('team-a', 'w', (p) => void (p.status = { phase: 'Succeeded' }));
  t.equal(cache.pod(uid)!.terminal, true);
  t.equal(cache.inventory().find((n) => n.name === 'g1')!.free, 6, 'its 4 GPUs are free again; the snapshot pod keeps 2');
});

t.test('delete, and refusals that change nothing', async (t) => {
  const { cache, cluster } = setup();
  t.throws(() => cluster.update('team-a', 'nope', () => undefined), { code: 404 });
  t.throws(() => cluster.update('team-a', 'running', (p) => void (p.metadata!.uid = 'other')), { code: 422 });
  t.equal(cache.pod('u-running')!.uid, 'u-running', 'the refused update left the pod as it was');
  t.throws(() => cluster.create({ metadata: {}, spec: { containers: [] } }), { code: 422 });
  t.equal(cluster.delete('team-a', 'running'), true);
  t.equal(cache.pod('u-running'), undefined);
  t.equal(cluster.delete('team-a', 'running'), false);
  t.same(cluster.list(), []);
});
