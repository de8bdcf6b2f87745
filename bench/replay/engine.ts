// The time-driven replay: jobs arrive at their trace times, wait in sluice's queues, start
// when a policy's decision pass (policies.ts) releases them, and hold their GPUs for the
// run time they had in production. Pure and deterministic: the same input gives the same
// run, which is how estimates are scored:
//
// 1. a first run records when every job really started;
// 2. a second, identical run stops at each job's submission and at half its wait, asks the
//    forecast (queue/forecast.ts, with the same decision pass) when the job will start,
//    and compares that with the start the first run recorded.
//
// The clock only moves to events (an arrival, an end); a pass runs after each, as the
// queue manager runs one after each cache change. Released jobs start at once on the node
// the pass placed them (no kube-scheduler in between), and best-effort reclaim is not
// replayed: every job is guaranteed QoS.
import type { CapacityNode } from '../../queue/capacity.js';
import { CapacityModel } from '../../queue/capacity.js';
import { estimateDuration, type DurationEstimate, type DurationSample } from '../../queue/duration.js';
import { forecast, type RunningJob, type WaitingJob } from '../../queue/forecast.js';
import { QuotaLedger, type Holding } from '../../queue/quota.js';
import type { Unit } from '../../queue/units.js';
import type { QueueSpec } from '../../store/queue-directory.js';
import { PASSES, type PolicyName } from './policies.js';

export const GPU = 'nvidia.com/gpu';

export interface ReplayJob {
  key: string;
  queue: string;
  user: string;
  kind: string;
  priority: number;
  gpus: number;
  models: string[];
  submitMs: number;
  runMs: number;
}

export interface ReplaySetup {
  nodes: readonly CapacityNode[];
  queues: ReadonlyMap<string, QueueSpec>;
  jobs: readonly ReplayJob[];
  backfillGuardMs: number;
  /**
   * What the forecast knows of durations: 'learned' from jobs that finished earlier in the
   * replay (same user, queue, kind), or 'declared' (each job annotated with its true run
   * time: what estimates are worth when users declare durations exactly).
   */
  durations: 'learned' | 'declared';
  /** Jobs that finished before the replay began (their history, as Postgres would hold it). */
  finishedBefore?: readonly ReplayJob[];
}

export interface Probe {
  key: string;
  /** 'submit': right after the job arrived (and the pass that followed); 'half': half-way through its wait. */
  at: 'submit' | 'half';
  tMs: number;
}

export interface ReplayRun {
  policy: PolicyName;
  /** Per job: start (ms), absent when it had not started when the replay ended. */
  starts: Map<string, number>;
  endMs: number;
  /** Busy GPUs after each pass: (time, busy). */
  busy: Array<[number, number]>;
  totalGpus: number;
  /** Per probe: the estimated start (ms) or null when the forecast gave none. */
  estimates: Array<Probe & { estimateMs: number | null }>;
  /** Decision passes run by the replay and by the forecasts. */
  passes: number;
  forecastSteps: number;
  forecastMs: number;
}

interface Running {
  job: ReplayJob;
  startMs: number;
  endMs: number;
  nodes: readonly string[];
  holdings: Holding[];
}

export function unitOf(j: ReplayJob): Unit {
  const requests = [{ resource: GPU, count: j.gpus }];
  return {
    key: j.key,
    namespace: 'replay',
    job: j.key,
    queue: j.queue,
    qos: 'guaranteed',
    user: j.user,
    priority: j.priority,
    submittedMs: j.submitMs,
    seenMs: j.submitMs,
    gangSize: 1,
    podsSeen: 1,
    pods: [{ uid: j.key, name: j.key, requests, models: j.models, nodeSelector: {}, affinityTerms: null, gateIndex: 0 }],
    inFlight: false,
    problem: null,
    need: requests,
    models: j.models,
  };
}

const historyKey = (j: ReplayJob): string => `${j.user}|${j.queue}|${j.kind}`;

export function replay(setup: ReplaySetup, policy: PolicyName, probes: readonly Probe[] = []): ReplayRun {
  const pass = PASSES[policy];
  const nodes = new Map(setup.nodes.map((n) => [n.name, { ...n, free: { ...n.free }, bestEffort: { ...n.bestEffort } }]));
  const totalGpus = setup.nodes.reduce((a, n) => a + (n.capacity[GPU] ?? 0), 0);
  const weights = new Map([...setup.queues.values()].map((q) => [q.name, q.weight]));
  const arrivals = [...setup.jobs].sort((a, b) => a.submitMs - b.submitMs);
  const pending = [...probes].sort((a, b) => a.tMs - b.tMs || (a.at === b.at ? 0 : a.at === 'submit' ? -1 : 1));
  const running = new Map<string, Running>();
  const waiting = new Map<string, { unit: Unit; job: ReplayJob }>();
  const history = new Map<string, DurationSample[]>();
  for (const j of setup.finishedBefore ?? []) {
    const h = history.get(historyKey(j)) ?? [];
    h.push({ seconds: j.runMs / 1000, finishedMs: j.submitMs + j.runMs });
    history.set(historyKey(j), h.slice(-50));
  }
  const run: ReplayRun = { policy, starts: new Map(), endMs: 0, busy: [], totalGpus, estimates: [], passes: 0, forecastSteps: 0, forecastMs: 0 };
  let busy = 0;
  let ai = 0;
  let pi = 0;
  let now = arrivals[0]?.submitMs ?? 0;

  const durationOf = (j: ReplayJob, atMs: number): DurationEstimate => {
    if (setup.durations === 'declared')
      return estimateDuration({ annotation: `${Math.max(1, Math.round(j.runMs / 1000))}s`, maxDurationSeconds: null, history: [], nowMs: atMs });
    return estimateDuration({ annotation: undefined, maxDurationSeconds: null, history: history.get(historyKey(j)) ?? [], nowMs: atMs });
  };

  const probeAll = (upTo: number, inclusive: boolean): void => {
    const batch: Probe[] = [];
    while (pi < pending.length && (pending[pi]!.tMs < upTo || (inclusive && pending[pi]!.tMs === upTo))) batch.push(pending[pi++]!);
    // Probes at one instant share the state: one forecast answers them all.
    for (let i = 0; i < batch.length; ) {
      const tMs = batch[i]!.tMs;
      const group: Probe[] = [];
      while (i < batch.length && batch[i]!.tMs === tMs) group.push(batch[i++]!);
      const ask = group.filter((p) => waiting.has(p.key));
      const answered = new Map<string, number | null>();
      for (const p of group) if (run.starts.has(p.key)) answered.set(p.key, run.starts.get(p.key)!);
      if (ask.length > 0) {
        const t0 = performance.now();
        const f = forecast({
          nowMs: tMs,
          nodes: [...nodes.values()],
          running: [...running.values()].map(
            (r): RunningJob => ({
              key: r.job.key,
              qos: 'guaranteed',
              holdings: r.holdings,
              pods: [{ node: r.nodes[0] ?? '', requests: [{ resource: GPU, count: r.job.gpus }] }],
              startedMs: r.startMs,
              duration: durationOf(r.job, tMs),
            }),
          ),
          waiting: [...waiting.values()].map((w): WaitingJob => ({ unit: w.unit, duration: durationOf(w.job, tMs) })),
          queues: setup.queues,
          weights,
          backfillGuardMs: setup.backfillGuardMs,
          pass,
          until: new Set(ask.map((p) => p.key)),
        });
        run.forecastMs += performance.now() - t0;
        run.forecastSteps += f.steps;
        for (const p of ask) answered.set(p.key, f.starts.get(p.key)?.atMs ?? null);
      }
      for (const p of group) run.estimates.push({ ...p, estimateMs: answered.get(p.key) ?? null });
    }
  };

  for (;;) {
    let nextEnd = Number.POSITIVE_INFINITY;
    for (const r of running.values()) if (r.endMs < nextEnd) nextEnd = r.endMs;
    const nextArrival = arrivals[ai]?.submitMs ?? Number.POSITIVE_INFINITY;
    const t = Math.min(nextEnd, nextArrival);
    if (!Number.isFinite(t)) break;
    probeAll(t, false);
    now = t;
    for (const [key, r] of running) {
      if (r.endMs > t) continue;
      running.delete(key);
      const n = nodes.get(r.nodes[0] ?? '');
      if (n) n.free[GPU] = (n.free[GPU] ?? 0) + r.job.gpus;
      busy -= r.job.gpus;
      const h = history.get(historyKey(r.job)) ?? [];
      h.push({ seconds: r.job.runMs / 1000, finishedMs: t });
      if (h.length > 50) h.shift();
      history.set(historyKey(r.job), h);
    }
    while (ai < arrivals.length && arrivals[ai]!.submitMs === t) {
      const j = arrivals[ai++]!;
      waiting.set(j.key, { unit: unitOf(j), job: j });
    }
    if (waiting.size > 0) {
      const ledger = new QuotaLedger(setup.queues);
      for (const r of running.values()) for (const h of r.holdings) ledger.add(h);
      const capacity = new CapacityModel(nodes.values());
      const ev = pass({ units: [...waiting.values()].map((w) => w.unit), ledger, capacity, weights, nowMs: t, backfillGuardMs: setup.backfillGuardMs });
      run.passes++;
      for (const u of ev.releases) {
        const w = waiting.get(u.key)!;
        waiting.delete(u.key);
        const placedOn = ev.placements.get(u) ?? [];
        const n = nodes.get(placedOn[0] ?? '');
        if (!n) throw new Error(`replay: ${policy} released ${u.key} without a node`);
        n.free[GPU] = (n.free[GPU] ?? 0) - w.job.gpus;
        busy += w.job.gpus;
        running.set(u.key, {
          job: w.job,
          startMs: t,
          endMs: t + w.job.runMs,
          nodes: placedOn,
          holdings: [{ queue: u.queue, user: u.user, qos: 'guaranteed', requests: u.need, product: n.product, models: u.models }],
        });
        run.starts.set(u.key, t);
      }
    }
    run.busy.push([t, busy]);
    probeAll(t, true);
  }
  run.endMs = now;
  return run;
}

/** The probes for a finished run: every job that waited, at submission and half-way. */
export function probesFrom(setup: ReplaySetup, first: ReplayRun): Probe[] {
  const out: Probe[] = [];
  for (const j of setup.jobs) {
    const s = first.starts.get(j.key);
    if (s === undefined || s <= j.submitMs) continue;
    out.push({ key: j.key, at: 'submit', tMs: j.submitMs });
    out.push({ key: j.key, at: 'half', tMs: j.submitMs + Math.floor((s - j.submitMs) / 2) });
  }
  return out;
}
