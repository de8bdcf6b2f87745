// Job records (table jobs): what the queue manager knows of each job, written in the
// background. The manager states what every job looks like now (desired); the recorder
// writes only what changed since the last successful write, in batches. When Postgres is
// down nothing is lost: the latest state of each job stays in memory and is written when
// Postgres answers again (records catch up; intermediate states may be skipped).
// History (finished records) is kept for queue.historyDays, then deleted by store/retention.ts.
// No record blocks another: text Postgres cannot hold is escaped (store/pg-text.ts), and a
// batch Postgres refuses for its content is written record by record; a record refused
// MAX_TRIES_PER_RECORD times is dropped (logged, counted) so the rest keep flowing.
import type { Pool } from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { MAX_TRIES_PER_RECORD } from './audit-writer.js';
import { isStoreUnavailable } from './connection.js';
import { MAX_MESSAGE_CHARS, MAX_NAME_CHARS, storableText } from './pg-text.js';

/** 'preempted' is written by the preemption path (store/preemptions.ts), the rest by the queue manager. */
export type JobState = 'queued' | 'released' | 'running' | 'finished' | 'deleted' | 'preempted';

export interface JobRecord {
  namespace: string;
  /** sluice.io/job */
  name: string;
  queue: string;
  qos: 'guaranteed' | 'best-effort';
  user: string;
  resource: string;
  model: string;
  gangSize: number;
  gpusPerPod: number;
  gpus: number;
  state: JobState;
  reason: string;
  waitingFor: string;
  priority: number;
  podsSeen: number;
  submittedAt: Date;
  releasedAt: Date | null;
  finishedAt: Date | null;
  /** The kind of the pods' owner (Job, JobSet, ...; Pod for a bare pod): what history groups by. */
  kind?: string;
}

export interface StoredJob extends JobRecord {
  id: number;
  updatedAt: Date;
  /** Set by the preemption path when a best-effort job lost pods; null otherwise. */
  preemptedBy: string | null;
  preemptedAt: Date | null;
}

export interface JobRecorderOptions {
  pool: Pool;
  log: Logger;
  metrics?: Metrics;
  intervalMs?: number;
  batchSize?: number;
}

const keyOf = (r: Pick<JobRecord, 'namespace' | 'name'>): string => `${r.namespace}/${r.name}`;

function sameRecord(a: JobRecord, b: JobRecord): boolean {
  return (
    a.state === b.state &&
    a.reason === b.reason &&
    a.waitingFor === b.waitingFor &&
    a.queue === b.queue &&
    a.gpus === b.gpus &&
    a.podsSeen === b.podsSeen &&
    a.priority === b.priority &&
    (a.kind ?? '') === (b.kind ?? '') &&
    a.user === b.user &&
    a.gangSize === b.gangSize &&
    (a.releasedAt?.getTime() ?? 0) === (b.releasedAt?.getTime() ?? 0) &&
    (a.finishedAt?.getTime() ?? 0) === (b.finishedAt?.getTime() ?? 0)
  );
}

const COLUMNS = `namespace text, name text, queue text, qos text, username text, resource text, model text,
  gang_size int, gpus_per_pod double precision, gpus double precision, state text, reason text, waiting_for text, priority int,
  pods_seen int, submitted_at timestamptz, released_at timestamptz, finished_at timestamptz, kind text`;

// One unfinished record per job (unique index jobs_active): the batch updates it, or
// inserts one when there is none, and only if no record of it finished after this run was
// submitted: that run is over (a restart seeing a finished job again, or a bare pod whose
// record the preemption path closed while the pod was still terminating; pods of a later
// run are created later, so they get their own record). A record the
// preemption path marked 'preempted' keeps that state while its victims terminate and when
// the job ends; it changes only when the job queues again (a controller re-created it).
const UPSERT = `
  WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(${COLUMNS})),
  upd AS (
    UPDATE jobs j SET
      queue = x.queue, qos = x.qos, username = x.username, resource = x.resource, model = x.model,
      gang_size = x.gang_size, gpus_per_pod = x.gpus_per_pod, gpus = x.gpus,
      state = CASE WHEN j.state = 'preempted' AND x.state IN ('running', 'finished', 'deleted') THEN j.state ELSE x.state END,
      reason = x.reason, waiting_for = x.waiting_for, priority = x.priority, pods_seen = x.pods_seen,
      submitted_at = LEAST(j.submitted_at, x.submitted_at),
      released_at = COALESCE(j.released_at, x.released_at), finished_at = x.finished_at, kind = x.kind, updated_at = now()
    FROM x WHERE j.namespace = x.namespace AND j.name = x.name AND j.finished_at IS NULL
    RETURNING j.namespace, j.name)
  INSERT INTO jobs (namespace, name, queue, qos, username, resource, model, gang_size, gpus_per_pod, gpus, state, reason,
                    waiting_for, priority, pods_seen, submitted_at, released_at, finished_at, kind, updated_at)
  SELECT namespace, name, queue, qos, username, resource, model, gang_size, gpus_per_pod, gpus, state, reason,
         waiting_for, priority, pods_seen, submitted_at, released_at, finished_at, kind, now()
    FROM x
   WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.namespace = x.namespace AND upd.name = x.name)
     AND NOT EXISTS (
           SELECT 1 FROM jobs j2 WHERE j2.namespace = x.namespace AND j2.name = x.name
              AND j2.finished_at IS NOT NULL AND j2.finished_at >= x.submitted_at)
  ON CONFLICT DO NOTHING`;

interface PreparedRow {
  record: JobRecord;
  row: Record<string, string | number | null>;
  /** Text values escaped to be storable, and cut to their limit. */
  escapes: number;
  cuts: number;
}

function toRow(r: JobRecord): PreparedRow {
  let escapes = 0;
  let cuts = 0;
  const text = (v: string, max = MAX_NAME_CHARS): string => {
    const t = storableText(v, max);
    if (t.escaped) escapes++;
    if (t.cut) cuts++;
    return t.text;
  };
  const row = {
    namespace: text(r.namespace),
    name: text(r.name),
    queue: text(r.queue),
    qos: r.qos,
    username: text(r.user),
    resource: text(r.resource),
    model: text(r.model, MAX_MESSAGE_CHARS),
    gang_size: r.gangSize,
    gpus_per_pod: r.gpusPerPod,
    gpus: r.gpus,
    state: r.state,
    reason: text(r.reason, MAX_MESSAGE_CHARS),
    waiting_for: text(r.waitingFor, MAX_MESSAGE_CHARS),
    priority: r.priority,
    pods_seen: r.podsSeen,
    submitted_at: r.submittedAt.toISOString(),
    released_at: r.releasedAt?.toISOString() ?? null,
    finished_at: r.finishedAt?.toISOString() ?? null,
    kind: text(r.kind ?? ''),
  };
  return { record: r, row, escapes, cuts };
}

export class JobRecorder {
  private readonly written = new Map<string, JobRecord>();
  private readonly dirty = new Map<string, JobRecord>();
  /** Times Postgres refused the pending record of a job for its content. */
  private readonly refusals = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private failing = false;
  private closed = false;

  constructor(private readonly opts: JobRecorderOptions) {}

  start(): void {
    const every = this.opts.intervalMs ?? 1000;
    this.timer = setInterval(() => void this.flush(), every);
    this.timer.unref();
  }

  /** The job as it is now; written at the next flush if it differs from what was written. */
  observe(r: JobRecord): void {
    const k = keyOf(r);
    const w = this.written.get(k);
    if (w && sameRecord(w, r)) {
      this.dirty.delete(k);
      return;
    }
    this.dirty.set(k, r);
  }

  /** The job is gone from the cluster and its last state observed: stop remembering it. */
  forget(namespace: string, name: string): void {
    const k = keyOf({ namespace, name });
    if (!this.dirty.has(k)) this.written.delete(k);
  }

  /** Records not yet written (Postgres slow or down). */
  get pending(): number {
    return this.dirty.size;
  }

  /** Writes what changed; resolves when done or failed (never throws). */
  flush(): Promise<void> {
    if (this.writing) return this.writing;
    if (this.dirty.size === 0) return Promise.resolve();
    this.writing = this.writeBatch().finally(() => {
      this.writing = null;
    });
    return this.writing;
  }

  private async writeBatch(): Promise<void> {
    const batch = [...this.dirty.values()].slice(0, this.opts.batchSize ?? 2000).map((r) => toRow(r));
    try {
      await this.insert(batch);
    } catch (e) {
      if (isStoreUnavailable(e)) return this.unavailable(e);
      // Refused for what a record holds: write each alone so one record cannot hold back the others.
      for (const one of batch) {
        try {
          await this.insert([one]);
        } catch (e1) {
          if (isStoreUnavailable(e1)) return this.unavailable(e1);
          this.refused(one.record, e1);
        }
      }
      return;
    }
    if (this.failing) this.opts.log.info({ pending: this.dirty.size }, 'job records are being written to Postgres again');
    this.failing = false;
  }

  private async insert(rows: PreparedRow[]): Promise<void> {
    await this.opts.pool.query(UPSERT, [JSON.stringify(rows.map((r) => r.row))]);
    let escaped = 0;
    let cut = 0;
    for (const { record, escapes, cuts } of rows) {
      const k = keyOf(record);
      if (this.dirty.get(k) === record) this.dirty.delete(k);
      this.written.set(k, record);
      this.refusals.delete(k);
      escaped += escapes;
      cut += cuts;
    }
    this.opts.metrics?.jobRecords.inc({ result: 'written' }, rows.length);
    if (escaped > 0) this.opts.metrics?.storeValuesRewritten.inc({ records: 'jobs', change: 'escaped' }, escaped);
    if (cut > 0) this.opts.metrics?.storeValuesRewritten.inc({ records: 'jobs', change: 'cut' }, cut);
  }

  private unavailable(e: unknown): void {
    if (!this.failing) {
      this.opts.log.warn(
        { err: (e as Error).message, pending: this.dirty.size },
        `cannot write job records (${(e as Error).message}); keeping the latest state of each job in memory and retrying`,
      );
    }
    this.failing = true;
  }

  /** Postgres refused this record for its content: tried again at the next flushes, then dropped. */
  private refused(r: JobRecord, e: unknown): void {
    const k = keyOf(r);
    const tries = (this.refusals.get(k) ?? 0) + 1;
    if (tries < MAX_TRIES_PER_RECORD) {
      this.refusals.set(k, tries);
      return;
    }
    this.refusals.delete(k);
    if (this.dirty.get(k) === r) this.dirty.delete(k);
    this.opts.metrics?.jobRecords.inc({ result: 'rejected' });
    this.opts.log.error(
      { err: (e as Error).message, job: k, state: r.state, tries },
      `the job record of ${k} (state ${r.state}) was refused by Postgres ${tries} times (${(e as Error).message}) and is dropped; the other job records are written, and a later change of this job is tried again`,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}

interface JobRow {
  id: string;
  namespace: string;
  name: string;
  queue: string;
  qos: 'guaranteed' | 'best-effort';
  username: string;
  resource: string;
  model: string;
  gang_size: number;
  gpus_per_pod: number;
  gpus: number;
  state: JobState;
  reason: string;
  waiting_for: string;
  priority: number;
  pods_seen: number;
  submitted_at: Date;
  released_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
  preempted_by: string | null;
  preempted_at: Date | null;
}

function fromRow(r: JobRow): StoredJob {
  return {
    id: Number(r.id),
    namespace: r.namespace,
    name: r.name,
    queue: r.queue,
    qos: r.qos,
    user: r.username,
    resource: r.resource,
    model: r.model,
    gangSize: r.gang_size,
    gpusPerPod: r.gpus_per_pod,
    gpus: r.gpus,
    state: r.state,
    reason: r.reason,
    waitingFor: r.waiting_for,
    priority: r.priority,
    podsSeen: r.pods_seen,
    submittedAt: r.submitted_at,
    releasedAt: r.released_at,
    finishedAt: r.finished_at,
    updatedAt: r.updated_at,
    preemptedBy: r.preempted_by,
    preemptedAt: r.preempted_at,
  };
}

/** The newest record of a job (the unfinished one if any). */
export async function getJob(pool: Pool, namespace: string, name: string): Promise<StoredJob | null> {
  const res = await pool.query<JobRow>(`SELECT * FROM jobs WHERE namespace = $1 AND name = $2 ORDER BY (finished_at IS NULL) DESC, id DESC LIMIT 1`, [
    namespace,
    name,
  ]);
  return res.rows[0] ? fromRow(res.rows[0]) : null;
}

/** Which finished jobs are "like" a job: same user, queue and kind. */
export interface HistoryKey {
  queue: string;
  user: string;
  kind: string;
}

/**
 * How long the latest finished jobs like this ran (released to finished, seconds), newest
 * first, at most `limit` of them (index jobs_history).
 */
export async function finishedDurations(pool: Pool, key: HistoryKey, limit = 50): Promise<Array<{ seconds: number; finishedAt: Date }>> {
  const res = await pool.query<{ seconds: string; finished_at: Date }>(
    `SELECT EXTRACT(EPOCH FROM (finished_at - released_at)) AS seconds, finished_at FROM jobs
      WHERE queue = $1 AND username = $2 AND kind = $3 AND state = 'finished'
        AND released_at IS NOT NULL AND finished_at IS NOT NULL AND finished_at > released_at
      ORDER BY finished_at DESC LIMIT $4`,
    [key.queue, key.user, key.kind, limit],
  );
  return res.rows.map((r) => ({ seconds: Number(r.seconds), finishedAt: r.finished_at }));
}

/** An unfinished job record, as the sweep for jobs gone unseen reads it (queue/gone-jobs.ts). */
export interface OpenJobRecord {
  id: number;
  namespace: string;
  name: string;
}

export interface OpenJobPage {
  records: OpenJobRecord[];
  /** Postgres's clock when the page was read (microseconds kept; '' for an empty page): a record written after it is not closed. */
  asOf: string;
}

/** What the sweep for jobs gone unseen needs of the store; throws when Postgres cannot be read or written. */
export interface OpenJobRecords {
  /** Unfinished records after `after` in (namespace, name) order, at most `limit`. */
  list(after: Pick<OpenJobRecord, 'namespace' | 'name'> | null, limit: number): Promise<OpenJobPage>;
  /** Closes these records unless finished or written since `asOf`; returns how many it closed. */
  closeGone(ids: readonly number[], asOf: string, reason: string): Promise<number>;
}

// A page of unfinished records through the partial index jobs_active (namespace, name):
// a range scan from the last key of the previous page, never a scan of the history.
const LIST_OPEN = `
  SELECT id, namespace, name, statement_timestamp()::text AS as_of FROM jobs
   WHERE finished_at IS NULL AND (namespace, name) > ($1, $2)
   ORDER BY namespace, name LIMIT $3`;

// finished_at is when the page was read: pods of a later run of the job are created after
// it, so that run still gets a record of its own (see UPSERT). A record the manager wrote
// after the page was read (it saw a pod meanwhile) is left alone. A preempted record keeps
// its state, as when the manager sees its last pod go.
const CLOSE_GONE = `
  UPDATE jobs SET state = CASE WHEN state = 'preempted' THEN state ELSE 'deleted' END,
         reason = $3, waiting_for = '', finished_at = $2::timestamptz, updated_at = now()
   WHERE id = ANY($1::bigint[]) AND finished_at IS NULL AND updated_at <= $2::timestamptz`;

/** The store side of the sweep for jobs gone unseen, on `pool`. */
export function openJobRecords(pool: Pool): OpenJobRecords {
  return {
    async list(after, limit) {
      const res = await pool.query<{ id: string; namespace: string; name: string; as_of: string }>(LIST_OPEN, [
        after?.namespace ?? '',
        after?.name ?? '',
        limit,
      ]);
      return { records: res.rows.map((r) => ({ id: Number(r.id), namespace: r.namespace, name: r.name })), asOf: res.rows[0]?.as_of ?? '' };
    },
    async closeGone(ids, asOf, reason) {
      if (ids.length === 0) return 0;
      const res = await pool.query(CLOSE_GONE, [ids.map(String), asOf, storableText(reason, MAX_MESSAGE_CHARS).text]);
      return res.rowCount ?? 0;
    },
  };
}
