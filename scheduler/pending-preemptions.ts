// Preemptions sluice has answered but kube-scheduler has not carried out yet. The preempt
// verb only names victims; kube-scheduler deletes them (or does not: another node won, the
// pod was bound elsewhere, or the call was not kube-scheduler's at all). So a preemption is
// recorded (Postgres row, job state, Events) only when the cache sees one of its victims
// deleted or given a deletionTimestamp. Until then it waits here, in memory: at most
// MAX_PENDING decisions, each for at most PENDING_TTL_MS (kube-scheduler deletes victims
// right after the preempt answer; a decision older than that was not acted on).
import type { CacheChange } from '../cluster/cache.js';
import type { PreemptionRecord } from '../store/preemptions.js';

export const MAX_PENDING = 1000;
export const PENDING_TTL_MS = 2 * 60_000;

interface Pending {
  record: PreemptionRecord;
  expiresAt: number;
}

export class PendingPreemptions {
  /** Victim uid -> the decision naming it (a newer decision for a victim replaces the older). */
  private readonly byVictim = new Map<string, Pending>();
  /** Decisions in arrival order (oldest first), for the size bound and expiry. */
  private readonly decisions = new Set<Pending>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.decisions.size;
  }

  /** Keeps a decision until one of its victims is deleted; returns how many old ones were dropped. */
  add(record: PreemptionRecord): number {
    const dropped = this.expire();
    let evicted = 0;
    while (this.decisions.size >= MAX_PENDING) {
      const oldest = this.decisions.values().next().value as Pending;
      this.remove(oldest);
      evicted++;
    }
    const p: Pending = { record, expiresAt: this.now() + PENDING_TTL_MS };
    for (const v of record.victims) {
      const older = this.byVictim.get(v.uid);
      if (older) this.remove(older);
      this.byVictim.set(v.uid, p);
    }
    this.decisions.add(p);
    return dropped + evicted;
  }

  /** The decision carried out by this cache change (a victim deleted or being deleted), once. */
  carriedOut(c: CacheChange): PreemptionRecord | null {
    if (c.kind !== 'pod' || c.after?.terminating === false) return null;
    const p = this.byVictim.get(c.uid);
    if (!p || p.expiresAt < this.now()) return null;
    this.remove(p);
    return p.record;
  }

  private expire(): number {
    const now = this.now();
    let n = 0;
    for (const p of this.decisions) {
      if (p.expiresAt >= now) break; // arrival order = expiry order
      this.remove(p);
      n++;
    }
    return n;
  }

  private remove(p: Pending): void {
    this.decisions.delete(p);
    for (const v of p.record.victims) if (this.byVictim.get(v.uid) === p) this.byVictim.delete(v.uid);
  }
}
