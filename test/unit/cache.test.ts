// The cluster cache: incremental usage, the assume ledger, node/pod churn.
import t from 'tap';
import { ClusterCache } from '../../cluster/cache.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';

const make = (now = { t: 0 }) => new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 1000, recentPodWindow: 100, now: () => now.t });
const free = (c: ClusterCache, n: string) => c.nodeView(n, 'nvidia.com/gpu')?.gpus?.freeWhole;

t.test('usage follows pods through their life', async (t) => {
  const c = make();
  c.replaceAll([gpuNode('g1')], []);
  t.equal(free(c, 'g1'), 8);
  const p = gpuPod('a', { node: 'g1', gpus: 3 });
  c.upsertPod(p);
  t.equal(free(c, 'g1'), 5);
  c.upsertPod({ ...p, status: { phase: 'Succeeded' } });
  t.equal(free(c, 'g1'), 8, 'a finished pod holds no GPUs');
  c.upsertPod(p);
  c.deletePod(p.metadata!.uid!);
  t.equal(free(c, 'g1'), 8);
  t.equal(c.podCount, 0);
});

t.test('pods seen before their node are counted once the node appears', async (t) => {
  const c = make();
  c.upsertPod(gpuPod('early', { node: 'late', gpus: 2 }));
  t.equal(c.nodeView('late', 'nvidia.com/gpu'), undefined, 'unknown node');
  c.upsertNode(gpuNode('late', { gpus: 4 }));
  t.equal(free(c, 'late'), 2);
  c.deleteNode('late');
  t.equal(c.hasNode('late'), false);
  c.upsertNode(gpuNode('late', { gpus: 4 }));
  t.equal(free(c, 'late'), 2, 'usage survives the node object going and coming back');
});

t.test('assume ledger: counts at once, refuses overcommit, hands over to the watch', async (t) => {
  const now = { t: 0 };
  const c = make(now);
  c.replaceAll([gpuNode('g1', { gpus: 4 })], []);
  const req = [{ resource: 'nvidia.com/gpu', count: 3 }];
  t.same(c.assume('u1', 'g1', req), { ok: true });
  t.equal(free(c, 'g1'), 1);
  t.same(c.assume('u2', 'g1', req), { ok: false, reason: 'node g1: 1 of 4 nvidia.com/gpu free, pod needs 3' });
  t.match(c.assume('u1', 'g1', req), { ok: false, reason: /already being bound/ });
  t.match(c.assume('u3', 'nope', req), { ok: false, reason: /not in sluice's cache/ });
  // The watch shows u1 bound: the pod's own accounting replaces the assumption.
  c.upsertPod(gpuPod('p1', { uid: 'u1', node: 'g1', gpus: 3 }));
  t.equal(c.assumedCount, 0);
  t.equal(free(c, 'g1'), 1, 'counted once, not twice');
  t.match(c.assume('u1', 'g1', [{ resource: 'nvidia.com/gpu', count: 1 }]), { ok: false, reason: /already bound to node g1/ });
});

t.test('assume ledger: expiry and rollback', async (t) => {
  const now = { t: 0 };
  const c = make(now);
  c.replaceAll([gpuNode('g1', { gpus: 4 })], []);
  c.assume('u1', 'g1', [{ resource: 'nvidia.com/gpu', count: 2 }]);
  c.assume('u2', 'g1', [{ resource: 'nvidia.com/gpu', count: 1 }]);
  c.forget('u2');
  t.equal(free(c, 'g1'), 2);
  now.t = 999;
  t.equal(c.expireAssumed(), 0);
  now.t = 1000;
  t.equal(c.expireAssumed(), 1, 'the watch never showed it: dropped after the TTL');
  t.equal(free(c, 'g1'), 4);
});

t.test('a relist keeps binds in flight that it does not show yet', async (t) => {
  const c = make();
  c.replaceAll([gpuNode('g1', { gpus: 4 })], []);
  c.assume('u1', 'g1', [{ resource: 'nvidia.com/gpu', count: 2 }]);
  c.replaceAll([gpuNode('g1', { gpus: 4 })], [gpuPod('p1', { uid: 'u1', gpus: 2 })]);
  t.equal(free(c, 'g1'), 2);
  c.replaceAll([gpuNode('g1', { gpus: 4 })], [gpuPod('p1', { uid: 'u1', node: 'g1', gpus: 2 })]);
  t.equal(free(c, 'g1'), 2, 'bound now: counted by the pod');
  t.equal(c.assumedCount, 0);
});

t.test('the size mix learns from GPU pods as they arrive', async (t) => {
  const c = make();
  c.upsertPod(gpuPod('a', { gpus: 1 }));
  c.upsertPod(gpuPod('b', { gpus: 8 }));
  c.upsertPod(gpuPod('c', { gpus: 0 }));
  t.same(
    c.sizeMix().map((e) => [e.count, e.weight]),
    [
      [1, 0.5],
      [8, 0.5],
    ],
  );
});

t.test("the size mix carries each shape's scarcity on the known nodes, kept until a node class changes", async (t) => {
  const c = make();
  c.replaceAll(
    [gpuNode('small1', { gpus: 2 }), gpuNode('small2', { gpus: 2 }), gpuNode('big', { gpus: 8 })],
    [gpuPod('a', { gpus: 1 }), gpuPod('b', { gpus: 8 })],
  );
  const m = c.sizeMix();
  // 12 GPUs; 8 of them take an 8-GPU pod: scarcity (12/8)^2 against 1, scaled so weight x scarcity sums to 1.
  const sum = 0.5 * 1 + 0.5 * (12 / 8) ** 2;
  t.same(
    m.map((e) => [e.count, +e.scarcity!.toFixed(9)]),
    [
      [1, +(1 / sum).toFixed(9)],
      [8, +((12 / 8) ** 2 / sum).toFixed(9)],
    ],
  );
  t.equal(c.sizeMix(), m, 'the same array while nothing changed');
  c.upsertNode({
    ...gpuNode('big', { gpus: 8 }),
    metadata: { name: 'big', labels: { 'kubernetes.io/hostname': 'big', 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB', seen: 'again' } },
  });
  t.equal(c.sizeMix(), m, 'a node update that keeps its class keeps the mix');
  c.upsertNode(gpuNode('big2', { gpus: 8 }));
  const m2 = c.sizeMix();
  t.not(m2, m);
  t.ok(m2[1]!.scarcity! < m[1]!.scarcity!, 'a second 8-GPU node: the 8-GPU shape is less scarce');
  c.deleteNode('big2');
  t.same(c.sizeMix(), m, 'and back when it goes');
  c.upsertNode(gpuNode('big', { gpus: 4 }));
  t.ok(c.sizeMix()[1]!.scarcity! < m[1]!.scarcity!, 'a node that changes class (8 GPUs to 4): no home for 8 GPUs, scarcity falls back to 1 before scaling');
  c.upsertNode(gpuNode('big', { gpus: 8 }));
  t.same(c.sizeMix(), m);
  c.replaceAll([gpuNode('big', { gpus: 8 })], []);
  t.equal(c.sizeMix()[1]!.scarcity, c.sizeMix()[0]!.scarcity, 'a relist with only 8-GPU nodes: no shape is scarcer');
});
