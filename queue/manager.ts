// The queue manager: holds gated GPU jobs and releases them the moment quota and real
// capacity allow. Event-driven: every cache change that can matter (a pod gated,
// released, bound, finished or deleted; a node added, changed or removed) and every
// quota change (the store's NOTIFY) triggers one evaluation a few milliseconds later
// (debounced, and never more than half the time busy); a slow timer covers what time
// alone changes (the backfill guard) and retries.
//
// Every replica evaluates, so that every replica can answer the admin API and the
// submit-time warning; only the Lease holder acts (enqueues releases, emits Events).
// Decisions: evaluate.ts. Carrying them out: releaser.ts. Records: store/jobs.ts.
import type { ClusterCache, CacheChange } from '../cluster/cache.js';
import type { Leadership } from '../cluster/leader.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { JobRecord, JobRecorder, JobState, OpenJobRecords } from '../store/jobs.js';
import type { QueueSpec } from '../store/queue-directory.js';
import { evaluate, type Evaluation, type Waiting } from './evaluate.js';
import type { QueueEvents } from './events.js';
import type { QuotaLedger } from './quota.js';
import type { CapacityModel } from './capacity.js';
import type { ReleaseSink } from './releaser.js';
import { buildState, jobStateOf } from './state.js';
import { JobIndex, type LiveJob } from './job-index.js';
import { GATE_QUEUE } from '../webhooks/labels.js';
import type { Unit } from './units.js';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';
import type { EtaService } from './eta-service.js';
import { GoneJobSweep } from './gone-jobs.js';

export interface QueueSource {
  /** Every queue; throws when Postgres cannot be read. */
  listQueues(): Promise<QueueSpec[]>;
  onQueueChanged(fn: (queue: string) => void): void;
  /** Why queues cannot be read yet (store not migrated), or null. */
  notReady?(): string | null;
}

export interface QueueManagerOptions {
  cache: ClusterCache;
  source: QueueSource | null;
  releaser: ReleaseSink | null;
  records: JobRecorder | null;
  /** Unfinished job records, for closing those of jobs gone while no replica watched (gone-jobs.ts); null: no store. */
  openRecords?: OpenJobRecords | null;
  events: QueueEvents | null;
  leadership: Leadership;
  log: Logger;
  metrics: Metrics;
  backfillGuardSeconds: number;
  debounceMs: number;
  resyncSeconds: number;
  waitEventIntervalSeconds: number;
  /** While nothing waits: how long a cluster change may wait for its pass (default IDLE_CHANGE_DEBOUNCE_MS). */
  idleChangeDebounceMs?: number;
  now?: () => number;
}

export interface Snapshot {
  evaluatedAtMs: number;
  /** Counts full evaluations: tells one from the next, even within one millisecond. */
  pass: number;
  /** Per queue: waiting jobs in release order. */
  waiting: ReadonlyMap<string, readonly Waiting[]>;
  ledger: QuotaLedger;
  capacity: CapacityModel;
  queues: ReadonlyMap<string, QueueSpec>;
  /** Why decided releases cannot be made durable now (Redis refused the last one); null when they can. */
  releasesBlocked: string | null;
}

/** What a job whose release is decided but not yet taken by Redis shows (API, records, submit warning). */
export const RELEASE_PENDING_REDIS = 'release pending: Redis unavailable; the job is released when Redis takes the order (sluice_redis_up shows 0)';
const RELEASE_PENDING = 'release decided; waiting for Redis to take the order';

const STALE_RELEASE_MS = 5 * 60_000;
/** With nothing waiting or being released, a full pass runs at most this often (metrics). */
const IDLE_REFRESH_MS = 60_000;
/**
 * With nothing waiting or being released, a cluster change (a pod created, bound, running,
 * finished) is folded into a pass at most this long after it, and passes take at most a
 * tenth of the time: what they refresh then is only what the submit warning, the admin API
 * and the metrics read. Measured (bench/cluster): during a scheduling storm of unqueued
 * pods, a full pass after every change took a fifth of sluice's CPU.
 */
export const IDLE_CHANGE_DEBOUNCE_MS = 1000;
const IDLE_BUSY_FACTOR = 9;

export class QueueManager {
  private readonly cache: ClusterCache;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly now: () => number;
  private queues: Map<string, QueueSpec> | null = null;
  /** uid -> when its release was enqueued. */
  private readonly releasing = new Map<string, number>();
  /** uids in `releasing` whose order Redis has not taken yet: they hold room but are not released. */
  private readonly enqueuing = new Set<string>();
  /** The last enqueue failed (Redis down or too slow); cleared by the next that succeeds. */
  private redisFailing = false;
  private pendingSinceMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The pending timer is an idle-time one (IDLE_CHANGE_DEBOUNCE_MS). */
  private timerLazy = false;
  private resync: NodeJS.Timeout | null = null;
  private lastEvalMs = 0;
  private lastDurationMs = 0;
  private snapshot: Snapshot | null = null;
  private readonly lastWaitEvent = new Map<string, number>();
  private readonly lastStates = new Map<string, JobRecord>();
  /** Managed pods by job, from cache events: what a pass costs follows what changed. */
  private readonly jobs: JobIndex;
  private lastWaitingOf = new Map<string, Waiting>();
  private lastFullMs = 0;
  private forceFull = true;
  private stopped = false;
  /** Estimated start times of the waiting jobs (admin API, submit warning); null = none. */
  eta: EtaService | null = null;
  /** Adds the estimated start to the wait Events (set by the ETA service); none by default. */
  private etaNote: ((u: Unit, nowMs: number) => string) | null = null;
  private loadingQueues: Promise<void> | null = null;
  /** Closes the records of jobs gone while no replica watched; null without a store. */
  private readonly goneJobs: GoneJobSweep | null;
  /**
   * The sweep for records of jobs gone unseen, due since this replica became leader: 'now'
   * (at the first pass with a synced cache and the queues read), 'resync' (it failed: at the
   * next resync tick), or null (done, or not leading).
   */
  private goneSweepDue: 'now' | 'resync' | null = null;
  private goneSweep: { stop: AbortController; done: Promise<void> } | null = null;

  constructor(private readonly opts: QueueManagerOptions) {
    this.cache = opts.cache;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.now = opts.now ?? Date.now;
    this.jobs = new JobIndex(opts.cache);
    const records = opts.records;
    this.goneJobs = opts.openRecords
      ? new GoneJobSweep({
          records: opts.openRecords,
          liveJobs: () => this.jobs.liveJobs(),
          flush: records ? () => records.flush() : undefined,
          log: opts.log,
          metrics: opts.metrics,
        })
      : null;
  }

  async start(): Promise<void> {
    this.cache.onChange((c) => this.onCacheChange(c));
    for (const p of this.cache.allPods()) this.jobs.update(p.uid, p);
    this.opts.source?.onQueueChanged(() => void this.reloadQueues());
    await this.reloadQueues();
    this.resync = setInterval(() => {
      if (!this.queues) void this.reloadQueues();
      this.trigger('resync');
      this.sweepGoneJobs('resync');
    }, this.opts.resyncSeconds * 1000);
    this.resync.unref();
    this.trigger('start');
  }

  /** The ETA service's text for a waiting unit, appended to its wait Event. */
  setEtaNote(fn: (u: Unit, nowMs: number) => string): void {
    this.etaNote = fn;
  }

  /**
   * Becoming leader: decided releases still in Redis count as released, then work them off;
   * and records of jobs that went while no replica watched are closed (once the cache has synced).
   */
  async startLeading(): Promise<void> {
    if (this.goneJobs) {
      this.goneSweepDue = 'now';
      this.sweepGoneJobs('now');
    }
    if (!this.opts.releaser) return;
    try {
      for (const uid of await this.opts.releaser.pendingUids()) if (!this.releasing.has(uid)) this.releasing.set(uid, this.now());
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot read pending releases from Redis; they are carried out when Redis answers');
    }
    await this.opts.releaser.start();
    this.trigger('leader');
  }

  async stopLeading(): Promise<void> {
    this.goneSweepDue = null;
    await this.stopGoneSweep();
    await this.opts.releaser?.stop();
  }

  /**
   * Starts the sweep for records of jobs gone unseen if it is due and can run: leading, the
   * cache synced (else every job would look gone) and the queues read (Postgres answered).
   * `when` 'now' is a pass or the start of leadership; a sweep that failed waits for 'resync'.
   */
  private sweepGoneJobs(when: 'now' | 'resync'): void {
    const due = this.goneSweepDue;
    if (!this.goneJobs || due === null || this.goneSweep || this.stopped) return;
    if (due === 'resync' && when !== 'resync') return;
    if (!this.cache.synced || !this.queues || !this.opts.leadership.isLeader()) return;
    const stop = new AbortController();
    const done = this.goneJobs.run(stop.signal).then((closed) => {
      this.goneSweep = null;
      if (stop.signal.aborted) return;
      this.goneSweepDue = closed === null ? 'resync' : null;
    });
    this.goneSweep = { stop, done };
  }

  private async stopGoneSweep(): Promise<void> {
    const s = this.goneSweep;
    if (!s) return;
    s.stop.abort();
    await s.done;
  }

  private async reloadQueues(): Promise<void> {
    if (!this.opts.source) {
      this.queues ??= new Map();
      return;
    }
    if (this.loadingQueues) return this.loadingQueues;
    const why = this.opts.source.notReady?.();
    if (why) {
      this.log.debug({ why }, 'queue definitions not loaded yet; jobs wait until the store is ready');
      return;
    }
    this.loadingQueues = (async () => {
      try {
        const list = await this.opts.source!.listQueues();
        const hadNone = this.queues === null;
        this.queues = new Map(list.map((q) => [q.name, q]));
        if (hadNone) this.log.info({ queues: list.length }, 'queue manager has the queue definitions');
        this.trigger('quota');
      } catch (e) {
        this.log.warn(
          { err: (e as Error).message },
          this.queues
            ? 'cannot reload queue definitions; releasing by the last known quotas'
            : 'cannot load queue definitions yet; jobs wait until Postgres answers',
        );
      } finally {
        this.loadingQueues = null;
      }
    })();
    return this.loadingQueues;
  }

  private onCacheChange(c: CacheChange): void {
    if (c.kind === 'pod') {
      this.jobs.update(c.uid, c.after);
      const after = c.after;
      // A release shows up in the watch: it is no longer "being released".
      if (this.releasing.has(c.uid) && (!after || !after.gates.includes(GATE_QUEUE))) {
        this.releasing.delete(c.uid);
        this.enqueuing.delete(c.uid);
      }
      const b = c.before;
      // Only what can change a decision: gates, binding, end of life, arrival, deletion.
      if (b && after && b.nodeName === after.nodeName && b.terminal === after.terminal && b.gates.length === after.gates.length && b.labels === after.labels)
        return;
    }
    // Room or quota may have changed: the next pass is a full one, so that what the submit
    // warning and the metrics read is current, not only what waiting jobs need.
    this.forceFull = true;
    this.trigger(c.kind);
  }

  /** Nothing waits behind the gate and no release is under way. */
  private idle(): boolean {
    return this.jobs.gated.size === 0 && this.releasing.size === 0;
  }

  /** Asks for an evaluation soon; `why` only for logs. */
  trigger(why: string): void {
    if (this.stopped) return;
    if (why === 'quota' || why === 'start' || why === 'leader') this.forceFull = true;
    this.pendingSinceMs ??= this.now();
    // Debounced, and never more than half the time spent evaluating; while nothing waits,
    // a cluster change is folded in later and passes take at most a tenth of the time.
    const lazy = (why === 'pod' || why === 'node') && this.idle();
    if (this.timer) {
      if (lazy || !this.timerLazy) return;
      clearTimeout(this.timer); // something waits now: the lazy wait no longer applies
    }
    const sinceLast = this.now() - this.lastEvalMs;
    const wait = lazy
      ? Math.max(this.opts.idleChangeDebounceMs ?? IDLE_CHANGE_DEBOUNCE_MS, IDLE_BUSY_FACTOR * this.lastDurationMs - sinceLast)
      : Math.max(this.opts.debounceMs, this.lastDurationMs - sinceLast);
    this.timerLazy = lazy;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.evaluateNow();
    }, wait);
    this.timer.unref();
  }

  /**
   * One evaluation, and (as leader) its releases; null when there was nothing to decide.
   * A full pass (every waiting job against quota and capacity) runs after a change of the
   * cluster or the quotas, and on the resync timer only while a pod waits or is being
   * released (else once a minute); job records follow the jobs that changed.
   */
  evaluateNow(): Evaluation | null {
    const eventAt = this.pendingSinceMs ?? this.now();
    this.pendingSinceMs = null;
    if (!this.queues) return null;
    // A cache that has not listed every pod yet would make room look free that is not.
    if (!this.cache.synced) return null;
    const start = performance.now();
    const nowMs = this.now();
    for (const [uid, since] of this.releasing) {
      if (nowMs - since > STALE_RELEASE_MS) {
        this.releasing.delete(uid);
        this.enqueuing.delete(uid);
      }
    }
    const leader = this.opts.leadership.isLeader() && this.opts.releaser !== null;
    const full = this.forceFull || this.jobs.gated.size > 0 || this.releasing.size > 0 || nowMs - this.lastFullMs >= IDLE_REFRESH_MS;
    let ev: Evaluation | null = null;
    let releasedJobs = new Set<string>();
    if (full) {
      this.forceFull = false;
      this.lastFullMs = nowMs;
      const state = buildState(this.cache, this.opts.source ? this.queues : 'unlimited', new Set(this.releasing.keys()));
      const weights = new Map([...this.queues.values()].map((q) => [q.name, q.weight]));
      ev = evaluate({
        units: state.units,
        ledger: state.ledger,
        capacity: state.capacity,
        weights,
        nowMs,
        backfillGuardMs: this.opts.backfillGuardSeconds * 1000,
      });
      if (leader) {
        // Counted as released from this moment, so an evaluation while Redis takes the order
        // cannot hand the same quota and GPUs to another job; undone if Redis refuses.
        for (const u of ev.releases) {
          for (const p of u.pods) {
            this.releasing.set(p.uid, nowMs);
            this.enqueuing.add(p.uid);
          }
        }
        for (const u of ev.releases) void this.release(u, eventAt);
      }
      releasedJobs = new Set(ev.releases.map((u) => `${u.namespace}/${u.job}`));
      // The waiting set as this pass saw it (heals anything a relist removed without an event).
      this.jobs.gated.clear();
      for (const u of state.units) for (const p of u.pods) if (!this.releasing.has(p.uid)) this.jobs.gated.add(p.uid);
      this.lastWaitingOf = new Map();
      for (const list of ev.waiting.values()) {
        for (const w of list) {
          const key = `${w.unit.namespace}/${w.unit.job}`;
          if (!this.lastWaitingOf.has(key)) this.lastWaitingOf.set(key, w);
          this.jobs.dirty.add(key); // its reason or position may have changed
        }
      }
      for (const key of releasedJobs) this.jobs.dirty.add(key);
      this.snapshot = {
        evaluatedAtMs: nowMs,
        pass: (this.snapshot?.pass ?? 0) + 1,
        waiting: ev.waiting,
        ledger: state.ledger,
        capacity: state.capacity,
        queues: this.queues,
        releasesBlocked: leader && this.redisFailing ? RELEASE_PENDING_REDIS : null,
      };
      this.exportMetrics(ev);
      if (leader) this.waitEvents(ev, nowMs);
    }
    this.recordJobs(leader, nowMs);
    this.sweepGoneJobs('now');
    const took = performance.now() - start;
    this.lastDurationMs = took;
    this.lastEvalMs = this.now();
    if (full) this.metrics.queueEvaluation.observe(took / 1000);
    if (ev && ev.releases.length > 0) {
      this.log.info(
        { released: ev.releases.length, waiting: this.jobs.gated.size, ms: Math.round(took) },
        leader ? 'releasing jobs' : 'jobs would be released (not leader)',
      );
    }
    return ev;
  }

  private async release(u: Unit, eventAt: number): Promise<void> {
    try {
      const ok = await this.opts.releaser!.enqueue(u, eventAt);
      this.redisFailing = !ok;
      for (const p of u.pods) this.enqueuing.delete(p.uid);
      this.jobs.dirty.add(`${u.namespace}/${u.job}`); // its record changes: released, or pending
      if (!ok) {
        // Decided again at the next (full) evaluation, which the finally below asks for.
        for (const p of u.pods) {
          this.releasing.delete(p.uid);
          this.jobs.gated.add(p.uid);
        }
        this.forceFull = true;
        return;
      }
      const at = this.now();
      this.metrics.admittedJobs.inc({ queue: u.queue });
      this.metrics.admissionWait.observe({ queue: u.queue }, Math.max(0, at - u.submittedMs) / 1000);
      this.log.info({ job: `${u.namespace}/${u.job}`, queue: u.queue, qos: u.qos, pods: u.pods.length, gpus: u.need }, 'job released');
      this.opts.events?.released(u);
    } finally {
      this.trigger('released');
    }
  }

  /** A pod's gate is gone (called by the release worker). */
  gateRemoved(eventAtMs: number): void {
    this.metrics.gateRemoval.observe(Math.max(0, this.now() - eventAtMs) / 1000);
  }

  /** The records of the jobs that changed since the last pass (states for the API alike). */
  private recordJobs(leader: boolean, nowMs: number): void {
    const releasing = this.releasedUids();
    for (const key of this.jobs.dirty) {
      const view = this.jobs.view(key, releasing);
      const prev = this.lastStates.get(key);
      if (!view) {
        // Every pod is gone: deleted, unless it had finished first.
        this.lastStates.delete(key);
        if (prev && prev.state !== 'finished' && leader)
          this.opts.records?.observe({ ...prev, state: 'deleted', reason: '', waitingFor: '', finishedAt: new Date(nowMs) });
        if (prev) this.opts.records?.forget(prev.namespace, prev.name);
        continue;
      }
      const live = view.pods.filter((p) => !p.terminal);
      const w = this.lastWaitingOf.get(key);
      // A job is released once Redis took its order (or its gate is gone), not when decided.
      const state: JobState = jobStateOf(view);
      const pending = state === 'queued' && !w && view.pods.some((p) => this.enqueuing.has(p.uid));
      // GPU-equivalents: a share pod of a quarter GPU counts 0.25 (whole GPUs as before).
      const gpus = milliToGpus(view.gpus.reduce((a, g) => a + gpusToMilli(g.count), 0));
      const rec: JobRecord = {
        namespace: view.namespace,
        name: view.job,
        queue: view.queue,
        qos: view.qos,
        user: view.user,
        resource: view.gpus[0]?.resource ?? prev?.resource ?? '',
        model: view.models.join(','),
        gangSize: view.gangSize,
        gpusPerPod:
          live.length > 0 ? (Number.isInteger(gpus) ? Math.round(gpus / live.length) : milliToGpus(gpusToMilli(gpus) / live.length)) : (prev?.gpusPerPod ?? 0),
        gpus: live.length > 0 ? gpus : (prev?.gpus ?? 0),
        state,
        reason: pending ? (this.redisFailing ? RELEASE_PENDING_REDIS : RELEASE_PENDING) : state === 'queued' ? (w?.reason ?? '') : '',
        waitingFor: pending ? 'release_queue' : state === 'queued' ? (w?.waitingFor ?? '') : '',
        priority: view.priority,
        podsSeen: view.pods.length,
        submittedAt: new Date(Number.isFinite(view.submittedMs) ? view.submittedMs : nowMs),
        releasedAt: state === 'queued' ? null : (prev?.releasedAt ?? new Date(nowMs)),
        finishedAt: state === 'finished' ? (prev?.finishedAt ?? new Date(nowMs)) : null,
        kind: view.kind,
      };
      this.lastStates.set(key, rec);
      if (leader) this.opts.records?.observe(rec);
    }
    this.jobs.dirty.clear();
  }

  /** One live job (the admin API), with its state; undefined when none of its pods exists. */
  job(namespace: string, name: string): LiveJob | undefined {
    return this.jobs.job(`${namespace}/${name}`, this.releasedUids());
  }

  /** The live jobs of a queue (the admin API's running list). */
  jobsOf(queue: string): LiveJob[] {
    return this.jobs.jobsOf(queue, this.releasedUids());
  }

  /** Pods counted as released in views and records: Redis took their order, gate not yet gone. */
  private releasedUids(): Set<string> {
    const out = new Set<string>();
    for (const uid of this.releasing.keys()) if (!this.enqueuing.has(uid)) out.add(uid);
    return out;
  }

  private exportMetrics(ev: Evaluation): void {
    this.metrics.pendingJobs.reset();
    for (const [queue, list] of ev.waiting) {
      const by = new Map<string, number>();
      for (const w of list) by.set(w.waitingFor, (by.get(w.waitingFor) ?? 0) + 1);
      for (const [reason, n] of by) this.metrics.pendingJobs.set({ queue, reason }, n);
    }
    this.metrics.queueGpus.reset();
    const ledger = this.snapshot?.ledger;
    if (!ledger || !this.queues) return;
    for (const q of this.queues.keys()) {
      for (const g of ledger.gpus(q)) {
        this.metrics.queueGpus.set({ queue: q, resource: g.resource, state: 'used' }, g.used);
        this.metrics.queueGpus.set({ queue: q, resource: g.resource, state: 'best_effort_used' }, g.bestEffortUsed);
        this.metrics.queueGpus.set({ queue: q, resource: g.resource, state: 'guaranteed' }, g.guaranteed);
        this.metrics.queueGpus.set({ queue: q, resource: g.resource, state: 'best_effort_cap' }, g.bestEffortCap);
      }
    }
  }

  /** At most once a minute per job: why it still waits (kubectl describe pod shows it). */
  private waitEvents(ev: Evaluation, nowMs: number): void {
    if (!this.opts.events) return;
    const every = this.opts.waitEventIntervalSeconds * 1000;
    const live = new Set<string>();
    for (const [queue, list] of ev.waiting) {
      for (const w of list) {
        live.add(w.unit.key);
        const last = this.lastWaitEvent.get(w.unit.key);
        if (last !== undefined && nowMs - last < every) continue;
        this.lastWaitEvent.set(w.unit.key, nowMs);
        this.opts.events.waiting(
          w.unit,
          `waiting in queue ${queue}, position ${w.position} of ${list.length}: ${w.reason}${this.etaNote?.(w.unit, nowMs) ?? ''}`,
        );
      }
    }
    for (const k of this.lastWaitEvent.keys()) if (!live.has(k)) this.lastWaitEvent.delete(k);
  }

  /** The job's record as of the last evaluation (live jobs only). */
  jobRecord(namespace: string, job: string): JobRecord | undefined {
    return this.lastStates.get(`${namespace}/${job}`);
  }

  /** The last evaluation (admin API); null before the first. */
  current(): Snapshot | null {
    return this.snapshot;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resync) clearInterval(this.resync);
    await this.stopGoneSweep();
  }
}
