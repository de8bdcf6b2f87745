// Retention: the tables that grow with traffic are pruned in the background, so a cluster
// running thousands of pods a day does not fill Postgres. Once an hour (the first round a
// minute after the schema is migrated) one replica deletes what is older than
// queue.historyDays, table by table, in batches of at most `batchSize` rows with a pause
// between them: each batch is a short statement of its own (a few ms, measured in
// docs/performance.md), so no big transaction holds row locks, bloats WAL in one go or
// keeps vacuum from cleaning up. The deletes run on a connection of their own, never one
// of the pool the webhooks and the extender read queues from, and nothing on the hot path
// waits for them: writers only insert new rows, which a delete of old rows never locks.
// Replicas take a session advisory lock per schema, so one prunes while the others skip.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { withClient } from './connection.js';

export interface RetentionRule {
  table: string;
  /** The row's time: older than the retention means deleted. Indexed, so a batch is an index range scan. */
  column: string;
  /** The index the batch's scan uses (checked by test/store/retention.test.ts). */
  index: string;
}

/**
 * What is deleted, per table: the rows whose time is older than queue.historyDays days.
 * 1. jobs, by finished_at: finished records only. A record without finished_at (a job
 *    queued, released, running, or preempted and coming back) is never deleted, whatever
 *    its age: it is what the queue manager and the jobs API show of a job still there.
 * 2. admission_decisions, by decided_at.
 * 3. preemptions, by decided_at. A preempted job's own record keeps who preempted it
 *    (jobs.preempted_by), so it does not need this row.
 * 4. bind_failures, by last_at (the latest failure of that pod, node and cause).
 * The console's Activity reads the last 24 hours of these, and queue.historyDays is at
 * least 1: nothing it shows is deleted.
 */
export const RETENTION_RULES: readonly RetentionRule[] = [
  { table: 'jobs', column: 'finished_at', index: 'jobs_finished_at' },
  { table: 'admission_decisions', column: 'decided_at', index: 'admission_decisions_decided_at' },
  { table: 'preemptions', column: 'decided_at', index: 'preemptions_decided_at' },
  { table: 'bind_failures', column: 'last_at', index: 'bind_failures_last_at' },
];

/** The tables never pruned, and why: they do not grow with traffic. */
export const NOT_PRUNED: Readonly<Record<string, string>> = {
  queues: 'the queues an admin created',
  queue_limits: 'the quotas an admin set',
  schema_migrations: 'one row per migration applied',
};

/**
 * One batch: the oldest `$2` rows older than `$1` days, found through the rule's index,
 * then deleted by their physical address (a TID scan). `id IN (subquery)` lets the planner
 * pick a hash join over a sequential scan of the whole table (seen on 20,000 rows); the
 * array of addresses cannot. A row a writer updated meanwhile (a bind failing again moves
 * last_at) has a new address and a recent time: it is left alone.
 */
export function batchDeleteSql(rule: RetentionRule): string {
  const old = `${rule.column} < now() - make_interval(days => $1)`;
  return `DELETE FROM ${rule.table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${rule.table} WHERE ${old} ORDER BY ${rule.column} LIMIT $2)) AND ${old}`;
}

export interface RetentionOptions {
  /** Connections for the deletes only (the Store gives a pool of one, separate from the request pool). */
  pool: pg.Pool;
  schema: string;
  log: Logger;
  metrics?: Metrics;
  /** queue.historyDays */
  days: number;
  /** Between rounds (default 1 hour). */
  intervalMs?: number;
  /** From start() to the first round (default 1 minute: not in the middle of a start-up). */
  firstDelayMs?: number;
  /** Rows per delete (default 1000). */
  batchSize?: number;
  /** Pause between two batches (default 50 ms). */
  pauseMs?: number;
}

export type PrunedRows = Record<string, number>;

export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<PrunedRows | null> | null = null;
  private readonly stopping = new AbortController();
  private failing = false;

  constructor(private readonly opts: RetentionOptions) {}

  /** Rounds every intervalMs from now on, the first after firstDelayMs. Idempotent. */
  start(): void {
    if (this.timer || this.stopping.signal.aborted) return;
    const every = this.opts.intervalMs ?? 3600_000;
    const tick = (delay: number): void => {
      this.timer = setTimeout(() => {
        void this.pruneNow().finally(() => {
          if (!this.stopping.signal.aborted) tick(every);
        });
      }, delay);
      this.timer.unref();
    };
    tick(this.opts.firstDelayMs ?? 60_000);
  }

  /**
   * One round now: rows deleted per table, or null when another replica holds the lock,
   * the store is closing or Postgres failed (logged; the next round tries again). Never throws.
   */
  pruneNow(): Promise<PrunedRows | null> {
    this.round ??= this.pruneAll()
      .then(
        (res) => {
          if (this.failing) this.opts.log.info('pruning old records works again');
          this.failing = false;
          return res;
        },
        (e: unknown) => {
          if (this.stopping.signal.aborted) return null;
          if (!this.failing) {
            this.opts.log.warn(
              { err: (e as Error).message },
              `pruning records older than ${this.opts.days} days failed (${(e as Error).message}); tried again at the next round`,
            );
          }
          this.failing = true;
          return null;
        },
      )
      .finally(() => {
        this.round = null;
      });
    return this.round;
  }

  private async pruneAll(): Promise<PrunedRows | null> {
    const lockKey = `sluice.retention.${this.opts.schema}`;
    return withClient(this.opts.pool, this.opts.log, async (client) => {
      const lock = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [lockKey]);
      if (!lock.rows[0]?.ok) return null;
      try {
        const started = Date.now();
        const pruned: PrunedRows = {};
        for (const rule of RETENTION_RULES) {
          const n = await this.pruneTable(client, rule);
          if (n === null) return null;
          pruned[rule.table] = n;
        }
        const total = Object.values(pruned).reduce((a, n) => a + n, 0);
        this.opts.metrics?.storePruneLast.set(Date.now() / 1000);
        if (total > 0)
          this.opts.log.info({ deleted: pruned, ms: Date.now() - started }, `deleted ${total} records older than ${this.opts.days} days (queue.historyDays)`);
        return pruned;
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
      }
    });
  }

  /** Batches until one comes back short; null when stopped between two. */
  private async pruneTable(client: pg.PoolClient, rule: RetentionRule): Promise<number | null> {
    const sql = batchDeleteSql(rule);
    const batchSize = this.opts.batchSize ?? 1000;
    let deleted = 0;
    for (;;) {
      if (this.stopping.signal.aborted) return null;
      const started = performance.now();
      const n = (await client.query(sql, [this.opts.days, batchSize])).rowCount ?? 0;
      this.opts.metrics?.storePruneBatch.observe({ table: rule.table }, (performance.now() - started) / 1000);
      deleted += n;
      if (n > 0) this.opts.metrics?.storePrunedRows.inc({ table: rule.table }, n);
      if (n < batchSize) return deleted;
      try {
        await sleep(this.opts.pauseMs ?? 50, undefined, { signal: this.stopping.signal });
      } catch {
        return null;
      }
    }
  }

  /** No more rounds; a round under way stops after its current batch. */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.round;
  }
}
