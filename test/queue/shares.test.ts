// GPU shares in the queue manager (HAMi's device plugin, docs/gpu-sharing.md): quota counts
// a share as its fraction of a GPU (4 x 0.25 = 1 GPU), and the capacity check fits shares on
// each GPU's memory, cores and slots with the extender's fit().
import t from 'tap';
import { queueUsage } from '../../api/usage.js';
import { hamiNode } from '../helpers/hami-agent.js';
import { GPU, T0, keys, limit, newShareCache, pass, queueSpec, queuedShare, queues, waitOf } from './helpers.js';

const MIB = 16384;
const quota1 = queues(queueSpec('team-a', [limit({ guaranteed: 1 })]));

t.test('four pods of 0.25 GPU count as 1 GPU of quota; a fifth waits until one finishes', async (t) => {
  const quarter = (i: number, o: Parameters<typeof queuedShare>[1] = {}) => queuedShare(`q${i}`, { percent: 25, cores: 25, created: T0 + i, ...o });
  const nodes = [hamiNode('h', { gpus: 2, memMiB: MIB, split: 10 })];
  const waiting = newShareCache(
    nodes,
    [0, 1, 2, 3, 4].map((i) => quarter(i)),
  );
  const first = pass(waiting, quota1, T0 + 1000);
  t.same(
    keys(first.ev),
    [0, 1, 2, 3].map((i) => `team-a/q${i}/q${i}`),
    'four released in one pass',
  );
  const fifth = waitOf(first.ev, 'team-a/q4/q4')!;
  t.equal(fifth.waitingFor, 'quota');
  t.match(fifth.reason, 'queue team-a: 1 of 1 guaranteed nvidia.com/gpu in use, job needs 0.25');

  // The four bound on GPU 0 (4096 MiB each), the fifth still gated.
  const running = [0, 1, 2, 3].map((i) => quarter(i, { node: 'h', onGpu: { index: 0, memMiB: MIB / 4 } }));
  const cache = newShareCache(nodes, [...running, quarter(4)]);
  const held = pass(cache, quota1, T0 + 2000);
  t.equal(held.state.ledger.held('team-a'), 1, 'held: 4 x 0.25');
  t.match(held.state.ledger.gpus('team-a'), [{ resource: GPU, used: 1, guaranteed: 1 }]);
  t.same(keys(held.ev), [], 'the fifth still waits');
  t.equal(waitOf(held.ev, 'team-a/q4/q4')!.waitingFor, 'quota');

  // One finishes: its quarter is free again, and the fifth goes.
  const done = running[2]!;
  done.status = { phase: 'Succeeded' };
  cache.upsertPod(done);
  const after = pass(cache, quota1, T0 + 3000);
  t.same(keys(after.ev), ['team-a/q4/q4']);
  t.equal(after.state.ledger.held('team-a'), 1, '3 x 0.25 running + 0.25 released');

  // Whole GPUs on the same quota: one pod of nvidia.com/gpu 1 (all memory) counts 1.
  const whole = newShareCache(nodes, [queuedShare('w0', { created: T0 }), queuedShare('w1', { created: T0 + 1 })]);
  t.same(keys(pass(whole, quota1, T0 + 1000).ev), ['team-a/w0/w0'], 'a plain GPU ask on a HAMi node is the whole GPU');
});

t.test('a gang of four quarters fits a quota of 1; shares add up in milli, not in floats', async (t) => {
  const nodes = [hamiNode('h', { gpus: 1, memMiB: MIB, split: 10 })];
  const gang = [0, 1, 2, 3].map((i) => queuedShare(`g-${i}`, { job: 'g', gang: 4, percent: 25, cores: 25, created: T0 }));
  t.same(keys(pass(newShareCache(nodes, gang), quota1, T0 + 1000).ev), ['team-a/g']);
  // Ten pods of 0.1 make exactly 1 GPU (0.1 x 10 in floats is 0.9999999999999999).
  const tenths = Array.from({ length: 11 }, (_, i) => queuedShare(`t${i}`, { percent: 10, cores: 10, created: T0 + i }));
  const r = pass(newShareCache(nodes, tenths), quota1, T0 + 1000);
  t.equal(r.ev.releases.length, 10, 'ten tenths fit a quota of 1, the eleventh does not');
  t.match(waitOf(r.ev, 'team-a/t10/t10')!.reason, 'queue team-a: 1 of 1 guaranteed nvidia.com/gpu in use, job needs 0.1');
});

t.test("a share's GPU-equivalents: the larger of its memory and cores fractions, by the GPU it is on", async (t) => {
  const nodes = [hamiNode('small', { gpus: 1, memMiB: MIB }), hamiNode('big', { gpus: 1, memMiB: 81920 })];
  const cases: Array<[string, Parameters<typeof queuedShare>[1], number]> = [
    ['25 % of memory', { percent: 25 }, 0.25],
    ['25 % of memory, 50 % of cores', { percent: 25, cores: 50 }, 0.5],
    ['4096 MiB: priced on the smallest GPU that holds it (16384 MiB)', { memMiB: 4096 }, 0.25],
    ['20000 MiB: only the 81920 MiB GPU holds it', { memMiB: 20000 }, 0.245],
    ['2 GPUs of 50 %', { gpus: 2, percent: 50 }, 1],
    ['no memory asked: the whole GPU', {}, 1],
    ['bound on the big GPU with 4096 MiB', { memMiB: 4096, node: 'big', onGpu: { index: 0, memMiB: 4096 } }, 0.05],
  ];
  const pods = cases.map(([, o], i) => queuedShare(`c${i}`, o));
  const cache = newShareCache(nodes, pods);
  cases.forEach(([what, , want], i) => {
    t.same(cache.gpuEquivalents(cache.pod(pods[i]!.metadata!.uid!)!), [{ resource: GPU, count: want }], what);
  });
});

t.test("the queue's usage (admin API, CLI) shows shares as fractions: five quarters are 1.25", async (t) => {
  const nodes = [hamiNode('h', { gpus: 2, memMiB: MIB, split: 10 })];
  const pods = [0, 1, 2, 3, 4].map((i) => queuedShare(`q${i}`, { percent: 25, cores: 25, node: 'h', onGpu: { index: i < 4 ? 0 : 1, memMiB: MIB / 4 } }));
  pods.push(queuedShare('be', { qos: 'best-effort', percent: 10, cores: 10, node: 'h', onGpu: { index: 1, memMiB: 1638 } }));
  const cache = newShareCache(nodes, pods);
  const usage = queueUsage(
    'team-a',
    cache.allPods(),
    () => 'NVIDIA-Tesla-T4',
    (p) => cache.gpuEquivalents(p),
  );
  t.same(usage.totals, [{ resource: GPU, guaranteed: 1.25, bestEffort: 0.1 }]);
  t.equal(usage.pods, 6);
  const state = pass(cache, queues(queueSpec('team-a', [limit({ guaranteed: 2, bestEffortCap: 1 })])), T0).state;
  t.match(state.ledger.gpus('team-a'), [{ resource: GPU, used: 1.25, bestEffortUsed: 0.1, guaranteed: 2, bestEffortCap: 1 }]);
});

t.test('capacity: a share waits while no GPU has its memory, though slots are free, and goes when one has', async (t) => {
  const nodes = [hamiNode('h', { gpus: 2, memMiB: MIB, split: 10 })];
  const a = queuedShare('a', { queue: 'team-b', memMiB: 12000, node: 'h', onGpu: { index: 0, memMiB: 12000 } });
  const b = queuedShare('b', { queue: 'team-b', memMiB: 12000, node: 'h', onGpu: { index: 1, memMiB: 12000 } });
  const cache = newShareCache(nodes, [a, b, queuedShare('w', { memMiB: 8000, created: T0 })]);
  const r = pass(cache, 'unlimited', T0 + 1000);
  t.same(keys(r.ev), [], '18 of 20 slots free, but no GPU has 8000 MiB');
  const w = waitOf(r.ev, 'team-a/w/w')!;
  t.equal(w.waitingFor, 'capacity');
  t.match(w.reason, 'no node has a GPU with 8000 MiB and 0 cores free now');
  b.status = { phase: 'Succeeded' };
  cache.upsertPod(b);
  const after = pass(cache, 'unlimited', T0 + 2000);
  t.same(keys(after.ev), ['team-a/w/w'], 'GPU 1 is free again');
  t.same(after.ev.placements.get(after.ev.releases[0]!), ['h']);

  // A share no GPU could ever hold waits as unresolvable, naming the largest GPU.
  const never = newShareCache(nodes, [queuedShare('huge', { memMiB: 20000 })]);
  t.match(
    waitOf(pass(never, 'unlimited', T0).ev, 'team-a/huge/huge')!.reason,
    /no node could ever take a GPU with 20000 MiB and 0 cores \(node h: no GPU could ever hold the share/,
  );

  // Slots: a GPU split 2 ways takes two tasks, however small.
  const two = [hamiNode('s', { gpus: 1, memMiB: MIB, split: 2 })];
  const tiny = [0, 1, 2].map((i) => queuedShare(`t${i}`, { memMiB: 100, created: T0 + i }));
  t.same(keys(pass(newShareCache(two, tiny), 'unlimited', T0 + 1000).ev), ['team-a/t0/t0', 'team-a/t1/t1'], 'the third waits for a slot');
});

t.test('capacity: shares released in one pass never count the same memory twice', async (t) => {
  const nodes = [hamiNode('h', { gpus: 1, memMiB: MIB, split: 10 })];
  const pods = [0, 1, 2].map((i) => queuedShare(`p${i}`, { memMiB: 6000, created: T0 + i }));
  const r = pass(newShareCache(nodes, pods), 'unlimited', T0 + 1000);
  t.same(keys(r.ev), ['team-a/p0/p0', 'team-a/p1/p1'], '2 x 6000 MiB fit 16384, a third does not');
  // Released but not yet bound pods hold their share in the next pass too.
  const released = pods.map((p, i) => (i < 2 ? { ...p, spec: { ...p.spec!, schedulingGates: [] } } : p));
  t.same(keys(pass(newShareCache(nodes, released), 'unlimited', T0 + 2000).ev), []);
});

t.test('capacity: a guaranteed share may count best-effort shares as free (preemption); a best-effort one may not', async (t) => {
  const nodes = [hamiNode('h', { gpus: 1, memMiB: MIB, split: 10 })];
  const be = [0, 1].map((i) => queuedShare(`be${i}`, { queue: 'team-b', qos: 'best-effort', memMiB: 7000, node: 'h', onGpu: { index: 0, memMiB: 7000 } }));
  const cache = newShareCache(nodes, [
    ...be,
    queuedShare('g', { memMiB: 8000, created: T0 }),
    queuedShare('b', { qos: 'best-effort', memMiB: 2000, created: T0 }),
  ]);
  const r = pass(cache, 'unlimited', T0 + 1000);
  t.same(keys(r.ev).sort(), ['team-a/b/b', 'team-a/g/g'], 'g reclaims a best-effort share; b fits the 2384 MiB left idle');
  const onlyBe = newShareCache(nodes, [...be, queuedShare('b2', { qos: 'best-effort', memMiB: 4000, created: T0 })]);
  t.equal(waitOf(pass(onlyBe, 'unlimited', T0 + 1000).ev, 'team-a/b2/b2')!.waitingFor, 'capacity', 'a best-effort share sees only idle memory');
});
