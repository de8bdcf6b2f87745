// cluster/watch-with-backoff.ts with a fake informer: failed starts are retried with
// doubling backoff, a synced informer that later fails is restarted, the backoff resets
// after a sync, and the error listener is registered once however often it restarts.
import t from 'tap';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { WatchWithBackoff } from '../../cluster/watch-with-backoff.js';

class FakeInformer {
  errorListeners: Array<(err?: unknown) => void> = [];
  starts = 0;
  stops = 0;
  /** What the next start() does: emit an error (a failed list) or succeed. */
  plan: Array<'fail' | 'ok'> = [];
  on(verb: string, cb: (err?: unknown) => void): void {
    if (verb === 'error') this.errorListeners.push(cb);
  }
  off(verb: string, cb: (err?: unknown) => void): void {
    if (verb === 'error') this.errorListeners = this.errorListeners.filter((l) => l !== cb);
  }
  async start(): Promise<void> {
    this.starts++;
    if ((this.plan.shift() ?? 'ok') === 'fail') for (const l of [...this.errorListeners]) l(new Error('connect ECONNREFUSED'));
  }
  async stop(): Promise<void> {
    this.stops++;
  }
  /** A running watch breaks. */
  fail(): void {
    for (const l of [...this.errorListeners]) l(new Error('watch ended'));
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('retries with backoff, restarts after a broken watch, one error listener', async (t) => {
  const informer = new FakeInformer();
  informer.plan = ['fail', 'fail', 'ok'];
  const metrics = new Metrics({ defaultMetrics: false });
  let synced = 0;
  const delays: number[] = [];
  const w = new WatchWithBackoff({
    kind: 'namespace',
    what: 'namespaces',
    informer,
    log: createLogger('silent'),
    metrics,
    onSynced: () => synced++,
    minBackoffMs: 10,
    maxBackoffMs: 40,
    onRetry: (ms) => delays.push(ms),
  });
  t.teardown(() => w.stop());
  w.start();
  for (let i = 0; i < 100 && synced === 0; i++) await tick(5);
  t.equal(synced, 1, 'synced after two failed starts');
  t.equal(w.synced, true);
  t.same(delays, [10, 20], 'backoff doubles');
  t.equal(informer.starts, 3);
  for (let round = 0; round < 3; round++) {
    informer.fail();
    for (let i = 0; i < 100 && synced === round + 1; i++) await tick(5);
  }
  t.equal(synced, 4, 'restarted after each broken watch');
  t.same(delays, [10, 20, 10, 10, 10], 'backoff reset after every sync');
  t.equal(informer.errorListeners.length, 1, 'the error listener is registered once, not once per restart');
  const errs = await metrics.informerErrors.get();
  t.equal(errs.values.find((v) => v.labels.kind === 'namespace')?.value, 5, 'every failure counted');
  await w.stop();
  informer.fail();
  await tick(30);
  t.equal(informer.starts, 6, 'no restart after stop');
});

t.test('backoff is capped', async (t) => {
  const informer = new FakeInformer();
  informer.plan = ['fail', 'fail', 'fail', 'fail', 'ok'];
  const delays: number[] = [];
  const w = new WatchWithBackoff({
    kind: 'pod',
    what: 'pods',
    informer,
    log: createLogger('silent'),
    metrics: new Metrics({ defaultMetrics: false }),
    onSynced: () => undefined,
    minBackoffMs: 5,
    maxBackoffMs: 20,
    onRetry: (ms) => delays.push(ms),
  });
  t.teardown(() => w.stop());
  w.start();
  for (let i = 0; i < 100 && !w.synced; i++) await tick(5);
  t.same(delays, [5, 10, 20, 20]);
});
