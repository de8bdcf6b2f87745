// The submit-time warning's place in the queue (queue/preview.ts), on a real cluster cache
// and queue manager.
import t from 'tap';
import { SOLE_LEADER } from '../../cluster/leader.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { QueueManager } from '../../queue/manager.js';
import { submitWarning } from '../../queue/preview.js';
import { gpuNode } from '../helpers/k8s.js';
import { GPU, limit, newCache, queuedPod, queueSpec, T0 } from './helpers.js';

t.test("a gang's second pod is not behind its first: same position, counted once", async (t) => {
  const full = queuedPod('busy', { gpus: 8, node: 'n1' });
  const first = queuedPod('g-0', { gpus: 4, job: 'g', gang: 2, created: T0 });
  const other = queuedPod('solo', { gpus: 4, created: T0 + 1000 });
  const cache = newCache([gpuNode('n1', { gpus: 8 })], [full, first, other]);
  const manager = new QueueManager({
    cache,
    source: { listQueues: async () => [queueSpec('team-a', [limit({ guaranteed: 32 })])], onQueueChanged: () => undefined },
    releaser: null,
    records: null,
    events: null,
    leadership: SOLE_LEADER,
    log: createLogger('silent'),
    metrics: new Metrics({ defaultMetrics: false }),
    backfillGuardSeconds: 600,
    debounceMs: 1,
    resyncSeconds: 3600,
    waitEventIntervalSeconds: 60,
    now: () => T0 + 2000,
  });
  t.teardown(() => manager.stop());
  await manager.start();
  manager.evaluateNow();
  const second = queuedPod('g-1', { gpus: 4, job: 'g', gang: 2, created: T0 + 2000 });
  t.equal(
    submitWarning(manager.current(), second, [GPU], T0 + 2000),
    'queued in team-a: a gang of 2; released when all 2 pods exist and fit, position 1 of 2',
    'the gang (older) first, then solo; not "position 2 of 3"',
  );
  const later = queuedPod('late', { gpus: 4, created: T0 + 2000 });
  t.match(submitWarning(manager.current(), later, [GPU], T0 + 2000), /position 3 of 3$/, 'a job of its own still counts both ahead');
});
