// The placement features the trace simulator relies on: CPU-only asks, CPU/memory/model
// as capacity in the fragmentation measure, shape fields kept by sizeMix, and the
// reference policies. (The extender's whole-GPU behaviour is covered in test/unit.)
import t from 'tap';
import { fit, fits } from '../../placement/fit.js';
import { bestByFragmentation, fragmentation } from '../../placement/policies.js';
import { makeBestFitPolicy, makeRandomPolicy } from '../../placement/reference-policies.js';
import { sizeMix } from '../../placement/size-mix.js';
import type { GpuAsk, NodeView } from '../../placement/types.js';

const gpuNode = (over: Partial<NodeView> = {}): NodeView & { gpus: NonNullable<NodeView['gpus']> } => ({
  name: 'n',
  product: 'G2',
  unusable: null,
  gpus: { capacity: 8, freeWhole: 8, partialFree: [] },
  cpuFreeMilli: 16000,
  memFreeMiB: 65536,
  ...over,
}) as NodeView & { gpus: NonNullable<NodeView['gpus']> };
const ask = (count: number, milli: number, cpuMilli: number, models: string[] = []): GpuAsk => ({ resource: 'gpu', count, milli, models, cpuMilli, memMiB: 1024 });

t.test('a CPU-only ask fits on CPU and memory alone, even on a node without GPUs', async (t) => {
  const cpuNode = gpuNode({ gpus: { capacity: 0, freeWhole: 0, partialFree: [] }, product: '' });
  t.equal(fit(cpuNode, ask(0, 0, 8000)), null);
  t.ok(fits(cpuNode, ask(0, 0, 8000)));
  t.equal(fit(cpuNode, ask(0, 0, 32000))?.kind, 'cpu_memory');
  t.notOk(fits(cpuNode, ask(0, 0, 32000)));
});

t.test('fragmentation counts GPUs that free CPU cannot back', async (t) => {
  const whole = sizeMix([{ count: 1, milli: 1000, weight: 1, cpuMilli: 8000 }]);
  const n = gpuNode();
  t.equal(fragmentation(n.gpus, whole), 0, 'without host figures: FGD, no fragment');
  // Whole-GPU shape: a yes/no, as FGD (CPU for 2 of 8 copies: the node can host it).
  t.equal(fragmentation(n.gpus, whole, n), 0);
  t.equal(fragmentation(n.gpus, whole, { ...n, cpuFreeMilli: 4000 }), 8000, 'no copy fits: all free GPU');
  t.equal(fragmentation(n.gpus, whole, { ...n, memFreeMiB: 0 }), 0, 'the shape names no memory: memory is not checked');
  t.equal(fragmentation(n.gpus, sizeMix([{ count: 1, milli: 1000, weight: 1, memMiB: 4096 }]), { ...n, memFreeMiB: 1024 }), 8000, 'too little memory: all free GPU');
  t.equal(fragmentation(n.gpus, whole, { ...n, product: 'T4' }), 0, 'no models on the shape: the product does not matter');
  const t4only = sizeMix([{ count: 1, milli: 1000, weight: 1, models: ['T4'] }]);
  t.equal(fragmentation(n.gpus, t4only, n), 8000, 'a shape that rejects the model cannot use any of it');
  // GPU share: 8 idle GPUs take 16 copies of 500m, CPU backs 2: half of 14/16 of 8000.
  const share = sizeMix([{ count: 1, milli: 500, weight: 1, cpuMilli: 8000 }]);
  t.equal(fragmentation(n.gpus, share, n), 0.5 * 8000 * (14 / 16));
});

t.test('the fragmentation choice prefers a placement that leaves CPU for the GPUs', async (t) => {
  const mix = sizeMix([{ count: 1, milli: 1000, weight: 1, cpuMilli: 4000 }]);
  const n = gpuNode({ gpus: { capacity: 2, freeWhole: 2, partialFree: [] }, cpuFreeMilli: 8000 });
  const light = bestByFragmentation(n, ask(1, 1000, 4000), mix).delta;
  const heavy = bestByFragmentation(n, ask(1, 1000, 8000), mix).delta;
  t.ok(heavy > light, `a CPU-heavy pod strands the other GPU (delta ${heavy} > ${light})`);
});

t.test('sizeMix normalizes weights and keeps the shape fields', async (t) => {
  const m = sizeMix([
    { count: 1, milli: 500, weight: 3, cpuMilli: 2000, memMiB: 100, models: ['T4'] },
    { count: 2, milli: 1000, weight: 1 },
  ]);
  t.same(m[0], { count: 1, milli: 500, weight: 0.75, cpuMilli: 2000, memMiB: 100, models: ['T4'] });
  t.equal(m[1]?.weight, 0.25);
});

t.test('reference policies: best-fit prefers the fuller node; random uses the rng', async (t) => {
  const bf = makeBestFitPolicy({ gpuMilli: 8000, cpuMilli: 96000, memMiB: 393216 });
  const full = gpuNode({ gpus: { capacity: 8, freeWhole: 1, partialFree: [] }, cpuFreeMilli: 8000 });
  const empty = gpuNode();
  t.ok(bf.score(full, ask(1, 1000, 4000), []) > bf.score(empty, ask(1, 1000, 4000), []));
  t.same(bf.choose({ capacity: 2, freeWhole: 1, partialFree: [600, 300] }, ask(1, 250, 0), []), { on: 'partial', free: 300 });
  const seq = [0.9, 0.1];
  const rnd = makeRandomPolicy(() => seq.shift() ?? 0);
  t.equal(rnd.score(empty, ask(1, 1000, 0), []), 0.9);
  t.same(rnd.choose({ capacity: 2, freeWhole: 1, partialFree: [600] }, ask(1, 250, 0), []), { on: 'partial', free: 600 }, 'rng 0.1 picks the first of two choices');
});
