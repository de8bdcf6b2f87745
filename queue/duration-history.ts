// Finished-job history for learned durations, at the edge: read from Postgres
// (store/jobs.ts finishedDurations) in the background and kept in an lru-cache, so the
// forecast never waits on the database. A key not cached yet answers "nothing known" at
// once and is read for the next forecast.
import { LRUCache } from 'lru-cache';
import type { Logger } from '../observability/logger.js';
import type { HistoryKey } from '../store/jobs.js';
import type { DurationSample } from './duration.js';

export type HistoryReader = (key: HistoryKey) => Promise<Array<{ seconds: number; finishedAt: Date }>>;

export interface DurationHistoryOptions {
  read: HistoryReader;
  log: Logger;
  /** How long a read stays fresh (default 5 min): finished jobs change history slowly. */
  ttlMs?: number;
  maxKeys?: number;
  /** Called when a read brought something new (the ETA service recomputes). */
  onLoaded?: () => void;
}

const keyOf = (k: HistoryKey): string => `${k.queue}\u0000${k.user}\u0000${k.kind}`;

export class DurationHistory {
  private readonly cache: LRUCache<string, DurationSample[]>;
  private readonly reading = new Set<string>();
  private failing = false;

  constructor(private readonly opts: DurationHistoryOptions) {
    this.cache = new LRUCache({ max: opts.maxKeys ?? 10_000, ttl: opts.ttlMs ?? 300_000, allowStale: true });
  }

  /** What is known now (possibly stale, or [] before the first read); refreshes in the background. */
  get(key: HistoryKey): readonly DurationSample[] {
    const k = keyOf(key);
    const have = this.cache.get(k, { allowStale: true });
    if (have === undefined || this.cache.getRemainingTTL(k) <= 0) void this.load(k, key);
    return have ?? [];
  }

  private async load(k: string, key: HistoryKey): Promise<void> {
    if (this.reading.has(k)) return;
    this.reading.add(k);
    try {
      const rows = await this.opts.read(key);
      this.cache.set(
        k,
        rows.map((r) => ({ seconds: r.seconds, finishedMs: r.finishedAt.getTime() })),
      );
      this.failing = false;
      if (rows.length > 0) this.opts.onLoaded?.();
    } catch (e) {
      if (!this.failing)
        this.opts.log.warn(
          { err: (e as Error).message },
          'cannot read finished-job history for ETAs; durations without an annotation are unknown until Postgres answers',
        );
      this.failing = true;
    } finally {
      this.reading.delete(k);
    }
  }
}
