// A release counts as made from the moment it is decided: while Redis is still taking the
// order, another evaluation must not hand the same quota to a second job; if Redis refuses,
// the job is decided again.
import t from 'tap';
import type { QueueManager } from '../../queue/manager.js';
import type { ReleaseSink } from '../../queue/releaser.js';
import type { Unit } from '../../queue/units.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';
import { startTestManager } from '../helpers/queue-manager.js';
import { newCache, queuedPod, T0 } from './helpers.js';

/** Takes orders and answers only when told to (Redis slow, then up or down). */
class HeldSink implements ReleaseSink {
  readonly orders: Unit[] = [];
  private answers: Array<(ok: boolean) => void> = [];
  enqueue(u: Unit): Promise<boolean> {
    this.orders.push(u);
    return new Promise((resolve) => this.answers.push(resolve));
  }
  answerAll(ok: boolean): void {
    for (const a of this.answers.splice(0)) a(ok);
  }
  async pendingUids(): Promise<Set<string>> {
    return new Set();
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A sole-leader manager of queue team-a (guaranteed GPUs as given), started and leading. */
function leadingManager(
  t: { teardown(fn: () => unknown): void },
  cache: ReturnType<typeof newCache>,
  releaser: ReleaseSink,
  guaranteed: number,
  extra: { idleChangeDebounceMs?: number } = {},
): Promise<QueueManager> {
  return startTestManager(t, cache, { guaranteed, releaser, lead: true, extra });
}

t.test('a decided release holds its quota until Redis answers; a refused one is decided again', async (t) => {
  const cache = newCache([gpuNode('g1', { gpus: 8 })], [queuedPod('a', { gpus: 4, created: T0 }), queuedPod('b', { gpus: 4, created: T0 + 1000 })]);
  const sink = new HeldSink();
  const manager = await leadingManager(t, cache, sink, 4);
  manager.evaluateNow();
  t.same(
    sink.orders.map((u) => u.job),
    ['a'],
    'a is released (4 of 4 guaranteed)',
  );
  const again = manager.evaluateNow();
  t.same(
    again?.releases.map((u) => u.job),
    [],
    'while Redis has not answered, b does not get the same quota',
  );
  t.match(again?.waiting.get('team-a')?.[0]?.reason ?? '', /4 of 4 guaranteed/, 'b waits on quota: a counts as released');
  sink.answerAll(false);
  await new Promise((r) => setTimeout(r, 50)); // the refusal triggers an evaluation of its own
  t.same(
    sink.orders.map((u) => u.job),
    ['a', 'a'],
    'Redis refused: a is decided again, first in line, and b still waits',
  );
});

t.test('while nothing waits, cluster changes wait for a later pass; a pod arriving gated is decided at once', async (t) => {
  const cache = newCache([gpuNode('g1', { gpus: 8 })], []);
  const orders: string[] = [];
  const sink: ReleaseSink = {
    enqueue: async (u) => (orders.push(u.job), true),
    pendingUids: async () => new Set(),
    start: async () => undefined,
    stop: async () => undefined,
    close: async () => undefined,
  };
  const manager = await leadingManager(t, cache, sink, 8, { idleChangeDebounceMs: 60_000 });
  manager.evaluateNow();
  const settled = manager.current()!.evaluatedAtMs;
  await new Promise((r) => setTimeout(r, 20));

  // An unmanaged pod is bound and runs: nothing waits, so no pass for now.
  cache.upsertPod(gpuPod('other', { gpus: 2, node: 'g1', phase: 'Running' }));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(manager.current()!.evaluatedAtMs, settled, 'no pass right after a change while nothing waits');

  // A gated pod arrives while that late pass is pending: it does not wait for it.
  cache.upsertPod(queuedPod('c', { gpus: 4 }));
  const until = Date.now() + 15_000;
  while (!orders.includes('c') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.same(orders, ['c'], 'the gated pod is released without waiting for the idle-time pass');
  t.ok(manager.current()!.evaluatedAtMs > settled);
});
