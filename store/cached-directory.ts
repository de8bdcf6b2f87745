// The QueueDirectory the webhooks read: an lru-cache of queue definitions in front of
// Postgres. A cached entry is trusted only while the LISTEN connection is up (every queue
// change notifies, so a trusted entry is current); a cache hit costs no database round
// trip. When Postgres cannot be reached the last known answer is served (stale), and with
// nothing cached the answer is 'unavailable' so the caller applies its own policy.
import { LRUCache } from 'lru-cache';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { QueueDirectory, QueueLookup, QueueSpec } from './queue-directory.js';

type Entry = { kind: 'found'; queue: QueueSpec; at: number } | { kind: 'missing'; at: number };

export interface CachedDirectoryOptions {
  /** Reads one queue from Postgres (null = no such queue); throws when Postgres fails. */
  fetch: (name: string) => Promise<QueueSpec | null>;
  log: Logger;
  metrics?: Metrics;
  maxEntries: number;
  /** How long a 'missing' answer is trusted: queues created meanwhile show up after this at worst. */
  missingTtlMs: number;
  /** After a failed query, serve from the cache without trying Postgres for this long. */
  retryDbAfterMs?: number;
  now?: () => number;
}

export class CachedQueueDirectory implements QueueDirectory {
  private readonly cache: LRUCache<string, Entry>;
  private readonly now: () => number;
  /** Bumped on every invalidation: a query that raced with one must not be cached. */
  private generation = 0;
  private dbDownUntil = 0;
  private degraded = false;
  /** True while the LISTEN connection is up, i.e. no notification can have been missed. */
  private listening = false;
  /** Database queries made by lookup() (tests check that cache hits make none). */
  dbQueries = 0;
  /** One query per name at a time: a burst of pods of one job after an invalidation makes one read. */
  private readonly inflight = new Map<string, { generation: number; answer: Promise<QueueLookup> }>();
  /** Uncached names already logged in this outage (bounded), so a burst logs once per name. */
  private readonly loggedUnavailable = new Set<string>();

  constructor(private readonly opts: CachedDirectoryOptions) {
    this.cache = new LRUCache<string, Entry>({ max: opts.maxEntries });
    this.now = opts.now ?? Date.now;
  }

  /** Called by the listener: connected = entries can be trusted from now on. */
  setListening(up: boolean): void {
    if (up) this.clear(); // notifications may have been missed while it was down
    this.listening = up;
  }

  invalidate(name: string): void {
    this.generation++;
    this.cache.delete(name);
  }

  clear(): void {
    this.generation++;
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }

  async lookup(name: string): Promise<QueueLookup> {
    const entry = this.cache.get(name);
    const now = this.now();
    if (entry && this.listening && (entry.kind === 'found' || now - entry.at < this.opts.missingTtlMs)) {
      this.opts.metrics?.queueLookups.inc({ source: 'cache' });
      return answer(entry);
    }
    if (now < this.dbDownUntil) return this.fallback(name, entry, 'Postgres was unreachable moments ago');
    // Join a read in flight only if nothing was invalidated since it started.
    const pending = this.inflight.get(name);
    if (pending && pending.generation === this.generation) {
      return pending.answer.then((r) => (r.status === 'found' ? { status: 'found', queue: structuredClone(r.queue) } : r));
    }
    const mine = { generation: this.generation, answer: this.read(name, entry, now) };
    this.inflight.set(name, mine);
    void mine.answer
      .finally(() => {
        if (this.inflight.get(name) === mine) this.inflight.delete(name);
      })
      .catch(() => undefined);
    return mine.answer;
  }

  private async read(name: string, entry: Entry | undefined, now: number): Promise<QueueLookup> {
    const generation = this.generation;
    this.dbQueries++;
    let queue: QueueSpec | null;
    try {
      queue = await this.opts.fetch(name);
    } catch (e) {
      this.dbDownUntil = this.now() + (this.opts.retryDbAfterMs ?? 1000);
      this.opts.metrics?.storeUp.set(0);
      return this.fallback(name, entry, (e as Error).message || String(e));
    }
    this.dbDownUntil = 0;
    this.opts.metrics?.storeUp.set(1);
    if (this.degraded) {
      this.degraded = false;
      this.loggedUnavailable.clear();
      this.opts.log.info('Postgres reachable again: queue lookups read the database and cache again');
    }
    const fresh: Entry = queue ? { kind: 'found', queue, at: now } : { kind: 'missing', at: now };
    if (generation === this.generation) this.cache.set(name, fresh);
    this.opts.metrics?.queueLookups.inc({ source: 'database' });
    return answer(fresh);
  }

  private fallback(name: string, entry: Entry | undefined, reason: string): QueueLookup {
    if (!this.degraded) {
      this.degraded = true;
      this.opts.log.warn(
        { reason, cached: this.cache.size },
        `Postgres unreachable (${reason}): queue lookups answer from the in-memory cache; queues not cached are reported unavailable`,
      );
    }
    if (entry) {
      this.opts.metrics?.queueLookups.inc({ source: 'stale_cache' });
      return answer(entry);
    }
    this.opts.metrics?.queueLookups.inc({ source: 'unavailable' });
    if (!this.loggedUnavailable.has(name) && this.loggedUnavailable.size < 100) {
      this.loggedUnavailable.add(name);
      this.opts.log.warn(
        { queue: name, reason },
        `queue ${name} is not cached and Postgres is unreachable; the admission policy for an unavailable store applies`,
      );
    }
    return { status: 'unavailable', reason: `queue store unreachable (${reason}) and queue ${name} is not cached` };
  }
}

function answer(e: Entry): QueueLookup {
  return e.kind === 'found' ? { status: 'found', queue: structuredClone(e.queue) } : { status: 'missing' };
}
