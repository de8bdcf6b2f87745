// Scarcity of the nodes that can take each ask shape (placement/scarcity.ts) and how the
// fragmentation policy weighs it.
import t from 'tap';
import { classTakes, nodeClasses, SCARCITY_EXPONENT, withScarcity, type NodeClass } from '../../placement/scarcity.js';
import { fragmentation, fragmentationPlacement } from '../../placement/policies.js';
import { sizeMix } from '../../placement/size-mix.js';
import type { GpuAsk, GpuSlots, NodeView } from '../../placement/types.js';

const cls = (gpus: number, nodes: number, over: Partial<NodeClass> = {}): NodeClass => ({
  gpus,
  product: 'T4',
  cpuMilli: 64000,
  memMiB: 262144,
  nodes,
  ...over,
});

t.test('nodes group into classes by what an empty one can take; nodes without GPUs are left out', async (t) => {
  const got = nodeClasses([
    { gpus: 8, product: 'A100', cpuMilli: 96000, memMiB: 1 },
    { gpus: 2, product: 'T4', cpuMilli: 64000, memMiB: 1 },
    { gpus: 8, product: 'A100', cpuMilli: 96000, memMiB: 1 },
    { gpus: 8, product: 'A100', cpuMilli: 128000, memMiB: 1 },
    { gpus: 0, product: '', cpuMilli: 64000, memMiB: 1 },
  ]);
  t.same(
    got.map((c) => [c.gpus, c.product, c.cpuMilli, c.nodes]),
    [
      [8, 'A100', 96000, 2],
      [2, 'T4', 64000, 1],
      [8, 'A100', 128000, 1],
    ],
  );
});

t.test('a class takes a shape when an empty node has the GPUs, CPU, memory and model for one copy', async (t) => {
  const c = cls(4, 1);
  t.ok(classTakes(c, { count: 4, milli: 1000, weight: 1 }));
  t.notOk(classTakes(c, { count: 8, milli: 1000, weight: 1 }), 'too few GPUs');
  t.ok(classTakes(c, { count: 1, milli: 500, weight: 1 }), 'a share needs one GPU');
  t.notOk(classTakes(c, { count: 1, milli: 1000, weight: 1, cpuMilli: 96000 }), 'too little CPU');
  t.notOk(classTakes(c, { count: 1, milli: 1000, weight: 1, memMiB: 300000 }), 'too little memory');
  t.ok(classTakes({ ...c, cpuMilli: undefined }, { count: 1, milli: 1000, weight: 1, cpuMilli: 96000 }), 'CPU not known: not checked');
  t.notOk(classTakes(c, { count: 1, milli: 1000, weight: 1, models: ['a100'] }), 'another model');
  t.ok(classTakes(c, { count: 1, milli: 1000, weight: 1, models: ['a100', 't4'] }));
});

t.test('scarcity = (all GPUs / GPUs of the classes that take the shape) ^ exponent, scaled so weight x scarcity sums to 1', async (t) => {
  t.equal(SCARCITY_EXPONENT, 2);
  // 10 nodes x 2 GPUs and 2 nodes x 8 GPUs: 36 GPUs; only the 8-GPU nodes take 8 GPUs.
  const classes = [cls(2, 10), cls(8, 2, { cpuMilli: 128000 })];
  const mix = sizeMix([
    { count: 1, milli: 1000, weight: 3 },
    { count: 8, milli: 1000, weight: 1 },
    { count: 1, milli: 1000, weight: 1, cpuMilli: 100000 },
    { count: 16, milli: 1000, weight: 1 },
  ]);
  const raw = [1, (36 / 16) ** 2, (36 / 16) ** 2, 1]; // the last: no class takes it
  const sum = mix.reduce((s, e, i) => s + e.weight * raw[i]!, 0);
  const got = withScarcity(mix, classes);
  got.forEach((e, i) => t.ok(Math.abs(e.scarcity! - raw[i]! / sum) < 1e-12, `shape ${i}: ${e.scarcity} vs ${raw[i]! / sum}`));
  t.same(
    got.map((e) => e.weight),
    mix.map((e) => e.weight),
    'arrival weights unchanged',
  );
  t.equal(withScarcity(mix, []), mix, 'no nodes: no scarcity');
});

t.test('the fragmentation policy keeps the only nodes a scarce shape fits', async (t) => {
  // Big nodes (8 GPUs, 128 CPUs) are the only home of an 8-GPU, 120-CPU shape; the
  // common nodes (8 GPUs, 64 CPUs) take everything else. A 1-GPU pod should go to a
  // common node, not break up a big one.
  const mix = sizeMix([
    { count: 1, milli: 1000, weight: 20, cpuMilli: 4000 },
    { count: 8, milli: 1000, weight: 1, cpuMilli: 32000 },
    { count: 8, milli: 1000, weight: 1, cpuMilli: 120000 },
  ]);
  const classes = [cls(8, 30, { cpuMilli: 64000 }), cls(8, 2, { cpuMilli: 128000 })];
  const empty = (cpuMilli: number): NodeView & { gpus: GpuSlots } => ({
    name: 'n',
    product: 'T4',
    unusable: null,
    gpus: { capacity: 8, freeWhole: 8, partialFree: [] },
    cpuFreeMilli: cpuMilli,
    memFreeMiB: 262144,
  });
  const ask: GpuAsk = { resource: 'gpu', count: 1, milli: 1000, models: [], cpuMilli: 4000, memMiB: 1024 };
  const weighed = withScarcity(mix, classes);
  const big = fragmentationPlacement(empty(128000), ask, weighed).score;
  const common = fragmentationPlacement(empty(64000), ask, weighed).score;
  t.ok(common > big, `common node ${common} > big node ${big}`);
  // FGD's measure alone prefers the common node too, by less: scarcity widens the gap
  // (what keeps the big nodes whole when CPU-heavy pods are drawn to their CPU).
  const gapPlain = fragmentationPlacement(empty(64000), ask, mix).score - fragmentationPlacement(empty(128000), ask, mix).score;
  t.ok(common - big > gapPlain, `gap with scarcity ${common - big} > without ${gapPlain}`);
  // Scarcity multiplies each shape's fragment: all free GPU counts for the 120-CPU shape on a common node.
  const e = empty(64000);
  t.ok(Math.abs(fragmentation(e.gpus, weighed, e) - 8000 * weighed[2]!.weight * weighed[2]!.scarcity!) < 1e-9);
});
