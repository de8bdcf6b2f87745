// The demo's timeline as a picture (SVG, drawn with bench/plot/svg.ts): one row per pod
// of each GPU job over the demo's clock; grey while it waits behind the gate, its queue's
// colour while it runs, a triangle where its ETA said it would start, a cross where it
// was reclaimed; the four steps numbered along the top. Pure: the same Timeline the text
// prints.
import { escapeXml, legendEntry, OKABE_ITO, svgClose, svgOpen } from '../bench/plot/svg.js';
import { hhmm, STEPS, type JobTrack, type StepNo, type Timeline } from './timeline.js';

const QUEUE_COLORS = [OKABE_ITO.blue, OKABE_ITO.green, OKABE_ITO.orange, OKABE_ITO.purple, OKABE_ITO.skyBlue];
const WAIT_FILL = '#e4e4e4';
const RECLAIM = OKABE_ITO.vermillion;

const W = 1120;
const LEFT = 300;
const RIGHT = 30;
const TOP = 96;
const ROW = 30;
const BAR = 18;

interface Row {
  job: JobTrack;
  pod: JobTrack['pods'][number];
  label: string;
  sub: string;
}

/** The moments each step is about: where its number goes on the time axis. */
function stepMoments(t: Timeline): Array<{ step: StepNo; atMs: number }> {
  const out: Array<{ step: StepNo; atMs: number }> = [];
  const seen = new Set<string>();
  for (const e of t.events) {
    const key = `${e.step}|${e.atMs}`;
    const waits = e.kind === 'submit' && t.jobs.find((j) => j.job === e.job)?.atSubmit?.state === 'queued';
    // Step 1: the first job told to wait; 2 and 4: the releases; 3: the reclaim.
    const matters = e.step === 1 ? waits && !out.some((m) => m.step === 1) : e.step === 3 ? e.kind === 'reclaim' : e.kind === 'release';
    if (matters && !seen.has(key)) {
      seen.add(key);
      out.push({ step: e.step, atMs: e.atMs });
    }
  }
  return out;
}

export function timelineSvg(t: Timeline, title = 'sluice demo: the example snapshot on the in-memory cluster, a simulated morning'): string {
  const span = Math.max(t.endMs - t.startMs, 60 * 60_000) + 10 * 60_000;
  const x = (ms: number): number => LEFT + ((ms - t.startMs) / span) * (W - LEFT - RIGHT);
  const queues = [...new Set(t.jobs.map((j) => j.queue))].sort();
  const colorOf = (q: string): string => QUEUE_COLORS[queues.indexOf(q) % QUEUE_COLORS.length]!;

  // Rows: the snapshot's jobs first, then the script's in order of submission; a gang gets a row per pod.
  const jobs = [...t.jobs].sort((a, b) => Number(b.fromSnapshot) - Number(a.fromSnapshot) || (a.pods[0]?.submittedMs ?? 0) - (b.pods[0]?.submittedMs ?? 0));
  const rows: Row[] = [];
  for (const j of jobs) {
    const what = `${j.gpusPerPod} ${j.model ? shortModel(j.model) : 'GPU'}, ${j.qos}${j.expected ? `, ${j.expected}` : ''}`;
    for (const [i, pod] of j.pods.entries()) {
      const label = j.gangSize > 1 ? `${j.job} pod ${i + 1}/${j.gangSize}` : j.job;
      rows.push({ job: j, pod, label, sub: j.fromSnapshot ? `${what} (in the snapshot)` : what });
    }
  }
  const plotBottom = TOP + rows.length * ROW + 22;
  const legendTop = plotBottom + 46;
  const height = legendTop + 4 * 18 + 24;
  const parts = svgOpen(W, height, title, 12);
  parts.push(
    `<text x="${W / 2}" y="34" text-anchor="middle" fill="#444">the real sluice (webhooks, queue manager, extender, admin API), the demo standing in for kube-apiserver, kube-scheduler and kubelets</text>`,
  );

  // Time axis: a line every 10 minutes, labelled every 20.
  const first = Math.ceil(t.startMs / 600_000) * 600_000;
  for (let ms = first; ms <= t.startMs + span; ms += 600_000) {
    parts.push(`<line x1="${x(ms)}" x2="${x(ms)}" y1="${TOP - 6}" y2="${plotBottom}" stroke="#e6e6e6"/>`);
    if ((ms / 600_000) % 2 === 0) parts.push(`<text x="${x(ms)}" y="${plotBottom + 16}" text-anchor="middle">${hhmm(ms)}</text>`);
  }
  parts.push(
    `<text x="${(LEFT + W - RIGHT) / 2}" y="${plotBottom + 32}" text-anchor="middle" fill="#444">the demo's clock (UTC); the run itself takes seconds</text>`,
  );

  // The steps, numbered where they happen.
  const moments = stepMoments(t);
  for (const m of moments) {
    parts.push(`<line x1="${x(m.atMs)}" x2="${x(m.atMs)}" y1="${TOP - 10}" y2="${plotBottom}" stroke="#777" stroke-dasharray="3,3"/>`);
  }
  const placed: number[] = [];
  for (const m of moments) {
    // Two numbers at nearly the same moment sit side by side.
    let cx = x(m.atMs);
    while (placed.some((p) => Math.abs(p - cx) < 20)) cx += 20;
    placed.push(cx);
    parts.push(
      `<circle cx="${cx}" cy="${TOP - 26}" r="9" fill="white" stroke="#333"/><text x="${cx}" y="${TOP - 22}" text-anchor="middle" font-weight="bold">${m.step}</text>`,
    );
  }

  rows.forEach((r, i) => {
    const y = TOP + i * ROW;
    const mid = y + ROW / 2;
    if (i % 2 === 1) parts.push(`<rect x="0" y="${y}" width="${W}" height="${ROW}" fill="#f7f7f7"/>`);
    parts.push(`<text x="10" y="${mid - 2}" font-weight="bold">${escapeXml(r.label)}</text>`);
    parts.push(`<text x="10" y="${mid + 11}" font-size="10" fill="#555">${escapeXml(r.sub)}</text>`);
    const top = mid - BAR / 2;
    const end = t.endMs + 5 * 60_000;
    const p = r.pod;
    // Waiting behind the gate.
    if (p.submittedMs !== null) {
      const until = p.releasedMs ?? end;
      if (until > p.submittedMs) {
        parts.push(`<rect x="${x(p.submittedMs)}" y="${top}" width="${x(until) - x(p.submittedMs)}" height="${BAR}" fill="${WAIT_FILL}" stroke="#999"/>`);
        const why = r.job.gangSize > 1 ? 'waits whole' : r.job.atSubmit?.waitingFor ? `waits for ${r.job.atSubmit.waitingFor}` : 'waits';
        if (x(until) - x(p.submittedMs) > 70) parts.push(`<text x="${x(p.submittedMs) + 5}" y="${mid + 4}" fill="#333">${escapeXml(why)}</text>`);
      } else {
        parts.push(`<line x1="${x(p.submittedMs)}" x2="${x(p.submittedMs)}" y1="${top}" y2="${top + BAR}" stroke="#999"/>`);
      }
    }
    // Running.
    const from = p.boundMs ?? (r.job.fromSnapshot ? t.startMs : null);
    if (from !== null) {
      const to = p.endedMs ?? end;
      const color = colorOf(r.job.queue);
      const be = r.job.qos === 'best-effort';
      parts.push(
        `<rect x="${x(from)}" y="${top}" width="${Math.max(2, x(to) - x(from))}" height="${BAR}" fill="${color}" fill-opacity="${be ? 0.45 : 0.9}" stroke="${color}"${be ? ' stroke-dasharray="4,2"' : ''}/>`,
      );
      const onNode = p.node ? `on ${p.node}` : '';
      if (onNode && x(to) - x(from) > 60) parts.push(`<text x="${x(from) + 5}" y="${mid + 4}" fill="${be ? '#222' : 'white'}">${escapeXml(onNode)}</text>`);
      if (r.job.endedHow === 'reclaimed' && p.endedMs !== null) {
        const cx = x(p.endedMs);
        parts.push(`<path d="M${cx - 6},${mid - 6} L${cx + 6},${mid + 6} M${cx - 6},${mid + 6} L${cx + 6},${mid - 6}" stroke="${RECLAIM}" stroke-width="3"/>`);
        parts.push(`<text x="${cx + 10}" y="${mid + 4}" fill="${RECLAIM}" font-weight="bold">reclaimed for ${escapeXml(r.job.reclaimedFor ?? '?')}</text>`);
      } else if (p.endedMs !== null) {
        parts.push(`<text x="${x(p.endedMs) + 4}" y="${mid + 4}" fill="#555">finished</text>`);
      }
    }
    // Where the ETA given at submission said it would start.
    const eta = r.job.atSubmit?.state === 'queued' ? r.job.atSubmit.etaMs : null;
    if (eta != null) {
      const ex = x(eta);
      parts.push(`<path d="M${ex - 6},${top - 7} L${ex + 6},${top - 7} L${ex},${top + 1} Z" fill="black"/>`);
    }
  });
  parts.push(`<line x1="${LEFT}" x2="${LEFT}" y1="${TOP - 6}" y2="${plotBottom}" stroke="#999"/>`);

  // A gang released whole: one bar across its pods' rows where they all start.
  for (const j of t.jobs) {
    if (j.gangSize < 2) continue;
    const at = new Set(j.pods.map((p) => p.releasedMs));
    const ms = j.pods[0]?.releasedMs;
    if (at.size !== 1 || ms == null) continue;
    const idx = rows.map((r, i) => (r.job === j ? i : -1)).filter((i) => i >= 0);
    const y0 = TOP + Math.min(...idx) * ROW + (ROW - BAR) / 2 - 3;
    const y1 = TOP + Math.max(...idx) * ROW + (ROW + BAR) / 2 + 3;
    parts.push(`<line x1="${x(ms)}" x2="${x(ms)}" y1="${y0}" y2="${y1}" stroke="black" stroke-width="3"/>`);
    parts.push(`<text x="${x(ms) + 6}" y="${y1 + 12}" font-weight="bold">gang starts whole</text>`);
  }

  // Legend: queues, the marks, the steps.
  let lx = 10;
  for (const q of queues) {
    parts.push(legendEntry(lx, legendTop, colorOf(q), `queue ${q}`, 'box'));
    lx += 30 + 8 * (q.length + 6) + 14;
  }
  parts.push(
    `<rect x="${lx + 4}" y="${legendTop - 6}" width="16" height="12" fill="${colorOf(queues[0] ?? '')}" fill-opacity="0.45" stroke="${colorOf(queues[0] ?? '')}" stroke-dasharray="4,2"/><text x="${lx + 30}" y="${legendTop + 4}">best-effort</text>`,
  );
  lx += 120;
  parts.push(legendEntry(lx, legendTop, WAIT_FILL, 'gated, waiting in its queue', 'box'));
  lx += 210;
  parts.push(
    `<path d="M${lx + 6},${legendTop - 5} L${lx + 18},${legendTop - 5} L${lx + 12},${legendTop + 3} Z" fill="black"/><text x="${lx + 30}" y="${legendTop + 4}">ETA given at submission</text>`,
  );
  lx += 190;
  parts.push(
    `<path d="M${lx + 6},${legendTop - 6} L${lx + 18},${legendTop + 6} M${lx + 6},${legendTop + 6} L${lx + 18},${legendTop - 6}" stroke="${RECLAIM}" stroke-width="3"/><text x="${lx + 30}" y="${legendTop + 4}">reclaimed</text>`,
  );
  ([1, 2, 3, 4] as const).forEach((s, i) => {
    const y = legendTop + 24 + i * 18;
    parts.push(
      `<circle cx="19" cy="${y - 4}" r="8" fill="white" stroke="#333"/><text x="19" y="${y}" text-anchor="middle" font-weight="bold">${s}</text><text x="34" y="${y}">${escapeXml(STEPS[s])}</text>`,
    );
  });
  return svgClose(parts);
}

/** "NVIDIA-A100-SXM4-80GB" or "a100" -> "A100". */
function shortModel(m: string): string {
  const known = /(A100|H100|L4|A10|T4|V100|L40S?|H200|B200)/i.exec(m);
  return known ? known[1]!.toUpperCase() : m;
}
