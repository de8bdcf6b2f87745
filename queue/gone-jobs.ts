// Job records left open by jobs that went while no replica was watching. The queue manager
// closes a job's record when it sees the job's last pod go; a job whose pods were all
// deleted while sluice was down, or while no replica held the Lease, is never seen going,
// and its record would stay queued/running for ever (in the jobs API, the console and
// `sluice get jobs`), and never be pruned (store/retention.ts keeps unfinished records).
// So a replica that becomes leader, once its cluster cache has synced, reads every
// unfinished record in pages and closes those whose job has no pod left in the cache.
// Off the hot path: a page of records per statement, a pause between pages, on the
// manager's timer; nothing the extender or the webhooks wait for.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { OpenJobRecord, OpenJobRecords } from '../store/jobs.js';
import { MAX_NAME_CHARS, storableText } from '../store/pg-text.js';

/** The reason a record closed by the sweep carries. */
export const GONE_UNSEEN_REASON =
  'gone while sluice was not watching: no pod of this job was left in the cluster when a sluice replica became leader; finished_at is when that was found, the job ended earlier';

/** A job as its record names it (namespace and name as stored; no stored text holds U+0000). */
const recordKey = (namespace: string, name: string): string => `${namespace}\u0000${name}`;

/**
 * The key of a live job's record: namespace and job name as the recorder stores them
 * (store/pg-text.ts escapes what Postgres cannot hold and cuts long names, e.g. the
 * `pod-<name>` job of a bare pod with a 253-character name).
 */
export function storedJobKey(namespace: string, job: string): string {
  return recordKey(storableText(namespace, MAX_NAME_CHARS).text, storableText(job, MAX_NAME_CHARS).text);
}

/**
 * The records to close: those whose job has no pod in the cluster cache. `live` holds the
 * storedJobKey of every job with at least one pod there, finished pods included (the
 * manager records how those end itself).
 */
export function goneRecords(records: readonly OpenJobRecord[], live: ReadonlySet<string>): number[] {
  return records.filter((r) => !live.has(recordKey(r.namespace, r.name))).map((r) => r.id);
}

export interface GoneJobSweepOptions {
  records: OpenJobRecords;
  /** namespace/job of every job with at least one pod in the cluster cache, read before each page is decided. */
  liveJobs(): Iterable<string>;
  /** Writes the job records pending in memory first, so that none is mistaken for one left behind. */
  flush?(): Promise<void>;
  log: Logger;
  metrics?: Metrics;
  /** Records read and closed per statement (default 500). */
  batchSize?: number;
  /** Pause between two pages (default 50 ms). */
  pauseMs?: number;
}

export class GoneJobSweep {
  private failing = false;

  constructor(private readonly opts: GoneJobSweepOptions) {}

  /**
   * One sweep: the number of records closed, or null when Postgres failed (logged; the
   * page that failed changed nothing, the caller tries again later) or `signal` stopped it
   * between two pages. Never throws.
   */
  async run(signal: AbortSignal): Promise<number | null> {
    const started = performance.now();
    const batchSize = this.opts.batchSize ?? 500;
    let closed = 0;
    let read = 0;
    try {
      await this.opts.flush?.();
      let after: OpenJobRecord | null = null;
      for (;;) {
        if (signal.aborted) return null;
        const page = await this.opts.records.list(after, batchSize);
        read += page.records.length;
        // Decided against the cache as it is now, after the page was read.
        const ids = goneRecords(page.records, this.liveKeys());
        const n = await this.opts.records.closeGone(ids, page.asOf, GONE_UNSEEN_REASON);
        closed += n;
        if (n > 0) this.opts.metrics?.jobRecords.inc({ result: 'closed_gone' }, n);
        if (page.records.length < batchSize) break;
        after = page.records[page.records.length - 1]!;
        try {
          await sleep(this.opts.pauseMs ?? 50, undefined, { signal });
        } catch {
          return null;
        }
      }
    } catch (e) {
      if (!this.failing) {
        this.opts.log.warn(
          { err: (e as Error).message, closed },
          `cannot check job records for jobs gone while sluice was not watching (${(e as Error).message}); tried again at the next resync`,
        );
      }
      this.failing = true;
      return null;
    }
    if (this.failing) this.opts.log.info('job records are checked for jobs gone while sluice was not watching again');
    this.failing = false;
    const ms = Math.round(performance.now() - started);
    if (closed > 0) {
      this.opts.log.info({ closed, read, ms }, `closed ${closed} job records whose jobs were gone while sluice was not watching (no pod left in the cluster)`);
    } else {
      this.opts.log.debug({ read, ms }, 'no job record left open by a job gone while sluice was not watching');
    }
    return closed;
  }

  private liveKeys(): Set<string> {
    const out = new Set<string>();
    for (const key of this.opts.liveJobs()) {
      const slash = key.indexOf('/'); // a namespace holds no '/'
      out.add(storedJobKey(key.slice(0, slash), key.slice(slash + 1)));
    }
    return out;
  }
}
