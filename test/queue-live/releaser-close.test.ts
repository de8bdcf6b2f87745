// The release worker on real Redis: a replica that becomes leader and shuts down at once
// (start, then close, before Redis has answered bull's first commands) must stop cleanly:
// no unhandled rejection (bull's process() names the worker connection without awaiting
// it; unhandled, that rejection stops Node) and no Redis connection left open (bull opens
// the worker's connections lazily, after a close that came too early).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { BullReleaser, type GatePatcher } from '../../queue/releaser.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const neverCalled: GatePatcher = {
  removeGate: () => Promise.reject(new Error('no release was enqueued in this test')),
};

t.test('start then close at once or a few ms later: no unhandled rejection, no connection left', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));
  const metrics = new Metrics();
  for (let i = 0; i < 20; i++) {
    const r = new BullReleaser({
      redisUrl: REDIS_URL,
      prefix: `rc${randomBytes(4).toString('hex')}`,
      patcher: neverCalled,
      ratePerSecond: 10,
      log: createLogger('silent'),
      metrics,
    });
    await r.start();
    // Closed at once or a few ms later: bull's first commands are then at every stage.
    if (i % 5) await new Promise((res) => setTimeout(res, i % 5));
    await r.close();
  }
  await new Promise((res) => setTimeout(res, 500));
  t.same(
    unhandled.map((e) => (e as Error).message),
    [],
    'every command bull left pending was handled',
  );
  t.equal(redisSockets(), 0, 'every Redis connection the releasers opened is closed');
});

/** Sockets of this process open to Redis's port or still connecting (this file opens no others). */
function redisSockets(): number {
  const port = Number(new URL(REDIS_URL).port || 6379);
  const handles = (
    process as unknown as { _getActiveHandles(): Array<{ remotePort?: number; connecting?: boolean; destroyed?: boolean }> }
  )._getActiveHandles();
  return handles.filter((h) => !h.destroyed && (h.remotePort === port || h.connecting === true)).length;
}
