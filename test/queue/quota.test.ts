// Quota: what a queue holds (bound + released-not-bound pods), guaranteed vs best-effort,
// per-user caps, cohort borrowing, and rows per GPU model.
import t from 'tap';
import { QuotaLedger } from '../../queue/quota.js';
import { gpuNode } from '../helpers/k8s.js';
import { GPU, T0, keys, limit, newCache, pass, queuedPod, queueSpec, queues, unit, waitOf } from './helpers.js';

const room = () => [gpuNode('n1', { gpus: 8 }), gpuNode('n2', { gpus: 8 })];
const H100 = 'NVIDIA-H100-80GB-HBM3';

t.test('released-not-bound pods count against quota like bound ones; finished pods do not', async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 4 })]));
  const cache = newCache(room(), [
    queuedPod('bound', { node: 'n1' }),
    queuedPod('released1', { gated: false }),
    queuedPod('released2', { gated: false }),
    queuedPod('done', { node: 'n1', phase: 'Succeeded', gpus: 4 }),
    queuedPod('want', { gpus: 2, created: T0 }),
  ]);
  const { ev, state } = pass(cache, qs, T0 + 1000);
  t.equal(state.ledger.held('team-a'), 3);
  t.same(keys(ev), []);
  const w = waitOf(ev, 'team-a/want/want')!;
  t.equal(w.waitingFor, 'quota');
  t.equal(w.reason, 'queue team-a: 3 of 4 guaranteed nvidia.com/gpu in use, job needs 2');
});

t.test('pods whose release is decided but whose gate the watch still shows count as released', async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 2 })]));
  const a = queuedPod('a', { created: T0, uid: 'uid-a' });
  const cache = newCache(room(), [a, queuedPod('b', { created: T0 + 1 }), queuedPod('c', { created: T0 + 2 })]);
  const first = pass(cache, qs, T0 + 1000).ev;
  t.same(keys(first), ['team-a/a/a', 'team-a/b/b'], 'quota of 2 lets two go in one pass');
  const again = pass(cache, qs, T0 + 2000, { releasing: new Set(['uid-a']) });
  t.equal(again.state.ledger.held('team-a'), 2, 'a (releasing) + b (released by this pass)');
  t.same(keys(again.ev), ['team-a/b/b'], 'a is not offered twice, and holds its quota');
  t.equal(waitOf(again.ev, 'team-a/c/c')!.waitingFor, 'quota');
});

t.test('best-effort never uses guaranteed quota and is capped by bestEffortCap', async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 4, bestEffortCap: 3 })]));
  // Guaranteed quota fully used; best-effort still goes on idle GPUs up to its cap.
  const cache = newCache(room(), [
    queuedPod('g-run', { node: 'n1', gpus: 4 }),
    queuedPod('be1', { qos: 'best-effort', gpus: 2, created: T0 }),
    queuedPod('be2', { qos: 'best-effort', gpus: 2, created: T0 + 1 }),
    queuedPod('be3', { qos: 'best-effort', gpus: 1, created: T0 + 2 }),
    queuedPod('g-more', { gpus: 1, created: T0 + 3 }),
  ]);
  const { ev } = pass(cache, qs, T0 + 1000);
  t.same(keys(ev).sort(), ['team-a/be1/be1', 'team-a/be3/be3']);
  const be2 = waitOf(ev, 'team-a/be2/be2')!;
  t.equal(be2.waitingFor, 'quota');
  t.match(be2.reason, /2 of 3 best-effort nvidia\.com\/gpu in use \(bestEffortCap\), job needs 2/);
  t.equal(waitOf(ev, 'team-a/g-more/g-more')!.waitingFor, 'quota', 'guaranteed quota is full');

  // Best-effort pods do not eat guaranteed quota: with 3 best-effort GPUs held, 4 guaranteed still go.
  const cache2 = newCache(room(), [...[0, 1, 2].map((i) => queuedPod(`be-run${i}`, { qos: 'best-effort', node: 'n1' })), queuedPod('g4', { gpus: 4 })]);
  t.same(keys(pass(cache2, qs, T0 + 1000).ev), ['team-a/g4/g4']);

  // bestEffortCap 0: best-effort never goes, however idle the cluster.
  const none = queues(queueSpec('team-a', [limit({ guaranteed: 8, bestEffortCap: 0 })]));
  const cache3 = newCache(room(), [queuedPod('be', { qos: 'best-effort' })]);
  t.equal(waitOf(pass(cache3, none, T0).ev, 'team-a/be/be')!.waitingFor, 'quota');
});

t.test("perUserMax: a second job of the same user waits, another user's job goes", async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 16, bestEffortCap: 16, perUserMax: 4 })]));
  const cache = newCache(room(), [
    queuedPod('alice-run', { user: 'alice', node: 'n1', gpus: 2 }),
    queuedPod('alice-be', { user: 'alice', qos: 'best-effort', node: 'n1', gpus: 1 }),
    queuedPod('alice-2', { user: 'alice', gpus: 2, created: T0 }),
    queuedPod('alice-1', { user: 'alice', gpus: 1, created: T0 + 1 }),
    queuedPod('bob-4', { user: 'bob', gpus: 4, created: T0 + 2 }),
  ]);
  const { ev } = pass(cache, qs, T0 + 1000);
  t.same(keys(ev).sort(), ['team-a/alice-1/alice-1', 'team-a/bob-4/bob-4'], 'alice has 3 of 4 (both QoS count): 1 more fits, 2 do not');
  const w = waitOf(ev, 'team-a/alice-2/alice-2')!;
  t.equal(w.waitingFor, 'user_quota');
  t.equal(w.reason, 'user alice holds 3 of at most 4 nvidia.com/gpu in queue team-a (perUserMax), job needs 2');
});

t.test('cohort borrowing: a queue exceeds its own guaranteed while a cohort peer is idle', async (t) => {
  const specs = (cohort: string | null) =>
    queues(queueSpec('team-a', [limit({ guaranteed: 2 })], { cohort }), queueSpec('team-b', [limit({ guaranteed: 6 })], { cohort }));
  const pods = [queuedPod('a-run', { node: 'n1', gpus: 2 }), queuedPod('a-big', { gpus: 4, created: T0 })];
  t.same(keys(pass(newCache(room(), pods), specs('lab'), T0).ev), ['team-a/a-big/a-big'], "borrows 4 of team-b's idle 6");

  const alone = pass(newCache(room(), pods), specs(null), T0).ev;
  t.equal(waitOf(alone, 'team-a/a-big/a-big')!.waitingFor, 'quota', 'no cohort: no borrowing');

  // team-b uses 3 of its 6: the cohort has 3 idle, a-big needs 4.
  const busy = [...pods, ...[0, 1, 2].map((i) => queuedPod(`b-run${i}`, { queue: 'team-b', node: 'n2' }))];
  const w = waitOf(pass(newCache(room(), busy), specs('lab'), T0).ev, 'team-a/a-big/a-big')!;
  t.equal(w.waitingFor, 'quota');
  t.match(w.reason, /2 of 2 guaranteed .* job needs 4 \(cohort lab has no idle quota to lend\)/);

  // What a borrows is no longer idle for the cohort: two borrowers cannot both take b's 6.
  const two = [queuedPod('a-big1', { gpus: 4, created: T0 }), queuedPod('a-big2', { gpus: 4, created: T0 + 1 })];
  const ev2 = pass(newCache(room(), [queuedPod('a-run', { node: 'n1', gpus: 2 }), ...two]), specs('lab'), T0).ev;
  t.same(keys(ev2), ['team-a/a-big1/a-big1'], '2 held + 4 borrowed leaves 2 idle in the cohort, not 4');

  // A queue of another cohort lends nothing.
  const other = queues(
    queueSpec('team-a', [limit({ guaranteed: 2 })], { cohort: 'lab' }),
    queueSpec('team-b', [limit({ guaranteed: 6 })], { cohort: 'other' }),
  );
  t.equal(waitOf(pass(newCache(room(), pods), other, T0).ev, 'team-a/a-big/a-big')!.waitingFor, 'quota');
});

t.test("model rows: '' counts every pod, a model row only pods on (or asking for) that model", async (t) => {
  const nodes = [gpuNode('a1', { gpus: 8 }), gpuNode('h1', { gpus: 8, product: H100 })];
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 4 }), limit({ model: 'a100', guaranteed: 2 })]));
  const cache = newCache(nodes, [queuedPod('on-h100', { node: 'h1', gpus: 2 }), queuedPod('on-a100', { node: 'a1', gpus: 1 })]);
  const ledger = pass(cache, qs, T0).state.ledger;
  t.equal(ledger.held('team-a'), 3);
  // '' row: 3 of 4 used; a100 row: 1 of 2 used.
  t.equal(ledger.check(unit('x', { gpus: 1 })), null);
  t.equal(ledger.check(unit('x', { gpus: 1, models: ['a100'] })), null);
  t.match(ledger.check(unit('x', { gpus: 2, models: ['h100'] })), { waitingFor: 'quota', reason: /3 of 4 guaranteed nvidia\.com\/gpu in use, job needs 2/ });
  // Some applicable row with room is enough (the a100 row has 1 left, the '' row 1 left).
  t.match(ledger.check(unit('x', { gpus: 2, models: ['a100'] })), { waitingFor: 'quota' });

  // Only a model row: an H100 job has no quota at all; an A100 job counts against it.
  const only = queues(queueSpec('team-a', [limit({ model: 'a100', guaranteed: 2 })]));
  const l2 = pass(newCache(nodes, [queuedPod('on-h100', { node: 'h1', gpus: 2 })]), only, T0).state.ledger;
  t.match(l2.check(unit('h', { models: ['h100'] })), {
    waitingFor: 'quota',
    reason: /has no nvidia\.com\/gpu quota for GPU model h100; ask a sluice admin to add one/,
  });
  t.equal(l2.check(unit('a', { gpus: 2, models: ['a100'] })), null, 'the H100 pod does not use the a100 row');
  t.equal(l2.check(unit('a', { gpus: 2, models: ['NVIDIA-A100-SXM4-80GB'] })), null, 'a full product name matches the alias row');
  // Released-not-bound pods count against the row of the model they ask for.
  const l3 = pass(newCache(nodes, [queuedPod('rel', { gated: false, gpus: 2, model: 'a100' })]), only, T0).state.ledger;
  t.match(l3.check(unit('a', { gpus: 1, models: ['a100'] })), { waitingFor: 'quota', reason: /2 of 2 guaranteed nvidia\.com\/gpu \(model a100\)/ });
});

t.test('model rows only: released pods that accept any model still count against quota', async (t) => {
  // Rows a100: 2 and h100: 2, no '' row: at most 4 GPUs in all. Ten 1-GPU jobs that
  // accept any model are checked against both rows (applicableLimits with no models), but
  // once released (and before they bind) they count against neither.
  const nodes = [gpuNode('a1', { gpus: 8 }), gpuNode('h1', { gpus: 8, product: H100 })];
  const qs = queues(queueSpec('team-a', [limit({ model: 'a100', guaranteed: 2 }), limit({ model: 'h100', guaranteed: 2 })]));
  const pods = Array.from({ length: 10 }, (_, i) => queuedPod(`j${i}`, { created: T0 + i }));
  const { ev } = pass(newCache(nodes, pods), qs, T0 + 1000);
  t.ok(ev.releases.length <= 4, `released ${ev.releases.length} one-GPU jobs on a quota of 2 + 2`);
  // The same across passes: 5 released-not-bound pods, and a sixth still goes.
  const released = Array.from({ length: 5 }, (_, i) => queuedPod(`r${i}`, { gated: false }));
  const next = pass(newCache(nodes, [...released, queuedPod('late')]), qs, T0 + 1000).ev;
  t.same(keys(next), [], '5 GPUs already released against a quota of 4');
});

t.test('a job whose queue no longer exists waits with that reason', async (t) => {
  const qs = queues(queueSpec('team-a', [limit({ guaranteed: 4 })]));
  const { ev } = pass(newCache(room(), [queuedPod('orphan', { queue: 'gone' })]), qs, T0);
  const w = waitOf(ev, 'team-a/orphan/orphan')!;
  t.equal(w.waitingFor, 'queue_missing');
  t.match(w.reason, /queue gone does not exist/);
});

t.test('QuotaLedger.gpus reports held and quota per resource', async (t) => {
  const l = new QuotaLedger(queues(queueSpec('q', [limit({ guaranteed: 4, bestEffortCap: 2 }), limit({ model: 'a100', guaranteed: 6 })])));
  l.add({ queue: 'q', user: 'u', qos: 'guaranteed', requests: [{ resource: GPU, count: 3 }], product: null, models: [] });
  l.add({ queue: 'q', user: 'u', qos: 'best-effort', requests: [{ resource: GPU, count: 1 }], product: null, models: [] });
  t.same(l.gpus('q'), [{ resource: GPU, used: 3, bestEffortUsed: 1, guaranteed: 6, bestEffortCap: 2 }]);
  t.equal(l.held('q'), 4);
  t.equal(new QuotaLedger(new Map(), true).check(unit('any', { gpus: 1000 })), null, 'unlimited: only capacity decides');
});
