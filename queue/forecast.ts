// When will each waiting job start? A forward run of the queue manager's own decision pass
// (evaluate.ts: order, quota, capacity, backfill guard, gangs) on a simulated clock. Pure.
//
// The run, from now:
// 1. decide with the pass as the manager would at this moment; what it releases starts now
//    (at this simulated time) and holds its GPUs, on the nodes the pass placed it, for its
//    expected duration;
// 2. jump to the next expected end of a running job (ends within `quantumMs` of it fold
//    into one step, taken at the last of them), give its GPUs and quota back (on shared
//    GPUs, its memory, cores and slots), go to 1;
// 3. stop when nothing waits, when no running job has a known end, after `maxSteps` steps,
//    past `horizonMs` or past the time budget `budgetMs`: a job not started by then has
//    no estimate ("not known").
// Only the first `maxWaiting` waiting jobs (in the order given: the caller passes them in
// release order) take part; the ones behind them get no estimate. Like Slurm's
// bf_max_job_test, this bounds the cost: each step is one pass over the jobs taking part.
// Only ends matter: between two ends no GPU or quota frees, so the pass cannot release
// more (the backfill guard only reorders and holds back).
//
// The whole run is done three times, with every duration at the low, middle and high end
// of its range (duration.ts); the middle run is the estimate, the earliest and latest start
// over the three runs its range.
//
// What it leaves out, on purpose: a guaranteed job modelled to reclaim best-effort GPUs
// does not end the best-effort job early (its GPUs come back only at its own end), and pods
// released but not yet bound hold quota but not node GPUs.
import type { ResourceAmount } from '../cluster/pod-request.js';
import type { DeviceUse } from '../placement/shares.js';
import type { QueueSpec } from '../store/queue-directory.js';
import type { QosClass } from '../webhooks/labels.js';
import { CapacityModel, type CapacityNode, type PlacedPod } from './capacity.js';
import type { DurationEstimate, Scenario } from './duration.js';
import { remainingSeconds, scenarioSeconds } from './duration.js';
import { evaluate, type Evaluation, type EvaluationInput } from './evaluate.js';
import { QuotaLedger, type Holding } from './quota.js';
import type { Unit } from './units.js';

/** A job holding GPUs now. */
export interface RunningJob {
  key: string;
  qos: QosClass;
  /** What it holds against quota (one entry per pod). */
  holdings: Holding[];
  /** Where its pods run, with their GPUs ('' = not bound yet: holds quota only), and on
   * shared GPUs what each holds there (HAMi's device list: memory, cores, a slot per GPU). */
  pods: Array<{ node: string; requests: readonly ResourceAmount[]; uses?: readonly DeviceUse[] }>;
  /** When it started (ms). */
  startedMs: number;
  duration: DurationEstimate;
}

export interface WaitingJob {
  unit: Unit;
  duration: DurationEstimate;
}

/** The decision pass to run forward: the manager's evaluate(), or (bench/replay) a baseline. */
export type DecisionPass = (input: EvaluationInput) => Pick<Evaluation, 'releases' | 'placements'>;

export interface ForecastInput {
  nowMs: number;
  /** Nodes as they are now: free GPUs already net of everything running. */
  nodes: readonly CapacityNode[];
  running: readonly RunningJob[];
  waiting: readonly WaitingJob[];
  queues: ReadonlyMap<string, QueueSpec> | 'unlimited';
  weights: ReadonlyMap<string, number>;
  backfillGuardMs: number;
  pass?: DecisionPass;
  maxSteps?: number;
  /** Waiting jobs taking part, the first of `waiting` (default DEFAULT_MAX_WAITING). */
  maxWaiting?: number;
  /** Wall-clock budget for the three runs together (ms); default none. */
  budgetMs?: number;
  horizonMs?: number;
  quantumMs?: number;
  /** Stop once these units (keys) have started (the replay asks about one job at a time). */
  until?: ReadonlySet<string>;
}

export interface StartEstimate {
  /** Expected start (ms), from the middle run. */
  atMs: number;
  /** Earliest and latest start over the low, middle and high runs (null: not within bounds). */
  earliestMs: number;
  latestMs: number | null;
}

export interface Forecast {
  /** Per waiting unit key: its estimate; absent when it did not start within the bounds. */
  starts: Map<string, StartEstimate>;
  /** Decision passes run over the three runs (the cost). */
  steps: number;
  /** The middle run stopped at a bound (steps, horizon, budget, maxWaiting) with jobs left without an estimate. */
  truncated: boolean;
}

export const DEFAULT_MAX_STEPS = 400;
export const DEFAULT_MAX_WAITING = 1000;
export const DEFAULT_HORIZON_MS = 7 * 86_400_000;
export const DEFAULT_QUANTUM_MS = 60_000;

interface Sim {
  end: number | null;
  holdings: Holding[];
  /** GPUs taken per node, given back to the capacity model at the end. */
  taken: PlacedPod[];
}

/** Running jobs with a known end, earliest first (a binary heap: thousands run, few end per step). */
class EndQueue {
  private readonly heap: Sim[] = [];
  get size(): number {
    return this.heap.length;
  }
  peek(): Sim | undefined {
    return this.heap[0];
  }
  push(s: Sim): void {
    const h = this.heap;
    h.push(s);
    let i = h.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (h[up]!.end! <= s.end!) break;
      h[i] = h[up]!;
      i = up;
    }
    h[i] = s;
  }
  pop(): Sim | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const c = l + 1 < h.length && h[l + 1]!.end! < h[l]!.end! ? l + 1 : l;
      if (h[c]!.end! >= last.end!) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }
}

export function forecast(input: ForecastInput): Forecast {
  const deadline = input.budgetMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + input.budgetMs;
  const max = input.maxWaiting ?? DEFAULT_MAX_WAITING;
  const taking = input.waiting.length > max ? { ...input, waiting: input.waiting.slice(0, max) } : input;
  // The middle run first: it is the estimate; the others only widen its range.
  const mid = runOnce(taking, 'mid', deadline);
  const runs = [runOnce(taking, 'low', deadline), mid, runOnce(taking, 'high', deadline)];
  const starts = new Map<string, StartEstimate>();
  for (const [key, atMs] of mid.starts) {
    const all = runs.map((r) => r.starts.get(key));
    const known = all.filter((x): x is number => x !== undefined);
    starts.set(key, { atMs, earliestMs: Math.min(...known), latestMs: known.length === runs.length ? Math.max(...known) : null });
  }
  return { starts, steps: runs.reduce((a, r) => a + r.steps, 0), truncated: mid.truncated || taking !== input };
}

function runOnce(input: ForecastInput, scenario: Scenario, deadline: number): { starts: Map<string, number>; steps: number; truncated: boolean } {
  const pass = input.pass ?? evaluate;
  const maxSteps = input.maxSteps ?? DEFAULT_MAX_STEPS;
  const horizon = input.nowMs + (input.horizonMs ?? DEFAULT_HORIZON_MS);
  const quantum = input.quantumMs ?? DEFAULT_QUANTUM_MS;
  // One capacity model for the whole run: each pass leaves what it released placed in it,
  // and ends give GPUs back (CapacityModel.giveBack), so no pass rebuilds every node.
  const capacity = new CapacityModel(input.nodes);
  const durationOf = new Map(input.waiting.map((w) => [w.unit.key, w.duration]));

  const ends = new EndQueue();
  // What running jobs hold against quota, folded by holding: thousands of running jobs
  // are a few dozen distinct (queue, user, QoS, ask, product) entries for the ledger.
  const held = new Map<string, { holding: Holding; n: number }>();
  const hold = (hs: readonly Holding[], sign: 1 | -1): void => {
    for (const h of hs) {
      const k = `${h.queue}|${h.user}|${h.qos}|${h.product}|${h.models.join(',')}|${h.requests.map((q) => `${q.resource}=${q.count}`).join(',')}`;
      const e = held.get(k);
      if (e) e.n += sign;
      else held.set(k, { holding: h, n: sign });
    }
  };
  for (const r of input.running) {
    const left = remainingSeconds(r.duration, Math.max(0, input.nowMs - r.startedMs) / 1000, scenario);
    // A pod's shares go with each of its requests: giveBack frees them on the one resource
    // the node shares (a share pod asks that resource only).
    const taken = r.pods
      .filter((p) => p.node)
      .map((p) => ({
        node: p.node,
        taken: p.requests.map((q) => ({
          resource: q.resource,
          delta: { idle: -q.count, bestEffort: r.qos === 'best-effort' ? q.count : 0 },
          ...(p.uses && p.uses.length > 0 ? { shares: { uses: p.uses, bestEffort: r.qos === 'best-effort' } } : {}),
        })),
      }));
    hold(r.holdings, 1);
    // A job of unknown run time holds its GPUs and quota for the whole run.
    if (left !== null) ends.push({ end: input.nowMs + left * 1000, holdings: r.holdings, taken });
  }
  let waiting = [...input.waiting.map((w) => w.unit)];
  const starts = new Map<string, number>();
  let t = input.nowMs;
  let steps = 0;
  let truncated = false;
  for (;;) {
    const ledger = input.queues === 'unlimited' ? new QuotaLedger(new Map(), true) : new QuotaLedger(input.queues);
    for (const h of held.values())
      if (h.n > 0) ledger.add({ ...h.holding, requests: h.holding.requests.map((q) => ({ resource: q.resource, count: q.count * h.n })) });
    const ev = pass({ units: waiting, ledger, capacity, weights: input.weights, nowMs: t, backfillGuardMs: input.backfillGuardMs });
    steps++;
    if (ev.releases.length > 0) {
      const gone = new Set(ev.releases);
      for (const u of ev.releases) {
        starts.set(u.key, t);
        const d = durationOf.get(u.key);
        const seconds = d ? scenarioSeconds(d, scenario) : null;
        // The pass placed it in the model already: note what it took, to give back at its end.
        const taken = u.pods.map((p) => capacity.takenBy(p)).filter((x): x is PlacedPod => x !== undefined);
        const holdings = u.pods.map((p) => ({ queue: u.queue, user: u.user, qos: u.qos, requests: p.gpus ?? p.requests, product: null, models: p.models }));
        hold(holdings, 1);
        if (seconds !== null) ends.push({ end: t + seconds * 1000, holdings, taken });
      }
      waiting = waiting.filter((u) => !gone.has(u));
    }
    if (waiting.length === 0) break;
    if (input.until && [...input.until].every((k) => starts.has(k) || !waiting.some((u) => u.key === k))) break;
    const next = ends.peek()?.end;
    if (next === undefined || next === null) break; // nothing running has a known end: the rest is not known
    if (steps >= maxSteps || next > horizon || performance.now() > deadline) {
      truncated = true;
      break;
    }
    // Ends within the quantum fold into one step, taken at the last of them.
    let last = next;
    while ((ends.peek()?.end ?? Number.POSITIVE_INFINITY) <= next + quantum) {
      const r = ends.pop()!;
      last = Math.max(last, r.end!);
      for (const p of r.taken) capacity.giveBack(p.node, p.taken);
      hold(r.holdings, -1);
    }
    t = Math.max(t, last);
  }
  return { starts, steps, truncated };
}
