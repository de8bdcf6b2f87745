// The queue directory: how the admission path reads a queue's definition and quota.
// The implementation (store/cached-directory.ts) answers from an lru-cache kept fresh by
// Postgres LISTEN/NOTIFY, so the webhook does not wait on a database round trip in the
// common case; when Postgres is down and nothing is cached it says 'unavailable' and the
// caller applies its own policy (deny or allow).

import { modelMatches } from '../placement/gpu-model.js';

/** One quota row of a queue: per GPU resource and (optionally) GPU model. */
export interface QueueLimit {
  /** Extended resource name, e.g. nvidia.com/gpu. */
  resource: string;
  /** GPU model this row is about (alias or GFD product); '' = any model. */
  model: string;
  /** GPUs the queue is guaranteed (its quota for guaranteed-QoS pods). */
  guaranteed: number;
  /** Most GPUs the queue may hold with best-effort pods (borrowing idle capacity). */
  bestEffortCap: number;
  /** Most GPUs one job may ask for; 0 = no per-job limit. */
  perJobMax: number;
  /** Most GPUs one user may hold in the queue (both QoS); 0 = no per-user cap. */
  perUserMax: number;
}

/**
 * The rows of a queue's limits that apply to a resource and a pod's accepted GPU models:
 * same resource, and a row model of '' (any), or no models asked, or a model that names
 * the row's (either way round: "a100" and "NVIDIA-A100-SXM4-80GB"). Admission and the
 * queue manager read quotas through this one rule.
 */
export function applicableLimits(limits: readonly QueueLimit[], resource: string, models: readonly string[]): QueueLimit[] {
  return limits.filter(
    (l) => l.resource === resource && (l.model === '' || models.length === 0 || models.some((m) => modelMatches(l.model, m) || modelMatches(m, l.model))),
  );
}

export interface QueueSpec {
  name: string;
  /** Parent queue in the hierarchy, or null for a root queue. */
  parent: string | null;
  /** Queues in one cohort may borrow each other's idle guaranteed quota; null = none. */
  cohort: string | null;
  /** A closed queue accepts no new jobs. */
  open: boolean;
  /** Fair-share weight relative to sibling queues. */
  weight: number;
  /** No rows = no guaranteed quota and no per-job limit (see README "Store"). */
  limits: QueueLimit[];
  /**
   * Longest sluice.io/expected-duration a job may declare (s); null or absent = no cap.
   * Also a limit: a best-effort job running past it is the first to be reclaimed (docs/eta.md).
   */
  maxDurationSeconds?: number | null;
}

export type QueueLookup = { status: 'found'; queue: QueueSpec } | { status: 'missing' } | { status: 'unavailable'; reason: string }; // Postgres down and nothing cached

export interface QueueDirectory {
  /** Never throws: a database failure becomes a stale cached answer or 'unavailable'. */
  lookup(name: string): Promise<QueueLookup>;
}
