// Figures of a replay run: ETA error, waits per queue, GPU utilisation, fairness; and the
// Markdown table and SVG plot written to bench/results/. Pure.
import type { ReplayJob, ReplayRun } from './engine.js';
import { POLICY_LABELS, type PolicyName } from './policies.js';

export interface EtaError {
  /** Probes asked (jobs that waited). */
  asked: number;
  /** Probes the forecast answered (the rest: not known within its bounds). */
  answered: number;
  p50Min: number | null;
  p90Min: number | null;
  /** Share of answers within a factor of two of the actual wait left (|error| <= wait left). */
  withinWaitShare: number | null;
}

export interface QueueWaits {
  queue: string;
  jobs: number;
  started: number;
  meanWaitMin: number;
  p95WaitMin: number;
}

export interface PolicyFigures {
  policy: PolicyName;
  label: string;
  jobs: number;
  started: number;
  waited: number;
  etaAtSubmit: EtaError;
  etaAtHalf: EtaError;
  queues: QueueWaits[];
  meanWaitMin: number;
  p95WaitMin: number;
  /** Time-weighted busy GPUs / all GPUs, from the first arrival to the last start. */
  utilisation: number;
  /** Jain's index over the queues' mean bounded slowdown ((wait + run) / max(run, 60 s)). */
  jain: number;
  passes: number;
  forecastSteps: number;
  forecastMs: number;
  /** Utilisation per hour (share of GPUs busy) and mean wait of jobs submitted that hour (min). */
  hourly: Array<{ hour: number; utilisation: number; meanWaitMin: number | null }>;
}

export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 when all equal. */
export function jain(xs: readonly number[]): number {
  if (xs.length === 0) return 1;
  const s = xs.reduce((a, b) => a + b, 0);
  const s2 = xs.reduce((a, b) => a + b * b, 0);
  return s2 === 0 ? 1 : (s * s) / (xs.length * s2);
}

function etaError(run: ReplayRun, at: 'submit' | 'half'): EtaError {
  const probes = run.estimates.filter((e) => e.at === at);
  const errs: number[] = [];
  let within = 0;
  for (const e of probes) {
    if (e.estimateMs === null) continue;
    const actual = run.starts.get(e.key)!;
    const err = Math.abs(e.estimateMs - actual);
    errs.push(err / 60_000);
    if (err <= Math.max(0, actual - e.tMs)) within++;
  }
  return {
    asked: probes.length,
    answered: errs.length,
    p50Min: percentile(errs, 50),
    p90Min: percentile(errs, 90),
    withinWaitShare: errs.length ? within / errs.length : null,
  };
}

export function figures(jobs: readonly ReplayJob[], run: ReplayRun): PolicyFigures {
  const waits = new Map<string, number[]>();
  const slowdowns = new Map<string, number[]>();
  const all: number[] = [];
  for (const j of jobs) {
    const s = run.starts.get(j.key);
    if (!waits.has(j.queue)) {
      waits.set(j.queue, []);
      slowdowns.set(j.queue, []);
    }
    if (s === undefined) continue;
    const w = (s - j.submitMs) / 60_000;
    waits.get(j.queue)!.push(w);
    all.push(w);
    slowdowns.get(j.queue)!.push((s - j.submitMs + j.runMs) / Math.max(j.runMs, 60_000));
  }
  const queues = [...waits.keys()].sort().map((q) => {
    const w = waits.get(q)!;
    return { queue: q, jobs: jobs.filter((j) => j.queue === q).length, started: w.length, meanWaitMin: mean(w), p95WaitMin: percentile(w, 95) ?? 0 };
  });

  // The window with demand: from the first arrival to the last start (after it only the
  // long jobs run out, which says nothing about the policy).
  const t0 = Math.min(...jobs.map((j) => j.submitMs));
  const t1 = Math.max(t0 + 1, ...run.starts.values());
  let area = 0;
  const hours = Math.max(1, Math.ceil((t1 - t0) / 3_600_000));
  const hourArea = new Array<number>(hours).fill(0);
  for (let i = 0; i < run.busy.length; i++) {
    const [t, b] = run.busy[i]!;
    if (t >= t1) break;
    const next = Math.min(run.busy[i + 1]?.[0] ?? t1, t1);
    area += b * (next - t);
    // Spread the segment over the hours it covers.
    for (let a = t; a < next; ) {
      const h = Math.floor((a - t0) / 3_600_000);
      const edge = Math.min(next, t0 + (h + 1) * 3_600_000);
      if (h >= 0 && h < hours) hourArea[h]! += b * (edge - a);
      a = edge;
    }
  }
  const submittedIn = new Map<number, number[]>();
  for (const j of jobs) {
    const s = run.starts.get(j.key);
    if (s === undefined) continue;
    const h = Math.floor((j.submitMs - t0) / 3_600_000);
    submittedIn.set(h, [...(submittedIn.get(h) ?? []), (s - j.submitMs) / 60_000]);
  }
  return {
    policy: run.policy,
    label: POLICY_LABELS[run.policy],
    jobs: jobs.length,
    started: run.starts.size,
    waited: jobs.filter((j) => (run.starts.get(j.key) ?? Number.POSITIVE_INFINITY) > j.submitMs).length,
    etaAtSubmit: etaError(run, 'submit'),
    etaAtHalf: etaError(run, 'half'),
    queues,
    meanWaitMin: mean(all),
    p95WaitMin: percentile(all, 95) ?? 0,
    utilisation: t1 > t0 ? area / ((t1 - t0) * run.totalGpus) : 0,
    jain: jain(queues.map((q) => mean(slowdowns.get(q.queue)!)).filter((x) => x > 0)),
    passes: run.passes,
    forecastSteps: run.forecastSteps,
    forecastMs: run.forecastMs,
    hourly: hourArea.map((a, hour) => {
      const w = submittedIn.get(hour);
      return { hour, utilisation: a / (3_600_000 * run.totalGpus), meanWaitMin: w ? mean(w) : null };
    }),
  };
}

const f1 = (x: number | null): string => (x === null ? 'n/a' : x.toFixed(1));
const pct = (x: number | null): string => (x === null ? 'n/a' : `${Math.round(x * 100)} %`);

export function markdown(title: string, setupLines: readonly string[], figs: readonly PolicyFigures[]): string {
  const out: string[] = [`# ${title}`, '', ...setupLines.map((l) => `- ${l}`), ''];
  out.push('## ETA error: |estimated - actual start| (minutes), over jobs that waited', '');
  out.push('| policy | jobs that waited | at submit: answered | p50 | p90 | within the wait | at half the wait: answered | p50 | p90 | within the wait left |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const f of figs) {
    const s = f.etaAtSubmit;
    const h = f.etaAtHalf;
    out.push(
      `| ${f.label} | ${f.waited} | ${s.answered}/${s.asked} | ${f1(s.p50Min)} | ${f1(s.p90Min)} | ${pct(s.withinWaitShare)} | ${h.answered}/${h.asked} | ${f1(h.p50Min)} | ${f1(h.p90Min)} | ${pct(h.withinWaitShare)} |`,
    );
  }
  out.push('', '## Waits, utilisation, fairness', '');
  out.push('| policy | started / jobs | mean wait (min) | p95 wait (min) | GPU utilisation | Jain (queues) |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const f of figs)
    out.push(`| ${f.label} | ${f.started}/${f.jobs} | ${f1(f.meanWaitMin)} | ${f1(f.p95WaitMin)} | ${pct(f.utilisation)} | ${f.jain.toFixed(3)} |`);
  out.push('', '## Wait per queue (minutes): mean / p95', '');
  const queues = figs[0]?.queues.map((q) => q.queue) ?? [];
  out.push(`| policy | ${queues.join(' | ')} |`);
  out.push(`| --- | ${queues.map(() => '---:').join(' | ')} |`);
  for (const f of figs) out.push(`| ${f.policy} | ${f.queues.map((q) => `${f1(q.meanWaitMin)} / ${f1(q.p95WaitMin)}`).join(' | ')} |`);
  out.push('', '## Cost', '');
  out.push('| policy | replay passes | forecasts: passes run | forecasts: total ms |');
  out.push('| --- | ---: | ---: | ---: |');
  for (const f of figs) out.push(`| ${f.policy} | ${f.passes} | ${f.forecastSteps} | ${Math.round(f.forecastMs)} |`);
  return out.join('\n') + '\n';
}

const COLORS: Record<PolicyName, string> = { sluice: '#1f77b4', fifo: '#ff7f0e', strict: '#2ca02c' };

/** Two panels over the replayed hours: GPU utilisation, and mean wait of the jobs submitted each hour. */
export function svg(title: string, figs: readonly PolicyFigures[]): string {
  const W = 900;
  const H = 260;
  const left = 60;
  const right = 20;
  const hours = Math.max(1, ...figs.map((f) => f.hourly.length));
  const x = (h: number): number => left + ((W - left - right) * h) / hours;
  const maxWait = Math.max(1, ...figs.flatMap((f) => f.hourly.map((p) => p.meanWaitMin ?? 0)));
  const panel = (top: number, label: string, max: number, value: (p: PolicyFigures['hourly'][number]) => number | null, unit: string): string => {
    const y = (v: number): number => top + H - (H * v) / max;
    const parts = [
      `<text x="${left}" y="${top - 8}" font-size="13">${label}</text>`,
      `<line x1="${left}" y1="${top + H}" x2="${W - right}" y2="${top + H}" stroke="#888"/>`,
      `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + H}" stroke="#888"/>`,
    ];
    for (const frac of [0, 0.5, 1])
      parts.push(`<text x="${left - 6}" y="${y(max * frac) + 4}" font-size="10" text-anchor="end">${(max * frac).toFixed(unit === '%' ? 0 : 0)}${unit}</text>`);
    for (let h = 0; h <= hours; h += Math.max(1, Math.round(hours / 12)))
      parts.push(`<text x="${x(h)}" y="${top + H + 14}" font-size="10" text-anchor="middle">${h} h</text>`);
    for (const f of figs) {
      const pts = f.hourly.map((p) => [x(p.hour + 0.5), value(p)] as const).filter((p): p is readonly [number, number] => p[1] !== null);
      parts.push(
        `<polyline fill="none" stroke="${COLORS[f.policy]}" stroke-width="1.5" points="${pts.map(([a, b]) => `${a.toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"/>`,
      );
    }
    return parts.join('\n');
  };
  const legend = figs
    .map(
      (f, i) =>
        `<rect x="${left}" y="${2 * H + 110 + i * 16}" width="12" height="12" fill="${COLORS[f.policy]}"/><text x="${left + 18}" y="${2 * H + 121 + i * 16}" font-size="11">${f.label}</text>`,
    )
    .join('\n');
  return (
    [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H + 120 + figs.length * 16}" font-family="sans-serif">`,
      `<rect width="100%" height="100%" fill="white"/>`,
      `<text x="${W / 2}" y="18" font-size="15" text-anchor="middle">${title}</text>`,
      panel(45, 'GPU utilisation (share of GPUs busy, per hour)', 100, (p) => p.utilisation * 100, '%'),
      panel(H + 85, 'Mean wait of the jobs submitted that hour (minutes)', maxWait, (p) => p.meanWaitMin, ''),
      legend,
      '</svg>',
    ].join('\n') + '\n'
  );
}
