// The placement features the trace simulator relies on: CPU-only asks, CPU/memory/model
// as capacity in the fragmentation measure, shape fields kept by sizeMix, and the
// reference policies. (The extender's whole-GPU behaviour is covered in test/unit.)
import t from 'tap';
import { fit, fits } from '../../placement/fit.js';
import { bestByFragmentation, fragmentation, fragmentationPlacement, hostPerGpu, strandedMilli, strandingGrowth } from '../../placement/policies.js';
import { makeBestFitPolicy, makeRandomPolicy } from '../../placement/reference-policies.js';
import { sizeMix } from '../../placement/size-mix.js';
import type { GpuAsk, NodeView } from '../../placement/types.js';

const gpuNode = (over: Partial<NodeView> = {}): NodeView & { gpus: NonNullable<NodeView['gpus']> } =>
  ({
    name: 'n',
    product: 'G2',
    unusable: null,
    gpus: { capacity: 8, freeWhole: 8, partialFree: [] },
    cpuFreeMilli: 16000,
    memFreeMiB: 65536,
    ...over,
  }) as NodeView & { gpus: NonNullable<NodeView['gpus']> };
const ask = (count: number, milli: number, cpuMilli: number, models: string[] = []): GpuAsk => ({
  resource: 'gpu',
  count,
  milli,
  models,
  cpuMilli,
  memMiB: 1024,
});

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
  t.equal(
    fragmentation(n.gpus, sizeMix([{ count: 1, milli: 1000, weight: 1, memMiB: 4096 }]), { ...n, memFreeMiB: 1024 }),
    8000,
    'too little memory: all free GPU',
  );
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

t.test('CPU and memory per GPU of the mix: pod-weighted, over the GPU shapes that name them', async (t) => {
  const mix = sizeMix([
    { count: 1, milli: 1000, weight: 2, cpuMilli: 8000, memMiB: 32768 },
    { count: 4, milli: 1000, weight: 1, cpuMilli: 48000 },
    { count: 1, milli: 500, weight: 2, cpuMilli: 4000, memMiB: 16384 },
    { count: 0, milli: 0, weight: 5, cpuMilli: 64000 },
  ]);
  // CPU: (2 x 8000 + 48000 + 2 x 4000) / (2 x 1 + 4 + 2 x 0.5) GPUs; memory: only the shapes with memory.
  const perGpu = hostPerGpu(mix);
  t.ok(Math.abs(perGpu.cpuMilli! - 72000 / 7) < 1e-6, `CPU per GPU ${perGpu.cpuMilli}`);
  t.ok(Math.abs(perGpu.memMiB! - 32768) < 1e-6, `memory per GPU ${perGpu.memMiB}`);
  t.equal(hostPerGpu(mix), perGpu, 'remembered per mix');
  t.same(hostPerGpu(sizeMix([{ count: 1, milli: 1000, weight: 1 }])), { cpuMilli: undefined, memMiB: undefined });
});

t.test('stranded GPU: free GPU that free CPU or memory cannot back', async (t) => {
  const perGpu = { cpuMilli: 8000, memMiB: 32768 };
  t.equal(strandedMilli(2000, { cpuFreeMilli: 16000, memFreeMiB: 65536 }, perGpu), 0, 'both GPUs backed');
  t.equal(strandedMilli(2000, { cpuFreeMilli: 4000, memFreeMiB: 65536 }, perGpu), 1500, 'CPU backs half a GPU');
  t.equal(strandedMilli(2000, { cpuFreeMilli: 16000, memFreeMiB: 0 }, perGpu), 2000, 'memory backs none');
  t.equal(strandedMilli(2000, { cpuFreeMilli: -1000 }, perGpu), 2000, 'overcommitted CPU backs nothing');
  t.equal(strandedMilli(2000, {}, perGpu), 0, 'a node without the figures strands nothing');
  t.equal(strandedMilli(2000, { cpuFreeMilli: 0 }, {}), 0, 'a mix without the figures strands nothing');
});

t.test('the fragmentation score charges the GPU a placement strands, and credits none', async (t) => {
  // Every shape asks 8 CPU per GPU. Two 4-GPU nodes, alike but for CPU.
  const mix = sizeMix([{ count: 1, milli: 1000, weight: 1, cpuMilli: 8000 }]);
  const poor = gpuNode({ gpus: { capacity: 4, freeWhole: 4, partialFree: [] }, cpuFreeMilli: 32000 });
  const rich = gpuNode({ gpus: { capacity: 4, freeWhole: 4, partialFree: [] }, cpuFreeMilli: 64000 });
  const heavy = ask(1, 1000, 12000);
  t.equal(strandingGrowth(poor, heavy, mix), 500, '20 CPUs left back 2.5 of the 3 free GPUs');
  t.equal(strandingGrowth(rich, heavy, mix), 0);
  t.equal(
    bestByFragmentation(poor, heavy, mix).delta,
    bestByFragmentation(rich, heavy, mix).delta,
    'fragmentation alone cannot tell them apart: both still take a copy',
  );
  t.ok(fragmentationPlacement(rich, heavy, mix).score > fragmentationPlacement(poor, heavy, mix).score, 'the CPU-rich node scores higher');
  // A light pod on a node already short of CPU un-strands GPU: no credit, no charge.
  const short = gpuNode({ gpus: { capacity: 2, freeWhole: 2, partialFree: [] }, cpuFreeMilli: 8000 });
  t.equal(strandingGrowth(short, ask(1, 1000, 2000), mix), 0, 'stranded 1000 before, 750 after');
  // A mix that names no CPU or memory: FGD's measure alone.
  const plain = sizeMix([{ count: 1, milli: 1000, weight: 1 }]);
  t.equal(strandingGrowth(poor, heavy, plain), 0);
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
  t.same(
    rnd.choose({ capacity: 2, freeWhole: 1, partialFree: [600] }, ask(1, 250, 0), []),
    { on: 'partial', free: 600 },
    'rng 0.1 picks the first of two choices',
  );
});
