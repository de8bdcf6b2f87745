// Buffered background writes to Postgres. BatchWriter<T> keeps records in a bounded
// in-memory buffer and inserts them in batches in the background, so the caller (a webhook,
// the extender's preempt verb) never waits on Postgres. When Postgres is down it keeps
// retrying with backoff; past the bound the oldest records are dropped (counted, one log
// line per outage). AuditWriter is the webhooks' admission audit on top of it; the
// preemption records (store/preemptions.ts) use it too.
import type { Pool } from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AdmissionRecord, AuditSink } from './audit.js';

interface Pending extends AdmissionRecord {
  at: Date;
}

export interface BatchWriterOptions<T> {
  /** What the records are, for log lines: "admission audit records". */
  what: string;
  insert(batch: T[]): Promise<void>;
  log: Logger;
  maxBuffered: number;
  batchSize?: number;
  /** Delay between a record arriving and its batch being written. */
  intervalMs?: number;
  maxBackoffMs?: number;
  onWritten?(n: number): void;
  onDropped?(n: number): void;
  onPending?(n: number): void;
}

export interface AuditWriterOptions {
  pool: Pool;
  log: Logger;
  metrics?: Metrics;
  maxBuffered: number;
  batchSize?: number;
  intervalMs?: number;
  maxBackoffMs?: number;
}

export class BatchWriter<T> {
  private buf: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<boolean> | null = null;
  private backoffMs: number;
  private failing = false;
  private droppedThisOutage = 0;
  private closed = false;

  constructor(private readonly opts: BatchWriterOptions<T>) {
    this.backoffMs = opts.intervalMs ?? 200;
  }

  get pending(): number {
    return this.buf.length;
  }

  /** Never throws, never blocks: the record is queued and written later. */
  add(r: T): void {
    try {
      this.buf.push(r);
      this.enforceBound();
      this.opts.onPending?.(this.buf.length);
      this.schedule(this.opts.intervalMs ?? 200);
    } catch {
      // A record must never break the answer being given.
    }
  }

  /** Writes everything buffered now; resolves with what is left (0 unless Postgres failed). Never throws. */
  async flush(): Promise<number> {
    while (this.buf.length > 0 || this.writing) {
      const ok = await this.writeOnce();
      if (!ok) break;
    }
    return this.buf.length;
  }

  /** Final flush, then no more background writes. */
  async close(): Promise<number> {
    const left = await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (left > 0) this.opts.log.warn({ lost: left }, `${left} ${this.opts.what} could not be written to Postgres before shutdown`);
    return left;
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.writeOnce().then((ok) => {
        if (this.buf.length > 0) this.schedule(ok ? 0 : this.backoffMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** One batch; concurrent callers share the write in flight. False when Postgres failed. */
  private writeOnce(): Promise<boolean> {
    if (this.writing) return this.writing;
    if (this.buf.length === 0) return Promise.resolve(true);
    const batch = this.buf.splice(0, this.opts.batchSize ?? 200);
    this.writing = this.opts.insert(batch)
      .then(() => {
        this.opts.onWritten?.(batch.length);
        if (this.failing) this.opts.log.info({ dropped: this.droppedThisOutage }, `${this.opts.what}: writes to Postgres resumed`);
        this.failing = false;
        this.droppedThisOutage = 0;
        this.backoffMs = this.opts.intervalMs ?? 200;
        return true;
      })
      .catch((e: unknown) => {
        this.buf.unshift(...batch); // keep order; the bound applies again below
        this.enforceBound();
        if (!this.failing) {
          this.opts.log.warn(
            { err: (e as Error).message, pending: this.buf.length },
            `${this.opts.what} cannot be written to Postgres (${(e as Error).message}); buffering up to ${this.opts.maxBuffered} and retrying`,
          );
        }
        this.failing = true;
        this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 5000);
        this.schedule(this.backoffMs);
        return false;
      })
      .finally(() => {
        this.writing = null;
        this.opts.onPending?.(this.buf.length);
      });
    return this.writing;
  }

  private enforceBound(): void {
    const over = this.buf.length - this.opts.maxBuffered;
    if (over <= 0) return;
    this.buf.splice(0, over);
    this.opts.onDropped?.(over);
    if (this.droppedThisOutage === 0) {
      this.opts.log.warn(
        { bound: this.opts.maxBuffered },
        `${this.opts.what}: buffer is full (${this.opts.maxBuffered} records) while Postgres is slow or unreachable; dropping the oldest records`,
      );
    }
    this.droppedThisOutage += over;
  }
}

/** The admission audit: webhook decisions into admission_decisions. */
export class AuditWriter extends BatchWriter<Pending> implements AuditSink {
  constructor(o: AuditWriterOptions) {
    super({
      what: 'admission audit records',
      insert: (batch) => insertAdmissions(o.pool, batch),
      log: o.log,
      maxBuffered: o.maxBuffered,
      batchSize: o.batchSize,
      intervalMs: o.intervalMs,
      maxBackoffMs: o.maxBackoffMs,
      onWritten: (n) => o.metrics?.auditRecords.inc({ result: 'written' }, n),
      onDropped: (n) => o.metrics?.auditRecords.inc({ result: 'dropped' }, n),
      onPending: (n) => o.metrics?.auditPending.set(n),
    });
  }

  recordAdmission(r: AdmissionRecord): void {
    this.add({ ...r, at: new Date() });
  }
}

async function insertAdmissions(pool: Pool, batch: Pending[]): Promise<void> {
  await pool.query(
    `INSERT INTO admission_decisions
       (decided_at, request_uid, operation, namespace, pod, username, allowed, code, reason, dry_run)
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::boolean[], $8::int[], $9::text[], $10::boolean[])`,
    [
      batch.map((r) => r.at),
      batch.map((r) => String(r.uid ?? '')),
      batch.map((r) => String(r.operation ?? '')),
      batch.map((r) => String(r.namespace ?? '')),
      batch.map((r) => String(r.pod ?? '')),
      batch.map((r) => String(r.user ?? '')),
      batch.map((r) => r.allowed === true),
      batch.map((r) => (Number.isInteger(r.code) ? r.code : 0)),
      batch.map((r) => String(r.reason ?? '')),
      batch.map((r) => r.dryRun === true),
    ],
  );
}
