// The recent mix of GPU ask shapes, which the fragmentation policy uses as the
// distribution of what will arrive next. A bounded ring of the last N asks.
import type { SizeMix, SizeMixEntry } from './types.js';

const key = (count: number, milli: number): string => `${count}x${milli}`;

export class RecentSizes {
  private readonly ring: string[] = [];
  private next = 0;
  private readonly tally = new Map<string, { count: number; milli: number; n: number }>();
  private cached: SizeMix | null = null;

  constructor(private readonly capacity: number) {}

  record(count: number, milli: number): void {
    if (count <= 0 || this.capacity <= 0) return;
    const k = key(count, milli);
    if (this.ring.length === this.capacity) {
      const old = this.ring[this.next]!;
      const t = this.tally.get(old)!;
      if (--t.n === 0) this.tally.delete(old);
      this.ring[this.next] = k;
    } else {
      this.ring.push(k);
    }
    this.next = (this.next + 1) % this.capacity;
    const t = this.tally.get(k);
    if (t) t.n++;
    else this.tally.set(k, { count, milli, n: 1 });
    this.cached = null;
  }

  get size(): number {
    return this.ring.length;
  }

  /** The mix as weights summing to 1; empty when nothing was recorded. */
  mix(): SizeMix {
    if (this.cached) return this.cached;
    const total = this.ring.length;
    const out: SizeMixEntry[] = [];
    for (const t of this.tally.values()) out.push({ count: t.count, milli: t.milli, weight: t.n / total });
    out.sort((a, b) => a.count - b.count || a.milli - b.milli);
    this.cached = out;
    return out;
  }
}

/** A mix built from explicit shapes and weights (normalized). */
export function sizeMix(entries: readonly SizeMixEntry[]): SizeMix {
  const total = entries.reduce((s, e) => s + e.weight, 0);
  if (total <= 0) return [];
  // Keep the optional fields (CPU, memory, models) the simulator's shapes carry.
  return entries.map((e) => ({ ...e, weight: e.weight / total }));
}
