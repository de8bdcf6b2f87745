// Backfill and its guard: later jobs that fit may pass a head job that does not, until the
// head has waited longer than the backfill guard; then what it needs is kept for it.
import t from 'tap';
import { gpuNode } from '../helpers/k8s.js';
import { T0, keys, limit, newCache, pass, queuedPod, queueSpec, queues, waitOf } from './helpers.js';

const GUARD = 600_000;
const nodes = () => [gpuNode('n1', { gpus: 8 }), gpuNode('n2', { gpus: 8 })];
// Each node half full: 8 free GPUs in all, but no node with 8 free.
const halfFull = () => [queuedPod('r1', { gpus: 4, node: 'n1', queue: 'other' }), queuedPod('r2', { gpus: 4, node: 'n2', queue: 'other' })];

t.test('backfill: the head job is too big to fit now, later small jobs go', async (t) => {
  const cache = newCache(nodes(), [
    ...halfFull(),
    queuedPod('big', { gpus: 8, created: T0 }),
    queuedPod('s1', { gpus: 2, created: T0 + 1000 }),
    queuedPod('s2', { gpus: 2, created: T0 + 2000 }),
  ]);
  const { ev } = pass(cache, 'unlimited', T0 + 60_000, { guardMs: GUARD });
  t.same(keys(ev), ['team-a/s1/s1', 'team-a/s2/s2']);
  const big = waitOf(ev, 'team-a/big/big')!;
  t.equal(big.waitingFor, 'capacity');
  t.equal(big.position, 1, 'the big job keeps the head of its queue');
  t.match(big.reason, /no node has 8 nvidia\.com\/gpu free now/);
});

t.test('guard: a head job waiting longer than the guard holds back later jobs that need the same GPUs', async (t) => {
  const pods = [
    ...halfFull(),
    queuedPod('big', { gpus: 8, created: T0 }),
    queuedPod('s1', { gpus: 2, created: T0 + 1000 }),
    queuedPod('other-q', { gpus: 1, created: T0 + 2000, queue: 'team-b' }),
  ];
  const cache = newCache(nodes(), pods);
  const old = pass(cache, 'unlimited', T0 + GUARD + 1, { guardMs: GUARD }).ev;
  t.same(keys(old), [], 'nothing passes the starving job, whatever its queue');
  t.equal(waitOf(old, 'team-a/big/big')!.waitingFor, 'capacity');
  for (const k of ['team-a/s1/s1', 'team-a/other-q/other-q']) {
    const w = waitOf(old, k)!;
    t.equal(w.waitingFor, 'order', k);
    t.match(w.reason, /waits behind team-a\/big, which has waited 600 s \(longer than the backfill guard\)/);
  }
  // Just inside the guard, backfill still runs.
  t.same(keys(pass(cache, 'unlimited', T0 + GUARD, { guardMs: GUARD }).ev).sort(), ['team-a/other-q/other-q', 'team-a/s1/s1']);
});

t.test('guard: a later job asking another resource or model is not held back', async (t) => {
  const cache = newCache(
    [gpuNode('n1', { gpus: 8 }), gpuNode('h1', { gpus: 8, product: 'NVIDIA-H100-80GB-HBM3' })],
    [
      queuedPod('r1', { gpus: 4, node: 'n1', queue: 'other' }),
      queuedPod('r2', { gpus: 4, node: 'h1', queue: 'other' }),
      queuedPod('big', { gpus: 8, created: T0, model: 'a100' }),
      queuedPod('h100', { gpus: 2, created: T0 + 1000, model: 'h100' }),
      queuedPod('any', { gpus: 2, created: T0 + 1000 }),
    ],
  );
  const { ev } = pass(cache, 'unlimited', T0 + GUARD + 10_000, { guardMs: GUARD });
  t.same(keys(ev), ['team-a/h100/h100'], 'an H100 job does not take what the A100 job waits for');
  t.equal(waitOf(ev, 'team-a/any/any')!.waitingFor, 'order', 'a job accepting any model might take A100s: held back');
});

t.test('guard: a best-effort job is not held back by a starving guaranteed job', async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 16, bestEffortCap: 16 })]));
  const cache = newCache(nodes(), [
    ...halfFull(),
    queuedPod('big', { gpus: 8, created: T0 }),
    queuedPod('be', { gpus: 2, created: T0 + 1000, qos: 'best-effort' }),
    queuedPod('g', { gpus: 2, created: T0 + 1000 }),
  ]);
  const { ev } = pass(cache, qs, T0 + GUARD + 10_000, { guardMs: GUARD });
  t.same(keys(ev), ['team-a/be/be'], 'best-effort GPUs are reclaimable, so they do not delay the guaranteed job');
  t.equal(waitOf(ev, 'team-a/g/g')!.waitingFor, 'order');
});

t.test('guard: a starving job that no node could ever take blocks no one (unresolvable)', async (t) => {
  const cache = newCache(nodes(), [
    ...halfFull(),
    queuedPod('h100', { gpus: 2, created: T0, model: 'h100' }), // no H100 node at all
    queuedPod('huge', { gpus: 16, created: T0 }), // larger than any node
    queuedPod('picky', { gpus: 1, created: T0, ...{ nodeSelector: { zone: 'mars' } } }),
    queuedPod('s1', { gpus: 2, created: T0 + 1000 }),
  ]);
  const { ev } = pass(cache, 'unlimited', T0 + GUARD * 10, { guardMs: GUARD });
  t.same(keys(ev), ['team-a/s1/s1']);
  for (const k of ['team-a/h100/h100', 'team-a/huge/huge', 'team-a/picky/picky']) {
    const w = waitOf(ev, k)!;
    t.equal(w.waitingFor, 'capacity', k);
    t.match(w.reason, /no node could ever take/, k);
  }
});

t.test('guard on quota: a starving job short of quota holds back later jobs of its queue and QoS only', async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 8, bestEffortCap: 8 })]), queueSpec('team-b', [limit({ guaranteed: 8 })]));
  const cache = newCache(nodes(), [
    queuedPod('held', { gpus: 4, node: 'n1' }), // team-a holds 4 of 8
    queuedPod('big', { gpus: 6, created: T0 }),
    queuedPod('small', { gpus: 2, created: T0 + 1000 }),
    queuedPod('be', { gpus: 2, created: T0 + 1000, qos: 'best-effort' }),
    queuedPod('b', { gpus: 2, created: T0 + 1000, queue: 'team-b' }),
  ]);
  const young = pass(cache, qs, T0 + 60_000, { guardMs: GUARD }).ev;
  t.same(keys(young).sort(), ['team-a/b/b', 'team-a/be/be', 'team-a/small/small'], 'before the guard: backfill within quota');
  const old = pass(cache, qs, T0 + GUARD + 60_000, { guardMs: GUARD }).ev;
  t.same(keys(old).sort(), ['team-a/b/b', 'team-a/be/be']);
  t.equal(waitOf(old, 'team-a/big/big')!.waitingFor, 'quota');
  t.equal(waitOf(old, 'team-a/small/small')!.waitingFor, 'order');
  t.match(waitOf(old, 'team-a/small/small')!.reason, /holds queue team-a's quota/);
});

t.test("starving jobs go first, oldest first, whatever their queue's fair share", async (t) => {
  const cache = newCache(
    [gpuNode('n1', { gpus: 2 })],
    [
      ...[0, 1, 2, 3].map((i) => queuedPod(`busy-run${i}`, { queue: 'busy', node: `elsewhere` })),
      queuedPod('busy-old', { queue: 'busy', created: T0 }),
      queuedPod('idle-new', { queue: 'idle', created: T0 + GUARD }),
    ],
  );
  const weights = new Map([
    ['busy', 1],
    ['idle', 1],
  ]);
  const { ev } = pass(cache, 'unlimited', T0 + GUARD + 1000, { guardMs: GUARD, weights });
  t.same(keys(ev), ['team-a/busy-old/busy-old', 'team-a/idle-new/idle-new'], 'the starving job is decided before fair share turns');
});

t.test('guard: a starving gang that can never fit the whole cluster blocks no one', async (t) => {
  // Gang of 3 x 8 GPUs on a cluster of two 8-GPU nodes: it can never run, even on an
  // empty cluster. Once it is older than the guard, every later GPU job waits behind it.
  const cache = newCache(nodes(), [
    ...[0, 1, 2].map((i) => queuedPod(`g${i}`, { job: 'gang', gang: 3, gpus: 8, created: T0 })),
    queuedPod('s1', { gpus: 1, created: T0 + 1000 }),
  ]);
  const { ev } = pass(cache, 'unlimited', T0 + GUARD * 10, { guardMs: GUARD });
  t.same(keys(ev), ['team-a/s1/s1'], 'the small job runs');
  t.match(waitOf(ev, 'team-a/gang')?.reason ?? '', /could never fit/);
});

t.test("guard on quota: a starving job larger than its queue's whole quota blocks no one", async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 4 })]));
  const cache = newCache(nodes(), [
    queuedPod('too-big', { gpus: 8, created: T0 }), // needs 8, queue guaranteed 4: never
    queuedPod('small', { gpus: 1, created: T0 + 1000 }),
  ]);
  const { ev } = pass(cache, qs, T0 + GUARD * 10, { guardMs: GUARD });
  t.same(keys(ev), ['team-a/small/small']);
});

t.test('guard: a later job that lands on a node the starving job could never use is not held back', async (t) => {
  // The starving job needs 8 A100s; the A100 node is half full. A 1-GPU job accepting any
  // model would go to the idle 2-GPU A10 node, which the starving job can never use.
  const cache = newCache(
    [gpuNode('a100', { gpus: 8 }), gpuNode('a10', { gpus: 2, product: 'NVIDIA-A10' })],
    [
      queuedPod('r', { gpus: 4, node: 'a100', queue: 'other' }),
      queuedPod('big', { gpus: 8, created: T0, model: 'a100' }),
      queuedPod('small', { gpus: 1, created: T0 + 1000 }),
    ],
  );
  const { ev } = pass(cache, 'unlimited', T0 + GUARD * 2, { guardMs: GUARD });
  t.same(keys(ev), ['team-a/small/small'], 'releasing it cannot delay the A100 job');
});
