// Failed binds: each bind the extender could not carry out, and each share bind HAMi's
// device plugin answered with "failed", becomes a row in bind_failures, read by the
// console's Activity timeline. Written in the background by a BatchWriter, so the bind
// answer never waits on Postgres.
//
// kube-scheduler retries an unschedulable pod every few seconds (up to its 10 s backoff),
// and a pod that cannot bind fails the same way each time: one row per pod, node and
// cause counts the attempts and keeps the first and last time and the latest reason.
// Rows whose last failure is older than queue.historyDays are deleted by store/retention.ts.
import type { Pool } from 'pg';
import type { Logger } from '../observability/logger.js';
import { BatchWriter, pgText } from './audit-writer.js';
import { MAX_NAME_CHARS } from './pg-text.js';

/**
 * Why a bind failed:
 * - rejected: sluice's re-check at bind time refused it (the node no longer fits the pod,
 *   the pod is already bound, its GPU requests cannot be read);
 * - node_gone: the node is no longer in the cluster;
 * - api_error: the apiserver refused or did not answer the binding (or a step of HAMi's
 *   protocol before it: the node lock, the pod's allocation annotations);
 * - allocation_failed: the pod was bound, but HAMi's device plugin could not allocate the
 *   GPUs sluice chose (bind phase "failed").
 */
export const BIND_FAILURE_CAUSES = ['rejected', 'node_gone', 'api_error', 'allocation_failed'] as const;
export type BindFailureCause = (typeof BIND_FAILURE_CAUSES)[number];

export interface BindFailure {
  at: Date;
  namespace: string;
  pod: string;
  uid: string;
  /** sluice.io/job of the pod ('' when it has none). */
  job: string;
  queue: string;
  node: string;
  cause: BindFailureCause;
  reason: string;
}

export interface BindFailureSink {
  /** Never throws, never blocks. */
  recordBindFailure(f: BindFailure): void;
}

export class BindFailureWriter extends BatchWriter<BindFailure> implements BindFailureSink {
  constructor(o: { pool: Pool; log: Logger; maxBuffered: number; intervalMs?: number }) {
    super({
      what: 'failed-bind records',
      insert: (batch) => insertBindFailures(o.pool, batch),
      log: o.log,
      maxBuffered: o.maxBuffered,
      intervalMs: o.intervalMs,
      batchSize: 200,
    });
  }

  recordBindFailure(f: BindFailure): void {
    this.add(f);
  }
}

interface Row {
  first: Date;
  last: Date;
  attempts: number;
  f: BindFailure;
}

/** Folds a batch into one row per pod, node and cause (ON CONFLICT may touch a row once per statement), then upserts. */
export async function insertBindFailures(pool: Pool, batch: readonly BindFailure[]): Promise<void> {
  const rows = new Map<string, Row>();
  for (const f of batch) {
    const key = `${f.uid}\u0000${f.node}\u0000${f.cause}`;
    const r = rows.get(key);
    if (!r) rows.set(key, { first: f.at, last: f.at, attempts: 1, f });
    else {
      r.attempts++;
      if (f.at < r.first) r.first = f.at;
      if (f.at >= r.last) {
        r.last = f.at;
        r.f = f;
      }
    }
  }
  const all = [...rows.values()];
  const name = (v: string): string => pgText(v, MAX_NAME_CHARS);
  await pool.query(
    `INSERT INTO bind_failures (first_at, last_at, namespace, pod, pod_uid, job, queue, node, cause, reason, attempts)
     SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                          $8::text[], $9::text[], $10::text[], $11::int[])
     ON CONFLICT (pod_uid, node, cause) DO UPDATE SET
       first_at = LEAST(bind_failures.first_at, EXCLUDED.first_at),
       last_at = GREATEST(bind_failures.last_at, EXCLUDED.last_at),
       attempts = bind_failures.attempts + EXCLUDED.attempts,
       reason = CASE WHEN EXCLUDED.last_at >= bind_failures.last_at THEN EXCLUDED.reason ELSE bind_failures.reason END,
       job = EXCLUDED.job,
       queue = EXCLUDED.queue`,
    [
      all.map((r) => r.first),
      all.map((r) => r.last),
      all.map((r) => name(r.f.namespace)),
      all.map((r) => name(r.f.pod)),
      all.map((r) => name(r.f.uid)),
      all.map((r) => name(r.f.job)),
      all.map((r) => name(r.f.queue)),
      all.map((r) => name(r.f.node)),
      all.map((r) => r.f.cause),
      all.map((r) => pgText(r.f.reason)),
      all.map((r) => r.attempts),
    ],
  );
}
