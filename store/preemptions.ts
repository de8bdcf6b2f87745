// Preemption records: each preemption the extender decides becomes a row in `preemptions`,
// and each victim's job record (jobs, the active one of namespace + sluice.io/job) gets
// state 'preempted' and who preempted it; a job with no record yet gets one. Written in the
// background by a BatchWriter, so the preempt answer never waits on Postgres.
import type { Pool } from 'pg';
import type { Logger } from '../observability/logger.js';
import { BatchWriter, pgText } from './audit-writer.js';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';

export interface PreemptedPod {
  namespace: string;
  pod: string;
  uid: string;
  /** sluice.io/job (or the name the webhook would derive). */
  job: string;
  queue: string;
  user: string;
  /** GPUs of `resource` the pod held (devices). */
  gpus: number;
  /** A GPU share: the GPUs it held as a fraction of a GPU (ClusterCache.gpuEquivalents),
   * as its job record counts them. */
  share?: number;
  gangSize: number;
  /** The controller that made it (Job, ReplicaSet, ...): a new pod comes back and queues again. Null for a bare pod. */
  owner: { apiVersion: string; kind: string; name: string; uid: string } | null;
}

export interface PreemptionRecord {
  at: Date;
  preemptor: { namespace: string; pod: string; uid: string; job: string; queue: string };
  node: string;
  resource: string;
  gpusFreed: number;
  gpusTakenBack: number;
  /** What the victims' owners read: "preempted by team-b/train-7, guaranteed in queue team-b". */
  reason: string;
  victims: PreemptedPod[];
}

export interface PreemptionSink {
  /** Never throws, never blocks. */
  recordPreemption(r: PreemptionRecord): void;
}

export class PreemptionWriter extends BatchWriter<PreemptionRecord> implements PreemptionSink {
  constructor(o: { pool: Pool; log: Logger; maxBuffered: number; intervalMs?: number }) {
    super({
      what: 'preemption records',
      insert: (batch) => insertPreemptions(o.pool, batch),
      log: o.log,
      maxBuffered: o.maxBuffered,
      intervalMs: o.intervalMs,
      batchSize: 50,
    });
  }

  recordPreemption(r: PreemptionRecord): void {
    this.add(r);
  }
}

/** One transaction per batch: all of a preemption's rows, or none. */
export async function insertPreemptions(pool: Pool, batch: readonly PreemptionRecord[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const r of batch) {
      const p = r.preemptor;
      const by = pgText(`${p.namespace}/${p.pod}${p.job ? ` (job ${p.job}, queue ${p.queue})` : ` (queue ${p.queue})`}`);
      await client.query(
        `INSERT INTO preemptions (decided_at, preemptor_namespace, preemptor_pod, preemptor_uid, preemptor_job, queue, node, resource,
                                  gpus_freed, gpus_taken_back, victims, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [
          r.at,
          pgText(p.namespace),
          pgText(p.pod),
          pgText(p.uid),
          pgText(p.job),
          pgText(p.queue),
          pgText(r.node),
          pgText(r.resource),
          r.gpusFreed,
          r.gpusTakenBack,
          JSON.stringify(
            r.victims.map((v) => ({
              namespace: pgText(v.namespace),
              pod: pgText(v.pod),
              uid: pgText(v.uid),
              job: pgText(v.job),
              queue: pgText(v.queue),
              gpus: v.gpus,
              ...(v.share !== undefined ? { share: v.share } : {}),
            })),
          ),
          pgText(r.reason),
        ],
      );
      for (const job of victimJobs(r.victims)) {
        // A job whose pods come back (made by a controller) keeps its active record, so the
        // queue manager continues it; a bare pod never comes back, so its record is finished.
        // The record to mark is the active one, or the one the queue manager already closed as
        // 'deleted' after this decision: kube-scheduler deletes the victims at once, and the
        // queue manager can record that before this batch is written (seen on a real cluster).
        const finished = job.controlled ? null : r.at;
        const up = await client.query(
          `UPDATE jobs SET state = 'preempted', reason = $3, preempted_by = $4, preempted_at = $5, updated_at = GREATEST(updated_at, $5),
                           finished_at = COALESCE(finished_at, $6)
            WHERE namespace = $1 AND name = $2 AND (finished_at IS NULL OR (state = 'deleted' AND finished_at >= $5))`,
          [pgText(job.namespace), pgText(job.job), pgText(r.reason), by, r.at, finished],
        );
        if (up.rowCount === 0) {
          await client.query(
            `INSERT INTO jobs (namespace, name, queue, qos, username, resource, gang_size, gpus_per_pod, gpus, state, reason,
                               submitted_at, preempted_by, preempted_at, finished_at, updated_at)
             VALUES ($1, $2, $3, 'best-effort', $4, $5, $6, $7, $8, 'preempted', $9, $10, $11, $10, $12, $10)`,
            [
              pgText(job.namespace),
              pgText(job.job),
              pgText(job.queue),
              pgText(job.user),
              pgText(r.resource),
              job.gangSize,
              job.gpusPerPod,
              job.gpus,
              pgText(r.reason),
              r.at,
              by,
              finished,
            ],
          );
        }
      }
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

interface VictimJob {
  namespace: string;
  job: string;
  queue: string;
  user: string;
  gangSize: number;
  gpusPerPod: number;
  gpus: number;
  controlled: boolean;
}

/** The victims grouped by job (a gang's pods are one job). */
function victimJobs(victims: readonly PreemptedPod[]): VictimJob[] {
  const by = new Map<string, VictimJob>();
  for (const v of victims) {
    const key = `${v.namespace}/${v.job}`;
    const j = by.get(key);
    // As the queue manager's job records count GPUs: a share as its fraction of a GPU.
    const gpus = v.share ?? v.gpus;
    if (j) {
      j.gpus = milliToGpus(gpusToMilli(j.gpus) + gpusToMilli(gpus));
      j.gpusPerPod = Math.max(j.gpusPerPod, gpus);
      j.controlled &&= v.owner !== null;
    } else {
      by.set(key, {
        namespace: v.namespace,
        job: v.job,
        queue: v.queue,
        user: v.user,
        gangSize: v.gangSize,
        gpusPerPod: gpus,
        gpus,
        controlled: v.owner !== null,
      });
    }
  }
  return [...by.values()];
}
