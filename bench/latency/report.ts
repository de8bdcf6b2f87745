// Tables and chart of the latency benchmark; the figure tracked is sluice/baseline.
import type { LatencyStats } from './driver.js';

export interface PhaseResult {
  phase: 'cycle' | 'admission' | 'bind-cycle';
  concurrency: number;
  done: number;
  seconds: number;
  /** Cycles (filter+prioritize[+bind]) or admission requests per second. */
  perSecond: number;
  /** Server CPU over the phase, % of one core; null off Linux. */
  cpuPct: number | null;
  errors: number;
  verbs: Record<string, LatencyStats>;
}

export interface TargetRun {
  target: 'sluice' | 'baseline';
  startupMs: number;
  rssIdleMB: number | null;
  rssPeakMB: number;
  phases: PhaseResult[];
}

export interface BenchResult {
  date: string;
  machine: { cpus: number; model: string; node: string; loadAvgStart: number; loadAvgEnd: number };
  sizes: { nodes: number; pods: number; sluice: TargetRun; baseline: TargetRun }[];
}

const phaseOf = (r: TargetRun, phase: PhaseResult['phase'], c: number): PhaseResult | undefined =>
  r.phases.find((p) => p.phase === phase && p.concurrency === c);
/** Server CPU milliseconds per cycle or request. */
const cpuPerOp = (p: PhaseResult): number | undefined => (p.cpuPct === null || p.done === 0 ? undefined : ((p.cpuPct / 100) * (p.seconds * 1000)) / p.done);
const f = (x: number | undefined | null, d = 2): string => (x === undefined || x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));

interface TargetRow {
  what: string;
  goal: string;
  value: string;
  met: boolean | null;
}

export function targets(r: BenchResult): TargetRow[] {
  const rows: TargetRow[] = [];
  const big = r.sizes.find((s) => s.nodes === 5000) ?? r.sizes.at(-1);
  const mid = r.sizes.find((s) => s.nodes === 1000);
  if (big) {
    for (const c of [1, 16]) {
      const a = phaseOf(big.sluice, 'cycle', c)?.verbs['filter+prioritize']?.p99;
      const b = phaseOf(big.baseline, 'cycle', c)?.verbs['filter+prioritize']?.p99;
      const ratio = a !== undefined && b ? a / b : undefined;
      rows.push({
        what: `filter+prioritize p99, ${big.nodes} nodes, concurrency ${c}`,
        goal: '<= 1.5x baseline',
        value: `${f(ratio)}x (${f(a)} vs ${f(b)} ms)`,
        met: ratio === undefined ? null : ratio <= 1.5,
      });
    }
    for (const c of [1, 16]) {
      const a = phaseOf(big.sluice, 'admission', c)?.verbs['admission']?.p99;
      const b = phaseOf(big.baseline, 'admission', c)?.verbs['admission']?.p99;
      const ratio = a !== undefined && b ? a / b : undefined;
      rows.push({
        what: `admission p99, ${big.nodes} nodes, concurrency ${c}`,
        goal: '<= 1.5x baseline',
        value: `${f(ratio)}x (${f(a)} vs ${f(b)} ms)`,
        met: ratio === undefined ? null : ratio <= 1.5,
      });
    }
    const cs = phaseOf(big.sluice, 'cycle', 1);
    const cb = phaseOf(big.baseline, 'cycle', 1);
    const a = cs && cpuPerOp(cs);
    const b = cb && cpuPerOp(cb);
    rows.push({
      what: `server CPU per filter+prioritize cycle, ${big.nodes} nodes (steadier than p99 on a busy machine)`,
      goal: 'context',
      value: `${f(a && b ? a / b : undefined)}x (${f(a, 3)} vs ${f(b, 3)} ms)`,
      met: null,
    });
    rows.push({
      what: `server RSS peak, ${big.nodes} nodes + ${big.pods} pods`,
      goal: '< 300 MB',
      value: `${f(big.sluice.rssPeakMB, 0)} MB`,
      met: big.sluice.rssPeakMB < 300,
    });
  }
  if (mid) {
    for (const c of [1, 16]) {
      const p = phaseOf(mid.sluice, 'cycle', c);
      const b = phaseOf(mid.baseline, 'cycle', c);
      rows.push({
        what: `filter+prioritize cycles/s, ${mid.nodes} nodes, concurrency ${c}`,
        goal: '>= 3000 /s',
        value: `${f(p?.perSecond, 0)} /s (baseline ${f(b?.perSecond, 0)}; ratio ${f(p && b ? p.perSecond / b.perSecond : undefined)})`,
        met: p ? p.perSecond >= 3000 : null,
      });
    }
  }
  return rows;
}

export function markdown(r: BenchResult): string {
  const out: string[] = [];
  out.push(`### Latency benchmark ${r.date.slice(0, 10)}`, '');
  out.push(
    `${r.machine.cpus} CPUs (${r.machine.model}), node ${r.machine.node}; load generator on the same machine; 1-minute load average ${f(r.machine.loadAvgStart, 1)} at the start, ${f(r.machine.loadAvgEnd, 1)} at the end. sluice and baseline phases alternate, so both see the same background load. Times in ms.`,
    '',
  );
  out.push('| target | goal | measured | met |', '|---|---|---|---|');
  for (const t of targets(r)) out.push(`| ${t.what} | ${t.goal} | ${t.value} | ${t.met === null ? '-' : t.met ? 'yes' : '**no**'} |`);
  out.push('');
  for (const s of r.sizes) {
    out.push(`#### ${s.nodes} nodes, ${s.pods} pods placed`, '');
    out.push(
      `sluice: started in ${f(s.sluice.startupMs / 1000, 1)} s, RSS ${f(s.sluice.rssIdleMB, 0)} MB idle, ${f(s.sluice.rssPeakMB, 0)} MB peak; baseline RSS ${f(s.baseline.rssPeakMB, 0)} MB peak.`,
      '',
    );
    out.push(
      '| phase | conc. | verb | p50 | p90 | p99 | max | baseline p99 | p99 ratio | sluice /s | baseline /s | server CPU % | CPU ms per op (baseline) | errors or refused binds |',
    );
    out.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of s.sluice.phases) {
      const b = phaseOf(s.baseline, p.phase, p.concurrency);
      for (const [verb, st] of Object.entries(p.verbs)) {
        const bs = b?.verbs[verb];
        out.push(
          `| ${p.phase} | ${p.concurrency} | ${verb} | ${f(st.p50)} | ${f(st.p90)} | ${f(st.p99)} | ${f(st.max)} | ${f(bs?.p99)} | ${f(bs ? st.p99 / bs.p99 : undefined)} | ${f(p.perSecond, 0)} | ${f(b?.perSecond, 0)} | ${f(p.cpuPct, 0)} | ${f(cpuPerOp(p), 3)} (${f(b ? cpuPerOp(b) : undefined, 3)}) | ${p.errors} |`,
        );
      }
    }
    out.push('');
  }
  return out.join('\n');
}

/** Bars of the p99 ratio sluice/baseline per verb and size, with the 1.5x goal line. */
export function svg(r: BenchResult): string {
  const series: { label: string; phase: PhaseResult['phase']; c: number; verb: string; color: string }[] = [
    { label: 'filter+prioritize c=1', phase: 'cycle', c: 1, verb: 'filter+prioritize', color: '#1f77b4' },
    { label: 'filter+prioritize c=16', phase: 'cycle', c: 16, verb: 'filter+prioritize', color: '#aec7e8' },
    { label: 'admission c=1', phase: 'admission', c: 1, verb: 'admission', color: '#d62728' },
    { label: 'admission c=16', phase: 'admission', c: 16, verb: 'admission', color: '#ff9896' },
    { label: 'bind c=1', phase: 'bind-cycle', c: 1, verb: 'bind', color: '#2ca02c' },
  ];
  const vals = r.sizes.map((s) =>
    series.map((se) => {
      const a = phaseOf(s.sluice, se.phase, se.c)?.verbs[se.verb]?.p99;
      const b = phaseOf(s.baseline, se.phase, se.c)?.verbs[se.verb]?.p99;
      return a !== undefined && b ? a / b : 0;
    }),
  );
  const yMax = Math.max(2, Math.ceil(Math.max(...vals.flat()) + 0.5));
  const W = 720;
  const H = 360;
  const pad = { l: 50, r: 10, t: 36, b: 70 };
  const gw = (W - pad.l - pad.r) / Math.max(1, r.sizes.length);
  const bw = (gw * 0.8) / series.length;
  const y = (v: number): number => H - pad.b - (v / yMax) * (H - pad.t - pad.b);
  const p: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="white"/>',
  ];
  p.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">p99 latency, sluice / baseline (${r.date.slice(0, 10)}); dashed: 1.5x goal</text>`);
  for (let g = 0; g <= yMax; g += 0.5) {
    p.push(
      `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(g)}" y2="${y(g)}" stroke="#eee"/>`,
      `<text x="${pad.l - 4}" y="${y(g) + 4}" text-anchor="end">${g}</text>`,
    );
  }
  r.sizes.forEach((s, i) => {
    const x0 = pad.l + i * gw + gw * 0.1;
    vals[i]!.forEach((v, j) => {
      p.push(
        `<rect x="${(x0 + j * bw).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${series[j]!.color}"><title>${series[j]!.label}: ${v.toFixed(2)}x</title></rect>`,
      );
      p.push(`<text x="${(x0 + j * bw + bw / 2).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${v.toFixed(1)}</text>`);
    });
    p.push(`<text x="${x0 + gw * 0.4}" y="${H - pad.b + 16}" text-anchor="middle">${s.nodes} nodes</text>`);
  });
  p.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(1.5)}" y2="${y(1.5)}" stroke="#000" stroke-dasharray="5,4"/>`);
  series.forEach((se, j) => {
    const lx = pad.l + (j % 3) * 200;
    const ly = H - 30 + Math.floor(j / 3) * 16;
    p.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="10" fill="${se.color}"/>`, `<text x="${lx + 16}" y="${ly}">${se.label}</text>`);
  });
  p.push('</svg>');
  return p.join('\n') + '\n';
}
