// Estimated start times for the jobs the queue manager holds. Off the admission path: a
// timer looks at the manager's last evaluation and, when it is new (the queue or the
// capacity changed) and the last forecast is at least `intervalMs` old, builds the
// forecast's input from the cluster cache and runs it (queue/forecast.ts: the manager's
// own evaluate() on a simulated clock), within its bounds (maxJobs, budgetMs). Readers
// (admin API, wait Events) get the last result. Durations: queue/duration.ts, with the
// finished-job history read in the background (duration-history.ts).
//
// The submit-time warning asks a what-if (the new job added to the input) with a small
// budget (admissionBudgetMs); when that is not enough it says "ETA not yet known". The
// what-if rests on the input as of the manager's last evaluation, the one the warning's
// reason comes from: when the queue or the capacity changed since the input was built
// (jobs started or ended since the last forecast, which runs at most every intervalMs),
// the input is built again first, if the last build fitted the budget; else the answer is
// "not yet known" and the next tick builds it. Answering from an older input said "start
// now" to a job whose queue was full of jobs started since.
import type { ClusterCache, PodRecord } from '../cluster/cache.js';
import type { Logger } from '../observability/logger.js';
import { parseModelList } from '../placement/gpu-model.js';
import { ANNOTATION_GPU_MODEL } from '../scheduler/pod-ask.js';
import type { QueueSpec } from '../store/queue-directory.js';
import { LABEL_QUEUE, LABEL_USER } from '../webhooks/labels.js';
import { ANNOTATION_EXPECTED_DURATION, estimateDuration, type DurationBasis, type DurationEstimate } from './duration.js';
import type { DurationHistory } from './duration-history.js';
import { forecast, type ForecastInput, type RunningJob, type StartEstimate, type WaitingJob } from './forecast.js';
import type { QueueManager, Snapshot } from './manager.js';
import { buildState } from './state.js';
import { isGated, isQueued, jobKey, qosOf, type Unit } from './units.js';

export interface EtaBasis {
  /** Jobs running now and jobs expected to start before this one, by how their run time is known. */
  declared: number;
  learned: number;
  /** Finished jobs behind the learned durations (sum of sample sizes). */
  learnedFrom: number;
  unknown: number;
  /** This job's own expected run time. */
  duration: { basis: DurationBasis; seconds: number | null; samples: number };
}

export interface JobEta {
  /** Expected start (ms); null when not known within the forecast's bounds. */
  estimatedStartMs: number | null;
  earliestMs: number | null;
  latestMs: number | null;
  basis: EtaBasis;
  /** Why there is no estimate (null when there is one). */
  unknownReason: string | null;
  computedAtMs: number;
}

export interface EtaServiceOptions {
  cache: ClusterCache;
  manager: QueueManager;
  history: DurationHistory | null;
  log: Logger;
  backfillGuardMs: number;
  intervalMs?: number;
  maxJobs?: number;
  budgetMs?: number;
  admissionBudgetMs?: number;
  now?: () => number;
}

interface Built {
  /** The manager's evaluation this input was built after (Snapshot.pass). */
  pass: number;
  input: ForecastInput;
  durations: Map<string, DurationEstimate>;
  runningDurations: DurationEstimate[];
}

export class EtaService {
  private timer: NodeJS.Timeout | null = null;
  private lastPass = -1;
  private lastRunMs = 0;
  private dirty = false;
  private built: Built | null = null;
  /** What the last build of the input cost (ms), to know if a what-if can afford one. */
  private lastBuildMs = 0;
  /** A what-if found the input stale and could not afford to build it: the next tick does. */
  private inputWanted = false;
  private byJob = new Map<string, JobEta>();
  private readonly now: () => number;
  /** Cost of the last forecast, for logs and the docs' figures. */
  lastCost = { ms: 0, passes: 0, waiting: 0, estimated: 0 };

  constructor(private readonly opts: EtaServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.maybeRecompute(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** New durations are known (history read): recompute at the next tick. */
  markDirty(): void {
    this.dirty = true;
  }

  maybeRecompute(): void {
    const s = this.opts.manager.current();
    if (!s) return;
    const changed = s.pass !== this.lastPass || this.dirty;
    if (changed && this.now() - this.lastRunMs >= (this.opts.intervalMs ?? 10_000)) this.recompute();
    else if (this.inputWanted && this.opts.cache.synced && this.built?.pass !== s.pass) this.rebuild(s, this.now());
    this.inputWanted = false;
  }

  /** Builds the input from the cache and runs the forecast (synchronous; bounded by budgetMs). */
  recompute(): void {
    const s = this.opts.manager.current();
    if (!s || !this.opts.cache.synced) return;
    const t0 = performance.now();
    this.lastPass = s.pass;
    this.dirty = false;
    const nowMs = this.now();
    this.lastRunMs = nowMs;
    const built = this.rebuild(s, nowMs);
    const f = forecast({ ...built.input, maxWaiting: this.opts.maxJobs ?? 1000, budgetMs: this.opts.budgetMs ?? 2000 });
    const byJob = new Map<string, JobEta>();
    for (const w of built.input.waiting) {
      const jk = `${w.unit.namespace}/${w.unit.job}`;
      const eta = this.etaOf(w.unit, f.starts, built, nowMs, f.truncated, built.input.waiting.length);
      const prev = byJob.get(jk);
      // A job of several units (pods released one by one) starts when its last unit does.
      if (!prev || (eta.estimatedStartMs ?? Infinity) > (prev.estimatedStartMs ?? Infinity)) byJob.set(jk, eta);
    }
    this.byJob = byJob;
    const ms = performance.now() - t0;
    this.lastCost = { ms, passes: f.steps, waiting: built.input.waiting.length, estimated: f.starts.size };
    this.opts.log.debug({ ms: Math.round(ms), passes: f.steps, waiting: built.input.waiting.length, estimated: f.starts.size }, 'start times estimated');
  }

  /** The last estimate for a waiting job; undefined when it is not waiting (or none ran yet). */
  forJob(namespace: string, job: string): JobEta | undefined {
    return this.byJob.get(`${namespace}/${job}`);
  }

  /**
   * What-if for a job being submitted: the last input plus this unit, within
   * admissionBudgetMs. Null when there is no input yet or the budget was not enough.
   */
  whatIf(unit: Unit, annotation: string | undefined, kind: string): JobEta | null {
    const t0 = performance.now();
    let b = this.built;
    const budget = this.opts.admissionBudgetMs ?? 20;
    if (!b || budget <= 0) return null;
    // The budget is checked between passes: when one pass of the last forecast took longer
    // than the whole budget, do not start (admission must not wait on it).
    if (this.lastCost.passes > 0 && this.lastCost.ms / this.lastCost.passes > budget) return null;
    const nowMs = this.now();
    const s = this.opts.manager.current();
    if (s && s.pass !== b.pass) {
      // Jobs started, ended or arrived since the input was built: never answer from it.
      if (this.lastBuildMs > budget / 2 || !this.opts.cache.synced) {
        this.inputWanted = true;
        return null;
      }
      b = this.rebuild(s, nowMs);
    }
    const spec = b.input.queues === 'unlimited' ? undefined : b.input.queues.get(unit.queue);
    const duration = estimateDuration({
      annotation,
      maxDurationSeconds: spec?.maxDurationSeconds ?? null,
      history: this.opts.history?.get({ queue: unit.queue, user: unit.user, kind }) ?? [],
      nowMs,
    });
    const max = this.opts.maxJobs ?? 1000;
    const waiting = [...b.input.waiting.slice(0, max), { unit, duration }];
    const f = forecast({
      ...b.input,
      nowMs,
      waiting,
      maxWaiting: waiting.length,
      budgetMs: Math.max(0, budget - (performance.now() - t0)),
      until: new Set([unit.key]),
    });
    if (!f.starts.has(unit.key) && f.truncated) return null; // the budget ran out: not yet known
    const durations = new Map(b.durations).set(unit.key, duration);
    return this.etaOf(unit, f.starts, { ...b, durations }, nowMs, false, waiting.length);
  }

  private etaOf(u: Unit, starts: ReadonlyMap<string, StartEstimate>, b: Built, nowMs: number, truncated: boolean, waiting: number): JobEta {
    const own = b.durations.get(u.key);
    const st = starts.get(u.key);
    const basis: EtaBasis = {
      declared: 0,
      learned: 0,
      learnedFrom: 0,
      unknown: 0,
      duration: { basis: own?.basis ?? 'unknown', seconds: own?.seconds ?? null, samples: own?.samples ?? 0 },
    };
    const count = (d: DurationEstimate): void => {
      if (d.basis === 'annotation') basis.declared++;
      else if (d.basis === 'history') {
        basis.learned++;
        basis.learnedFrom += d.samples;
      } else basis.unknown++;
    };
    for (const d of b.runningDurations) count(d);
    if (st)
      for (const [k, other] of starts)
        if (k !== u.key && other.atMs <= st.atMs)
          count(b.durations.get(k) ?? estimateDuration({ annotation: undefined, maxDurationSeconds: null, history: [], nowMs }));
    if (st) return { estimatedStartMs: st.atMs, earliestMs: st.earliestMs, latestMs: st.latestMs, basis, unknownReason: null, computedAtMs: nowMs };
    const why =
      truncated && waiting > (this.opts.maxJobs ?? 1000)
        ? `more jobs wait than the forecast follows (${this.opts.maxJobs ?? 1000}); this one is behind them`
        : truncated
          ? 'the forecast reached its bound (steps, horizon or time budget) before this job started'
          : 'it waits on jobs whose run time is unknown (no sluice.io/expected-duration and too few finished jobs like them)';
    return { estimatedStartMs: null, earliestMs: null, latestMs: null, basis, unknownReason: why, computedAtMs: nowMs };
  }

  /** Builds the forecast's input for the manager's evaluation `s` and keeps it (with its cost). */
  private rebuild(s: Snapshot, nowMs: number): Built {
    const t0 = performance.now();
    this.built = this.build(s.queues, s.waiting, nowMs, s.pass);
    this.lastBuildMs = performance.now() - t0;
    return this.built;
  }

  private build(
    queues: ReadonlyMap<string, QueueSpec>,
    lastWaiting: ReadonlyMap<string, ReadonlyArray<{ unit: Unit; position: number }>>,
    nowMs: number,
    pass: number,
  ): Built {
    const cache = this.opts.cache;
    const qs = queues.size > 0 ? queues : 'unlimited';
    const state = buildState(cache, qs, new Set());
    const podByUid = new Map<string, Readonly<PodRecord>>();
    const runningPods = new Map<string, Array<Readonly<PodRecord>>>();
    for (const p of cache.allPods()) {
      if (!isQueued(p)) continue;
      podByUid.set(p.uid, p);
      // Bound pods, and released ones not bound yet (they hold quota; buildState placed them).
      // A pod asking no GPU (a queue label on a CPU pod) holds nothing the forecast waits
      // for: counted, it would add an "unknown duration" to every basis.
      if (p.terminal || isGated(p) || p.requests.length === 0) continue;
      const k = jobKey(p);
      const list = runningPods.get(k);
      if (list) list.push(p);
      else runningPods.set(k, [p]);
    }
    const durationOf = (p: Readonly<PodRecord>): DurationEstimate => {
      const queue = p.labels[LABEL_QUEUE]!;
      const user = p.labels[LABEL_USER] ?? '';
      const kind = p.owner?.kind ?? 'Pod';
      return estimateDuration({
        annotation: p.annotations[ANNOTATION_EXPECTED_DURATION],
        maxDurationSeconds: queues.get(queue)?.maxDurationSeconds ?? null,
        history: this.opts.history?.get({ queue, user, kind }) ?? [],
        nowMs,
      });
    };

    const running: RunningJob[] = [];
    const runningDurations: DurationEstimate[] = [];
    for (const [key, pods] of runningPods) {
      const first = pods[0]!;
      const duration = durationOf(first);
      runningDurations.push(duration);
      const started = Math.min(...pods.map((p) => Date.parse(p.started || p.created)).filter(Number.isFinite));
      running.push({
        key,
        qos: qosOf(first),
        holdings: pods.map((p) => ({
          queue: p.labels[LABEL_QUEUE]!,
          user: p.labels[LABEL_USER] ?? '',
          qos: qosOf(p),
          requests: cache.gpuEquivalents(p),
          product: p.nodeName ? (cache.nodeView(p.nodeName, p.requests[0]?.resource ?? cache.resources[0]!)?.product ?? '') : null,
          models: parseModelList(p.annotations[ANNOTATION_GPU_MODEL]), // as buildState counts it: the rows it holds
        })),
        // On shared GPUs, what each pod holds there, for the forecast to free at its end.
        pods: pods.map((p) =>
          p.nodeName && p.hold?.node === p.nodeName
            ? { node: p.nodeName, requests: p.requests, uses: p.hold.uses }
            : { node: p.nodeName, requests: p.requests },
        ),
        startedMs: Number.isFinite(started) ? started : nowMs,
        duration,
      });
    }

    // Release order as the manager's last pass saw it: earlier positions first, so that the
    // jobs the forecast follows (maxJobs) are the ones nearest to starting.
    const rank = new Map<string, number>();
    for (const list of lastWaiting.values()) for (const w of list) rank.set(w.unit.key, w.position);
    const units = [...state.units].sort((a, b) => (rank.get(a.key) ?? Infinity) - (rank.get(b.key) ?? Infinity) || a.submittedMs - b.submittedMs);
    const durations = new Map<string, DurationEstimate>();
    const waiting: WaitingJob[] = units.map((unit) => {
      const pod = podByUid.get(unit.pods[0]?.uid ?? '');
      const duration = pod ? durationOf(pod) : estimateDuration({ annotation: undefined, maxDurationSeconds: null, history: [], nowMs });
      durations.set(unit.key, duration);
      return { unit, duration };
    });
    const weights = new Map([...queues.values()].map((q) => [q.name, q.weight]));
    return {
      pass,
      input: { nowMs, nodes: state.capacity.nodeList(), running, waiting, queues: qs, weights, backfillGuardMs: this.opts.backfillGuardMs },
      durations,
      runningDurations,
    };
  }
}

/** "about 40 min", "about 3 h", "about 2 days", "within a minute". */
export function humanDelay(ms: number): string {
  const min = ms / 60_000;
  if (min < 1) return 'within a minute';
  if (min < 15) return `about ${Math.round(min)} min`;
  if (min < 90) return `about ${Math.round(min / 5) * 5} min`;
  const h = min / 60;
  if (h < 36) return `about ${Math.round(h)} h`;
  return `about ${Math.round(h / 24)} days`;
}

/** What an estimate rests on, in words: "from 3 declared durations and 12 finished jobs like the ones ahead". */
export function basisText(b: EtaBasis): string {
  const parts: string[] = [];
  if (b.declared > 0) parts.push(`${b.declared} declared duration${b.declared === 1 ? '' : 's'}`);
  if (b.learned > 0) parts.push(`${b.learnedFrom} finished jobs like the ones ahead`);
  const from = parts.length > 0 ? `from ${parts.join(' and ')}` : 'no running job to wait for';
  return b.unknown > 0 ? `${from}; ${b.unknown} of unknown duration taken as never ending` : from;
}

/** The ETA part of a warning or an Event: "; expected start in about 40 min (from ...)". */
export function etaPhrase(e: JobEta | null | undefined, nowMs: number): string {
  if (!e) return '; ETA not yet known';
  if (e.estimatedStartMs === null) return `; ETA not known: ${e.unknownReason}`;
  const range =
    e.latestMs !== null && e.latestMs - e.earliestMs! >= 5 * 60_000
      ? `, between ${humanDelay(Math.max(0, e.earliestMs! - nowMs)).replace('about ', '')} and ${humanDelay(Math.max(0, e.latestMs - nowMs)).replace('about ', '')}`
      : '';
  const delay = e.estimatedStartMs - nowMs;
  const when = delay <= 0 ? 'expected to start now' : delay < 60_000 ? 'expected to start within a minute' : `expected start in ${humanDelay(delay)}`;
  return `; ${when} (${basisText(e.basis)}${range})`;
}
