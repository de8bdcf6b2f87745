// Fit, reasons and each policy on hand-made nodes whose right answer can be stated.
import t from 'tap';
import { fit } from '../../placement/fit.js';
import { applyChoice, binpack, choicesFor, fragmentation, fragmentationAware, spread, toExtenderScores, type Policy } from '../../placement/policies.js';
import { RecentSizes, sizeMix } from '../../placement/size-mix.js';
import type { GpuAsk, GpuSlots, NodeView } from '../../placement/types.js';

const R = 'nvidia.com/gpu';
const node = (name: string, capacity: number, freeWhole: number, partialFree: number[] = [], extra: Partial<NodeView> = {}): NodeView & { gpus: GpuSlots } =>
  ({ name, product: 'NVIDIA-A100-SXM4-80GB', unusable: null, gpus: { capacity, freeWhole, partialFree }, ...extra }) as NodeView & { gpus: GpuSlots };
const ask = (count: number, milli = 1000, models: string[] = []): GpuAsk => ({ resource: R, count, milli, models });

t.test('fit: fits, or says why with resolvable set right', async (t) => {
  t.equal(fit(node('g1', 8, 4), ask(4)), null);
  t.same(fit(node('g1', 8, 2), ask(4)), { reason: 'node g1: 2 of 8 nvidia.com/gpu free, pod needs 4', resolvable: true, kind: 'insufficient' });
  t.same(fit(node('g1', 8, 8), ask(16)), { reason: 'node g1 has 8 nvidia.com/gpu in all, pod needs 16', resolvable: false, kind: 'too_big' });
  t.match(fit(node('g1', 8, 8, [], { unusable: 'node is cordoned' }), ask(1)), { reason: 'node g1: node is cordoned', resolvable: false });
  t.match(fit({ name: 'c1', product: '', unusable: null, gpus: undefined }, ask(1)), { reason: 'node c1 has no nvidia.com/gpu', resolvable: false });
  t.match(fit(node('g1', 8, 8), ask(1, 1000, ['h100'])), {
    reason: 'node g1 has NVIDIA-A100-SXM4-80GB, pod accepts only h100',
    resolvable: false,
    kind: 'model',
  });
  t.equal(fit(node('g1', 8, 8), ask(1, 1000, ['h100', 'a100'])), null, 'any accepted model will do');
});

t.test('fit: GPU shares and CPU/memory (simulator)', async (t) => {
  t.equal(fit(node('g', 2, 0, [300, 500]), ask(1, 500)), null, 'a partly used GPU with room');
  t.match(fit(node('g', 2, 0, [300, 400]), ask(1, 500)), { kind: 'insufficient', reason: /no nvidia.com\/gpu has 500m free/ });
  t.equal(fit(node('g', 2, 1, [100]), ask(1, 500)), null, 'an idle GPU takes a share');
  t.notOk(fit(node('g', 2, 1, [900]), ask(2)) === null, 'whole GPUs never use partly used ones');
  t.match(fit(node('g', 2, 2, [], { cpuFreeMilli: 1000, memFreeMiB: 1 << 20 }), { ...ask(1), cpuMilli: 2000 }), { kind: 'cpu_memory' });
  t.match(fit(node('g', 2, 2, [], { cpuFreeMilli: 8000, memFreeMiB: 100 }), { ...ask(1), memMiB: 200 }), { kind: 'cpu_memory' });
});

const best = (p: Policy, nodes: Array<NodeView & { gpus: GpuSlots }>, a: GpuAsk, mix = sizeMix([])): string => {
  const raw = nodes.map((n) => p.score(n, a, mix));
  const scores = toExtenderScores(raw, p.scale);
  return nodes[scores.indexOf(Math.max(...scores))]!.name;
};

t.test('binpack prefers the node left fullest; spread the emptiest', async (t) => {
  const nodes = [node('empty', 8, 8), node('half', 8, 4), node('nearly', 8, 2)];
  t.equal(best(binpack, nodes, ask(2)), 'nearly');
  t.equal(best(spread, nodes, ask(2)), 'empty');
  t.same(
    toExtenderScores(
      nodes.map((n) => binpack.score(n, ask(2), [])),
      'absolute',
    ),
    [3, 8, 10],
    'free after: 6, 2, 0 of 8',
  );
  t.same(
    toExtenderScores(
      nodes.map((n) => spread.score(n, ask(2), [])),
      'absolute',
    ),
    [8, 3, 0],
  );
});

t.test('binpack puts a share on the fullest GPU it fits; spread on an idle GPU', async (t) => {
  const s: GpuSlots = { capacity: 4, freeWhole: 1, partialFree: [600, 300, 900] };
  t.same(binpack.choose(s, ask(1, 250), []), { on: 'partial', free: 300 });
  t.same(spread.choose(s, ask(1, 250), []), { on: 'idle' });
  t.same(spread.choose({ ...s, freeWhole: 0 }, ask(1, 250), []), { on: 'partial', free: 900 });
});

t.test('fragmentation measure: free capacity the mix cannot use', async (t) => {
  const mix = sizeMix([
    { count: 1, milli: 1000, weight: 1 },
    { count: 1, milli: 500, weight: 1 },
  ]);
  // One idle GPU and one with 300m free: whole asks cannot use the 300m (fragment 300);
  // 500m asks cannot use it either (300 < 500). Expected: 0.5*300 + 0.5*300 = 300.
  t.equal(fragmentation({ capacity: 2, freeWhole: 1, partialFree: [300] }, mix), 300);
  // No idle GPU: a whole ask cannot fit at all, so all 800 free milli count for it.
  t.equal(fragmentation({ capacity: 2, freeWhole: 0, partialFree: [300, 500] }, mix), 0.5 * 800 + 0.5 * 300);
});

t.test('fragmentation policy keeps whole nodes whole when big jobs are common', async (t) => {
  // Mix: half the asks are 8-GPU jobs. A 1-GPU ask on the empty node would break the only
  // place an 8-GPU job fits; on the node with 3 free it breaks nothing of that.
  const mix = sizeMix([
    { count: 8, milli: 1000, weight: 1 },
    { count: 1, milli: 1000, weight: 1 },
  ]);
  const nodes = [node('empty', 8, 8), node('three', 8, 3)];
  t.equal(best(fragmentationAware, nodes, ask(1), mix), 'three');
  // Spread would pick the empty node, the wrong answer here.
  t.equal(best(spread, nodes, ask(1), mix), 'empty');
});

t.test('fragmentation policy fills the GPU a share fits exactly', async (t) => {
  const mix = sizeMix([
    { count: 1, milli: 500, weight: 1 },
    { count: 1, milli: 1000, weight: 1 },
  ]);
  const s: GpuSlots = { capacity: 2, freeWhole: 1, partialFree: [500] };
  // A 500m share on the 500m-free GPU leaves one whole idle GPU: no fragment at all.
  t.same(fragmentationAware.choose(s, ask(1, 500), mix), { on: 'partial', free: 500 });
  t.same(choicesFor(s, ask(1, 500)), [{ on: 'partial', free: 500 }, { on: 'idle' }]);
  t.same(applyChoice(s, ask(1, 500), { on: 'partial', free: 500 }), { capacity: 2, freeWhole: 1, partialFree: [] });
  t.same(applyChoice(s, ask(1, 300), { on: 'idle' }), { capacity: 2, freeWhole: 0, partialFree: [500, 700] });
});

t.test('extender scores are integers 0..10; equal relative scores are neutral', async (t) => {
  t.same(toExtenderScores([-5, 0, 5], 'relative'), [0, 5, 10]);
  t.same(toExtenderScores([3, 3], 'relative'), [5, 5]);
  t.same(toExtenderScores([50, 49, 47, 12], 'levels'), [10, 9, 7, 0], 'levels: one point per level below the best, a far-off node does not squeeze the rest');
  t.same(toExtenderScores([50, 50], 'levels'), [5, 5]);
  t.equal(fragmentationAware.scale, 'levels');
  t.same(toExtenderScores([12.4, -1, 4.6], 'absolute'), [10, 0, 5]);
});

t.test('recent sizes: a bounded window of what arrived', async (t) => {
  const r = new RecentSizes(3);
  t.same(r.mix(), []);
  r.record({ count: 1, milli: 1000 });
  r.record({ count: 1, milli: 1000 });
  r.record({ count: 8, milli: 1000 });
  t.same(
    r.mix().map((e) => [e.count, +e.weight.toFixed(3)]),
    [
      [1, 0.667],
      [8, 0.333],
    ],
  );
  r.record({ count: 8, milli: 1000 }); // pushes the oldest 1-GPU ask out
  t.same(
    r.mix().map((e) => [e.count, e.weight]),
    [
      [1, 1 / 3],
      [8, 2 / 3],
    ],
  );
  r.record({ count: 8, milli: 1000 }); // and the other one
  t.same(
    r.mix().map((e) => [e.count, e.weight]),
    [[8, 1]],
  );
  t.equal(r.size, 3);
});
