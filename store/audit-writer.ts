// Buffered background writes to Postgres. BatchWriter<T> keeps records in a bounded
// in-memory buffer and inserts them in batches in the background, so the caller (a webhook,
// the extender's preempt verb) never waits on Postgres. When Postgres is down it keeps
// retrying with backoff; past the bound the oldest records are dropped (counted, one log
// line per outage). A record Postgres refuses for what it holds (not for being
// unreachable) must not block the rest: the batch is then written record by record, and a
// record refused MAX_TRIES_PER_RECORD times is dropped (counted, one log line).
// AuditWriter is the webhooks' admission audit on top of it; the preemption records
// (store/preemptions.ts) use it too.
import type { Pool } from 'pg';
import { isStoreUnavailable } from './connection.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AdmissionRecord, AuditSink } from './audit.js';
import { MAX_MESSAGE_CHARS, MAX_NAME_CHARS, storableText } from './pg-text.js';

interface Pending extends AdmissionRecord {
  at: Date;
}

/** A record refused this often for its content (not an outage) is dropped. */
export const MAX_TRIES_PER_RECORD = 3;

/** Text Postgres can store (store/pg-text.ts: U+0000 as the text \u0000, lone surrogates as U+FFFD), cut to `max` characters. */
export function pgText(v: unknown, max: number = MAX_MESSAGE_CHARS): string {
  return storableText(v, max).text;
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
  /** A record refused MAX_TRIES_PER_RECORD times for its content was dropped. */
  onRejected?(n: number): void;
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

interface Entry<T> {
  rec: T;
  /** Times Postgres refused this record for its content. */
  tries: number;
}

export class BatchWriter<T> {
  private buf: Array<Entry<T>> = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<boolean> | null = null;
  private backoffMs: number;
  private failing = false;
  private droppedThisOutage = 0;
  private rejectedLogged = false;
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
      this.buf.push({ rec: r, tries: 0 });
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
    this.writing = this.opts
      .insert(batch.map((e) => e.rec))
      .then(() => {
        this.written(batch.length);
        return true;
      })
      .catch((e: unknown) => (isStoreUnavailable(e) ? this.outage(batch, e) : this.oneByOne(batch)))
      .finally(() => {
        this.writing = null;
        this.opts.onPending?.(this.buf.length);
      });
    return this.writing;
  }

  private written(n: number): void {
    this.opts.onWritten?.(n);
    if (this.failing) this.opts.log.info({ dropped: this.droppedThisOutage }, `${this.opts.what}: writes to Postgres resumed`);
    this.failing = false;
    this.droppedThisOutage = 0;
    this.backoffMs = this.opts.intervalMs ?? 200;
  }

  /** Postgres unreachable or failing: keep the batch, back off, retry (bounded by maxBuffered). */
  private outage(batch: Array<Entry<T>>, e: unknown): boolean {
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
  }

  /**
   * Postgres refused the batch for its content: write each record alone so the good ones
   * go through; a refused record is tried again later, and dropped after MAX_TRIES_PER_RECORD.
   */
  private async oneByOne(batch: Array<Entry<T>>): Promise<boolean> {
    const retry: Array<Entry<T>> = [];
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]!;
      try {
        await this.opts.insert([r.rec]);
        this.written(1);
      } catch (e) {
        if (isStoreUnavailable(e)) {
          this.buf.unshift(...retry, ...batch.slice(i));
          return this.outage([], e);
        }
        r.tries++;
        if (r.tries < MAX_TRIES_PER_RECORD) retry.push(r);
        else this.reject(r, e);
      }
    }
    this.buf.push(...retry);
    return true;
  }

  private reject(r: Entry<T>, e: unknown): void {
    this.opts.onRejected?.(1);
    if (this.rejectedLogged) return;
    this.rejectedLogged = true;
    this.opts.log.error(
      { err: (e as Error).message, tries: r.tries },
      `a record of the ${this.opts.what} was refused by Postgres ${r.tries} times (${(e as Error).message}) and is dropped; later such records are only counted`,
    );
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
      onRejected: (n) => o.metrics?.auditRecords.inc({ result: 'rejected' }, n),
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
      batch.map((r) => pgText(r.uid, MAX_NAME_CHARS)),
      batch.map((r) => pgText(r.operation, MAX_NAME_CHARS)),
      batch.map((r) => pgText(r.namespace, MAX_NAME_CHARS)),
      batch.map((r) => pgText(r.pod, MAX_NAME_CHARS)),
      batch.map((r) => pgText(r.user, MAX_NAME_CHARS)),
      batch.map((r) => r.allowed === true),
      batch.map((r) => (Number.isInteger(r.code) ? r.code : 0)),
      batch.map((r) => pgText(r.reason)),
      batch.map((r) => r.dryRun === true),
    ],
  );
}
