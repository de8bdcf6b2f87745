// Aggregates simulation runs over seeds and renders them: Markdown tables and an SVG plot
// of GPU allocation against arrived GPU demand (hand-written SVG, no dependencies).
import type { SimPolicyName, SimResult } from './engine.js';

export interface CurvePoint {
  arrivedPct: number;
  /** Mean over seeds. */
  allocationPct: number;
  unallocatedGpus: number;
  /** Spread over seeds of the allocation. */
  minPct: number;
  maxPct: number;
}

export interface Curve {
  list: string;
  policy: SimPolicyName;
  seeds: number;
  capacityGpus: number;
  points: CurvePoint[];
  /** Mean over seeds of where the unallocated GPUs sit at 100% arrived. */
  unallocatedAt100: { partial: number; idleStarved: number; idle: number } | null;
  meanFailed: number;
  meanArrived: number;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export function aggregate(list: string, policy: SimPolicyName, runs: readonly SimResult[]): Curve {
  const first = runs[0];
  if (!first) throw new Error(`no runs for ${list}/${policy}`);
  const points: CurvePoint[] = first.points.map((p, i) => {
    const at = runs.map((r) => r.points[i]!);
    const alloc = at.map((x) => x.allocationPct);
    return {
      arrivedPct: p.arrivedPct,
      allocationPct: mean(alloc),
      unallocatedGpus: mean(at.map((x) => x.unallocatedGpus)),
      minPct: Math.min(...alloc),
      maxPct: Math.max(...alloc),
    };
  });
  const b = runs.map((r) => r.unallocatedAt100).filter((x) => x !== null);
  return {
    list,
    policy,
    seeds: runs.length,
    capacityGpus: first.capacityMilli / 1000,
    points,
    unallocatedAt100: b.length
      ? { partial: mean(b.map((x) => x.partial)), idleStarved: mean(b.map((x) => x.idleStarved)), idle: mean(b.map((x) => x.idle)) }
      : null,
    meanFailed: mean(runs.map((r) => r.failed)),
    meanArrived: mean(runs.map((r) => r.arrived)),
  };
}

const at = (c: Curve, pct: number): CurvePoint | undefined => c.points.find((p) => Math.abs(p.arrivedPct - pct) < 1e-9);
const f1 = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(1));
const f2 = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(2));

/** One table per pod list: policies as rows; unallocated GPUs at 100% arrived first. */
export function markdown(curves: readonly Curve[]): string {
  const out: string[] = [];
  for (const list of [...new Set(curves.map((c) => c.list))]) {
    const cs = curves.filter((c) => c.list === list).sort((a, b) => (at(b, 100)?.allocationPct ?? 0) - (at(a, 100)?.allocationPct ?? 0));
    const c0 = cs[0]!;
    out.push(`#### ${list} (${c0.capacityGpus} GPUs, ${c0.seeds} seed${c0.seeds === 1 ? '' : 's'})`, '');
    out.push('| policy | unallocated at 100% arrived | GPUs | alloc % at 80% | 90% | 100% (min-max) | 110% | 130% | idle GPUs CPU/mem-starved / in shares at 100% |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of cs) {
      const p100 = at(c, 100);
      const u = c.unallocatedAt100;
      out.push(
        `| ${c.policy} | **${f2(p100 ? 100 - p100.allocationPct : undefined)}%** | ${f1(p100?.unallocatedGpus)} | ${f1(at(c, 80)?.allocationPct)} | ${f1(at(c, 90)?.allocationPct)} | ${f2(p100?.allocationPct)} (${f1(p100?.minPct)}-${f1(p100?.maxPct)}) | ${f1(at(c, 110)?.allocationPct)} | ${f1(at(c, 130)?.allocationPct)} | ${u ? `${f1(u.idleStarved)} / ${f1(u.partial)}` : '-'} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

const COLORS: Record<SimPolicyName, string> = {
  fragmentation: '#d62728',
  binpack: '#1f77b4',
  spread: '#2ca02c',
  'best-fit': '#9467bd',
  random: '#7f7f7f',
};

/** A 2x2 grid of panels (one per pod list): allocation % against arrived demand %. */
export function svg(curves: readonly Curve[], title: string): string {
  const lists = [...new Set(curves.map((c) => c.list))];
  const W = 420;
  const H = 300;
  const pad = { l: 48, r: 12, t: 28, b: 36 };
  const cols = Math.min(2, lists.length);
  const rowsN = Math.ceil(lists.length / cols);
  const legendH = 30;
  const parts: string[] = [];
  const width = cols * W;
  const height = rowsN * H + legendH + 24;
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${title}</text>`);
  const xMax = Math.max(...curves.flatMap((c) => c.points.map((p) => p.arrivedPct)), 100);
  lists.forEach((list, i) => {
    const ox = (i % cols) * W;
    const oy = 24 + Math.floor(i / cols) * H;
    const cs = curves.filter((c) => c.list === list);
    const lo = Math.floor(Math.min(...cs.flatMap((c) => c.points.filter((p) => p.arrivedPct >= 50).map((p) => p.allocationPct))) / 10) * 10;
    const yMin = Math.max(0, Math.min(lo, 50));
    const x = (v: number): number => ox + pad.l + ((v - 0) / xMax) * (W - pad.l - pad.r);
    const y = (v: number): number => oy + H - pad.b - ((v - yMin) / (100 - yMin)) * (H - pad.t - pad.b);
    parts.push(`<text x="${ox + W / 2}" y="${oy + 16}" text-anchor="middle" font-weight="bold">${list}</text>`);
    for (let g = yMin; g <= 100; g += 10) {
      parts.push(`<line x1="${x(0)}" x2="${x(xMax)}" y1="${y(g)}" y2="${y(g)}" stroke="#ddd"/>`);
      parts.push(`<text x="${x(0) - 4}" y="${y(g) + 4}" text-anchor="end">${g}</text>`);
    }
    for (let g = 0; g <= xMax; g += 20) {
      parts.push(`<text x="${x(g)}" y="${oy + H - pad.b + 14}" text-anchor="middle">${g}</text>`);
    }
    parts.push(`<line x1="${x(100)}" x2="${x(100)}" y1="${y(yMin)}" y2="${y(100)}" stroke="#999" stroke-dasharray="3,3"/>`);
    parts.push(`<text x="${ox + W / 2}" y="${oy + H - 6}" text-anchor="middle">arrived GPU demand, % of capacity</text>`);
    parts.push(`<text transform="translate(${ox + 12},${oy + H / 2}) rotate(-90)" text-anchor="middle">GPU allocated, %</text>`);
    for (const c of cs) {
      const d = c.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p.arrivedPct).toFixed(1)},${y(Math.max(yMin, p.allocationPct)).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${COLORS[c.policy]}" stroke-width="1.6"/>`);
    }
  });
  const ly = height - legendH / 2;
  Object.entries(COLORS).forEach(([name, color], i) => {
    const lx = 20 + i * 120;
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 30}" y="${ly + 4}">${name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
