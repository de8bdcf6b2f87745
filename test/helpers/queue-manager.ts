// A real QueueManager as the queue tests run it: one queue team-a, no store, no Events, the
// sole leader, a 1 ms debounce and an hourly resync (so only the test makes passes happen).
import { SOLE_LEADER } from '../../cluster/leader.js';
import type { ClusterCache } from '../../cluster/cache.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { EtaService } from '../../queue/eta-service.js';
import { QueueManager, type QueueManagerOptions } from '../../queue/manager.js';
import type { ReleaseSink } from '../../queue/releaser.js';
import { limit, queueSpec } from '../queue/helpers.js';

export interface TestManagerOptions {
  /** Guaranteed GPUs of queue team-a. */
  guaranteed: number;
  /** Its best-effort cap (default none). */
  bestEffortCap?: number;
  /** Where releases go; null (the default) = the manager decides but releases nothing. */
  releaser?: ReleaseSink | null;
  /** Take the leader's part too (releasing needs it). */
  lead?: boolean;
  /** Anything else of QueueManagerOptions (a clock, idleChangeDebounceMs, ...). */
  extra?: Partial<QueueManagerOptions>;
}

/** Started (and leading with `lead`); stopped at the test's teardown. */
export async function startTestManager(t: { teardown(fn: () => unknown): void }, cache: ClusterCache, o: TestManagerOptions): Promise<QueueManager> {
  const manager = new QueueManager({
    cache,
    source: {
      listQueues: async () => [
        queueSpec('team-a', [limit({ guaranteed: o.guaranteed, ...(o.bestEffortCap !== undefined ? { bestEffortCap: o.bestEffortCap } : {}) })]),
      ],
      onQueueChanged: () => undefined,
    },
    releaser: o.releaser ?? null,
    records: null,
    events: null,
    leadership: SOLE_LEADER,
    log: createLogger('silent'),
    metrics: new Metrics({ defaultMetrics: false }),
    backfillGuardSeconds: 600,
    debounceMs: 1,
    resyncSeconds: 3600,
    waitEventIntervalSeconds: 60,
    ...o.extra,
  });
  t.teardown(() => manager.stop());
  await manager.start();
  if (o.lead) await manager.startLeading();
  return manager;
}

/**
 * startTestManager on a fixed clock, one evaluation made, and an ETA service on it that has
 * run once. Its admission budget is generous: the ETA tests are about what the estimate
 * says, and a shared test machine can be slow (the budget's own cases make theirs).
 */
export async function startTestEta(
  t: { teardown(fn: () => unknown): void },
  cache: ClusterCache,
  o: Omit<TestManagerOptions, 'extra'> & { nowMs: number },
): Promise<{ manager: QueueManager; eta: EtaService }> {
  const now = (): number => o.nowMs;
  const manager = await startTestManager(t, cache, { ...o, extra: { now } });
  manager.evaluateNow();
  const eta = new EtaService({ cache, manager, history: null, log: createLogger('silent'), backfillGuardMs: 600_000, now, admissionBudgetMs: 5000 });
  manager.eta = eta;
  eta.recompute();
  return { manager, eta };
}
