// The recent mix of GPU ask shapes, which the fragmentation policy uses as the
// distribution of what will arrive next. A bounded ring of the last N asks, each kept
// with its full shape: GPU count and share, CPU and memory, accepted GPU models.
import type { SizeMix, SizeMixEntry } from './types.js';

/** One ask as the mix keeps it. CPU and memory undefined: not known (not counted). */
export interface AskShape {
  count: number;
  milli: number;
  cpuMilli?: number | undefined;
  memMiB?: number | undefined;
  models?: readonly string[] | undefined;
}

const key = (s: AskShape): string => `${s.count}x${s.milli}/${s.cpuMilli ?? ''}/${s.memMiB ?? ''}/${(s.models ?? []).join('|')}`;

export class RecentSizes {
  private readonly ring: string[] = [];
  private next = 0;
  private readonly tally = new Map<string, { shape: AskShape; n: number }>();
  private cached: SizeMix | null = null;

  constructor(private readonly capacity: number) {}

  record(shape: AskShape): void {
    if (shape.count <= 0 || this.capacity <= 0) return;
    const k = key(shape);
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
    else this.tally.set(k, { shape, n: 1 });
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
    for (const { shape: s, n } of this.tally.values()) {
      const e: SizeMixEntry = { count: s.count, milli: s.milli, weight: n / total };
      if (s.cpuMilli !== undefined) e.cpuMilli = s.cpuMilli;
      if (s.memMiB !== undefined) e.memMiB = s.memMiB;
      if (s.models && s.models.length > 0) e.models = s.models;
      out.push(e);
    }
    out.sort((a, b) => a.count - b.count || a.milli - b.milli || (a.cpuMilli ?? 0) - (b.cpuMilli ?? 0) || (a.memMiB ?? 0) - (b.memMiB ?? 0));
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
