// The latency benchmark's own parts (not its timings): the synthetic cluster is what the
// cache reads it as, the node window matches kube-scheduler's formula, percentiles are
// right, and the baseline answers each verb with a valid body.
import t from 'tap';
import { ClusterCache } from '../../cluster/cache.js';
import { fit } from '../../placement/fit.js';
import { startBaseline } from '../../bench/baseline-server.js';
import { Client, stats } from '../../bench/latency/driver.js';
import { feasibleNodesToFind, freeGpuCount, nodeNamesForCycle, pendingPods, syntheticCluster } from '../../bench/latency/synthetic.js';

t.test('synthetic cluster: ready GPU nodes, placed pods counted by the cache', async (t) => {
  const c = syntheticCluster(50, 1000);
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 100 });
  cache.replaceAll(c.nodes, c.pods);
  const inv = cache.inventory();
  t.equal(inv.length, 50, 'every node has GPUs');
  t.ok(
    inv.every((n) => n.unusable === null && n.product !== ''),
    'all Ready, all with a GPU product label',
  );
  t.ok(
    inv.every((n) => [1, 2, 4, 8].includes(n.total)),
    '1, 2, 4 or 8 GPUs per node',
  );
  const free = inv.reduce((s, n) => s + n.free, 0);
  t.equal(free, freeGpuCount(c), 'free GPUs as the bench counts them');
  const total = inv.reduce((s, n) => s + n.total, 0);
  t.ok(free > total * 0.4 && free < total * 0.6, `about half the GPUs free (${free} of ${total})`);
  const view = cache.nodeView(inv[0]!.name, 'nvidia.com/gpu')!;
  t.equal(fit(view, { resource: 'nvidia.com/gpu', count: 99, milli: 1000, models: [] })?.kind, 'too_big');
});

t.test('node window: kube-scheduler numFeasibleNodesToFind with the default percentage', async (t) => {
  t.equal(feasibleNodesToFind(50), 50);
  t.equal(feasibleNodesToFind(100), 100);
  t.equal(feasibleNodesToFind(1000), 420);
  t.equal(feasibleNodesToFind(5000), 500);
  t.equal(feasibleNodesToFind(20000), 1000, '5% floor');
  const a = nodeNamesForCycle(1000, 0);
  const b = nodeNamesForCycle(1000, 1);
  t.equal(new Set(a).size, 420);
  t.equal(b[0], 'gpu-node-00420', 'the next cycle resumes where the last stopped');
});

t.test('percentiles', async (t) => {
  const s = stats(Array.from({ length: 100 }, (_, i) => i + 1));
  t.same([s.p50, s.p90, s.p99, s.max, s.count], [50, 90, 99, 100, 100]);
  t.equal(stats([]).count, 0);
});

t.test('baseline server answers every verb with a valid body', async (t) => {
  const b = await startBaseline(0);
  t.teardown(() => b.close());
  const cl = new Client(b.url, 1);
  t.teardown(() => cl.close());
  const Pod = pendingPods(1)[0];
  const body = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  const f = await cl.post('/scheduler/filter', body({ Pod, NodeNames: ['a', 'b'], Nodes: null }));
  t.same(JSON.parse(f.body), { Nodes: null, NodeNames: ['a', 'b'], FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: '' });
  const p = await cl.post('/scheduler/prioritize', body({ Pod, NodeNames: ['a'], Nodes: null }));
  t.same(JSON.parse(p.body), [{ Host: 'a', Score: 5 }]);
  const bd = await cl.post('/scheduler/bind', body({ PodName: 'x', PodNamespace: 'y', PodUID: 'z', Node: 'a' }));
  t.same(JSON.parse(bd.body), { Error: '' });
  const m = await cl.post('/webhooks/mutate', body({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1' } }));
  t.same(JSON.parse(m.body).response, { uid: 'u1', allowed: true });
});
