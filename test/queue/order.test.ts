// Release order: within a queue priority, then FIFO, then key; across queues fair share
// by weight.
import t from 'tap';
import { compareQueues, compareUnits, type QueueTurn } from '../../queue/order.js';
import { evaluate } from '../../queue/evaluate.js';
import { CapacityModel } from '../../queue/capacity.js';
import { QuotaLedger } from '../../queue/quota.js';
import { gpuNode } from '../helpers/k8s.js';
import { GPU, T0, keys, newCache, pass, queuedPod, queueSpec, queues, limit, unit } from './helpers.js';

t.test('compareUnits: priority, then submission time, then key', async (t) => {
  const hiLate = unit('z-hi', { priority: 10, submittedMs: T0 + 9 });
  const loEarly = unit('a-lo', { priority: 0, submittedMs: T0 });
  const loEarlyB = unit('b-lo', { priority: 0, submittedMs: T0 });
  const loLate = unit('a-late', { priority: 0, submittedMs: T0 + 5 });
  const sorted = [loLate, loEarlyB, hiLate, loEarly].sort(compareUnits);
  t.same(
    sorted.map((u) => u.key),
    ['z-hi', 'a-lo', 'b-lo', 'a-late'],
  );
  t.equal(compareUnits(loEarly, loEarly), 0);
  t.ok(compareUnits(unit('x', { priority: -5 }), unit('y', { priority: -10 })) < 0, 'negative priorities order too');
});

t.test('compareQueues: lowest held/weight, then older head, then name', async (t) => {
  const turn = (name: string, held: number, weight: number, submittedMs = T0): QueueTurn => ({ name, held, weight, head: unit(`${name}/j`, { submittedMs }) });
  t.ok(compareQueues(turn('a', 3, 3), turn('b', 2, 1)) < 0, '3/3 = 1 is below 2/1 = 2');
  t.ok(compareQueues(turn('a', 4, 1), turn('b', 0, 1)) > 0, 'an idle queue goes before a queue holding GPUs');
  t.ok(compareQueues(turn('b', 1, 1, T0), turn('a', 1, 1, T0 + 1)) < 0, 'equal share: older head first');
  t.ok(compareQueues(turn('a', 1, 1), turn('b', 1, 1)) < 0, 'then by name');
});

t.test('within a queue the pass releases in priority-then-FIFO order', async (t) => {
  // Room for exactly 3 one-GPU jobs.
  const pods = [
    queuedPod('old', { created: T0 }),
    queuedPod('new', { created: T0 + 3000 }),
    queuedPod('urgent', { created: T0 + 5000, priority: 100 }),
    queuedPod('mid', { created: T0 + 1000 }),
  ];
  const cache = newCache([gpuNode('n1', { gpus: 3 })], pods);
  const { ev } = pass(cache, 'unlimited', T0 + 10_000);
  t.same(keys(ev), ['team-a/urgent/urgent', 'team-a/old/old', 'team-a/mid/mid']);
  const w = ev.waiting.get('team-a')!;
  t.same(
    w.map((x) => [x.unit.key, x.position, x.waitingFor]),
    [['team-a/new/new', 1, 'capacity']],
  );
});

t.test('fair share: weights 1 and 3 split a cluster with room for 40 jobs 10 : 30', async (t) => {
  const pods = [];
  for (let i = 0; i < 60; i++) {
    pods.push(queuedPod(`a${i}`, { queue: 'light', created: T0 + i }));
    pods.push(queuedPod(`b${i}`, { queue: 'heavy', created: T0 + i }));
  }
  const cache = newCache(
    [0, 1, 2, 3, 4].map((i) => gpuNode(`n${i}`, { gpus: 8 })),
    pods,
  );
  const qs = queues(queueSpec('light', [limit({ guaranteed: 100 })], { weight: 1 }), queueSpec('heavy', [limit({ guaranteed: 100 })], { weight: 3 }));
  const { ev } = pass(cache, qs, T0 + 100_000);
  const light = ev.releases.filter((u) => u.queue === 'light').length;
  const heavy = ev.releases.filter((u) => u.queue === 'heavy').length;
  t.equal(light + heavy, 40, 'the cluster is filled');
  t.equal(light, 10);
  t.equal(heavy, 30);
  // Each queue's own releases keep FIFO order.
  t.same(
    ev.releases.filter((u) => u.queue === 'light').map((u) => u.job),
    Array.from({ length: 10 }, (_, i) => `a${i}`),
  );
  // Turns interleave: no prefix of the release order is far from the 1:3 split.
  let a = 0;
  let b = 0;
  for (const u of ev.releases) {
    if (u.queue === 'light') a++;
    else b++;
    t.ok(Math.abs(3 * a - b) <= 3, `after ${a + b} releases: ${a} light, ${b} heavy`);
  }
});

t.test('fair share counts what queues already hold: 1:3 of the total, not of the new room', async (t) => {
  // heavy already holds 0, light holds 10 of its share of 40 total at weights 1:3.
  const running = Array.from({ length: 10 }, (_, i) => queuedPod(`r${i}`, { queue: 'light', node: `n${i % 5}` }));
  const pods = [...running];
  for (let i = 0; i < 40; i++) {
    pods.push(queuedPod(`a${i}`, { queue: 'light', created: T0 + i }));
    pods.push(queuedPod(`b${i}`, { queue: 'heavy', created: T0 + i }));
  }
  const cache = newCache(
    [0, 1, 2, 3, 4].map((i) => gpuNode(`n${i}`, { gpus: 8 })),
    pods,
  );
  const qs = queues(queueSpec('light', [limit({ guaranteed: 100 })], { weight: 1 }), queueSpec('heavy', [limit({ guaranteed: 100 })], { weight: 3 }));
  const { ev } = pass(cache, qs, T0 + 100_000);
  t.equal(ev.releases.length, 30);
  t.equal(ev.releases.filter((u) => u.queue === 'heavy').length, 30, 'light already holds its share: all new room goes to heavy');
});

t.test('a queue already holding GPUs goes after an idle one, even with an older job', async (t) => {
  const pods = [
    ...[0, 1, 2, 3].map((i) => queuedPod(`busy-run${i}`, { queue: 'busy', node: 'n1' })),
    queuedPod('busy-old', { queue: 'busy', created: T0 }),
    queuedPod('idle-new', { queue: 'idle', created: T0 + 60_000 }),
  ];
  const cache = newCache([gpuNode('n1', { gpus: 5 })], pods); // room for one more job
  const qs = queues(queueSpec('busy', [limit({ guaranteed: 8 })]), queueSpec('idle', [limit({ guaranteed: 8 })]));
  const { ev } = pass(cache, qs, T0 + 120_000, { guardMs: 600_000 });
  t.same(keys(ev), ['team-a/idle-new/idle-new']);
  t.equal(ev.waiting.get('busy')![0]!.waitingFor, 'capacity');
});

t.test('fair share through evaluate() with hand-made units and a bare capacity model', async (t) => {
  // 12 free GPUs, 2-GPU jobs, weights 2 : 1 -> 4 jobs (8 GPUs) for x and 2 (4 GPUs) for y.
  const units = [];
  for (let i = 0; i < 10; i++) {
    units.push(unit(`x${i}`, { queue: 'x', gpus: 2, submittedMs: T0 + i }));
    units.push(unit(`y${i}`, { queue: 'y', gpus: 2, submittedMs: T0 + i }));
  }
  const capacity = new CapacityModel([
    { name: 'n', product: 'NVIDIA-A100-SXM4-80GB', unusable: null, labels: {}, capacity: { [GPU]: 12 }, free: { [GPU]: 12 }, bestEffort: {} },
  ]);
  const ev = evaluate({
    units,
    ledger: new QuotaLedger(new Map(), true),
    capacity,
    weights: new Map([
      ['x', 2],
      ['y', 1],
    ]),
    nowMs: T0 + 1000,
    backfillGuardMs: 600_000,
  });
  t.equal(ev.releases.filter((u) => u.queue === 'x').length, 4);
  t.equal(ev.releases.filter((u) => u.queue === 'y').length, 2);
});
