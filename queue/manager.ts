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
import type { JobRecord, JobRecorder, JobState } from '../store/jobs.js';
import type { QueueSpec } from '../store/queue-directory.js';
import { evaluate, type Evaluation, type Waiting } from './evaluate.js';
import type { QueueEvents } from './events.js';
import type { QuotaLedger } from './quota.js';
import type { CapacityModel } from './capacity.js';
import type { ReleaseSink } from './releaser.js';
import { buildState, type JobView } from './state.js';
import { GATE_QUEUE } from '../webhooks/labels.js';
import type { Unit } from './units.js';


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
  events: QueueEvents | null;
  leadership: Leadership;
  log: Logger;
  metrics: Metrics;
  backfillGuardSeconds: number;
  debounceMs: number;
  resyncSeconds: number;
  waitEventIntervalSeconds: number;
  now?: () => number;
}

export interface Snapshot {
  evaluatedAtMs: number;
  /** Per queue: waiting jobs in release order. */
  waiting: ReadonlyMap<string, readonly Waiting[]>;
  jobs: ReadonlyMap<string, JobView>;
  ledger: QuotaLedger;
  capacity: CapacityModel;
  states: ReadonlyMap<string, JobState>;
  queues: ReadonlyMap<string, QueueSpec>;
}

const STALE_RELEASE_MS = 5 * 60_000;

export class QueueManager {
  private readonly cache: ClusterCache;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly now: () => number;
  private queues: Map<string, QueueSpec> | null = null;
  /** uid -> when its release was enqueued. */
  private readonly releasing = new Map<string, number>();
  private pendingSinceMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private resync: NodeJS.Timeout | null = null;
  private lastEvalMs = 0;
  private lastDurationMs = 0;
  private snapshot: Snapshot | null = null;
  private readonly lastWaitEvent = new Map<string, number>();
  private readonly lastStates = new Map<string, JobRecord>();
  private stopped = false;
  private loadingQueues: Promise<void> | null = null;

  constructor(private readonly opts: QueueManagerOptions) {
    this.cache = opts.cache;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.cache.onChange((c) => this.onCacheChange(c));
    this.opts.source?.onQueueChanged(() => void this.reloadQueues());
    await this.reloadQueues();
    this.resync = setInterval(() => {
      if (!this.queues) void this.reloadQueues();
      this.trigger('resync');
    }, this.opts.resyncSeconds * 1000);
    this.resync.unref();
    this.trigger('start');
  }

  /** Becoming leader: decided releases still in Redis count as released, then work them off. */
  async startLeading(): Promise<void> {
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
    await this.opts.releaser?.stop();
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
        this.log.warn({ err: (e as Error).message }, this.queues ? 'cannot reload queue definitions; releasing by the last known quotas' : 'cannot load queue definitions yet; jobs wait until Postgres answers');
      } finally {
        this.loadingQueues = null;
      }
    })();
    return this.loadingQueues;
  }

  private onCacheChange(c: CacheChange): void {
    if (c.kind === 'pod') {
      const after = c.after;
      // A release shows up in the watch: it is no longer "being released".
      if (this.releasing.has(c.uid) && (!after || !after.gates.includes(GATE_QUEUE))) this.releasing.delete(c.uid);
      const b = c.before;
      // Only what can change a decision: gates, binding, end of life, arrival, deletion.
      if (b && after && b.nodeName === after.nodeName && b.terminal === after.terminal && b.gates.length === after.gates.length && b.labels === after.labels) return;
    }
    this.trigger(c.kind);
  }

  /** Asks for an evaluation soon; `why` only for logs. */
  trigger(_why: string): void {
    if (this.stopped) return;
    this.pendingSinceMs ??= this.now();
    if (this.timer) return;
    // Debounced, and never more than half the time spent evaluating.
    const wait = Math.max(this.opts.debounceMs, this.lastDurationMs - (this.now() - this.lastEvalMs));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.evaluateNow();
    }, wait);
    this.timer.unref();
  }

  /** One evaluation, and (as leader) its releases. Returns what it decided. */
  evaluateNow(): Evaluation | null {
    const eventAt = this.pendingSinceMs ?? this.now();
    this.pendingSinceMs = null;
    if (!this.queues) return null;
    // A cache that has not listed every pod yet would make room look free that is not.
    if (!this.cache.synced) return null;
    const start = performance.now();
    const nowMs = this.now();
    for (const [uid, since] of this.releasing) if (nowMs - since > STALE_RELEASE_MS) this.releasing.delete(uid);
    const state = buildState(this.cache, this.opts.source ? this.queues : 'unlimited', new Set(this.releasing.keys()));
    const units = state.units;
    const weights = new Map([...this.queues.values()].map((q) => [q.name, q.weight]));
    const ev = evaluate({ units, ledger: state.ledger, capacity: state.capacity, weights, nowMs, backfillGuardMs: this.opts.backfillGuardSeconds * 1000 });
    const leader = this.opts.leadership.isLeader() && this.opts.releaser !== null;
    if (leader) {
      // Counted as released from this moment, so an evaluation while Redis takes the order
      // cannot hand the same quota and GPUs to another job; undone if Redis refuses.
      for (const u of ev.releases) for (const p of u.pods) this.releasing.set(p.uid, nowMs);
      for (const u of ev.releases) void this.release(u, eventAt);
    }
    const states = this.recordJobs(state.jobs, ev, leader, nowMs);
    this.snapshot = { evaluatedAtMs: nowMs, waiting: ev.waiting, jobs: state.jobs, ledger: state.ledger, capacity: state.capacity, states, queues: this.queues };
    this.exportMetrics(ev);
    if (leader) this.waitEvents(ev, nowMs);
    const took = performance.now() - start;
    this.lastDurationMs = took;
    this.lastEvalMs = this.now();
    this.metrics.queueEvaluation.observe(took / 1000);
    if (ev.releases.length > 0) {
      this.log.info({ released: ev.releases.length, waiting: units.length - ev.releases.length, ms: Math.round(took) }, leader ? 'releasing jobs' : 'jobs would be released (not leader)');
    }
    return ev;
  }

  private async release(u: Unit, eventAt: number): Promise<void> {
    try {
      const ok = await this.opts.releaser!.enqueue(u, eventAt);
      if (!ok) {
        for (const p of u.pods) this.releasing.delete(p.uid); // decided again at the next evaluation
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

  private recordJobs(jobs: ReadonlyMap<string, JobView>, ev: Evaluation, leader: boolean, nowMs: number): Map<string, JobState> {
    const waitingOf = new Map<string, Waiting>();
    for (const list of ev.waiting.values()) for (const w of list) if (!waitingOf.has(`${w.unit.namespace}/${w.unit.job}`)) waitingOf.set(`${w.unit.namespace}/${w.unit.job}`, w);
    const released = new Set(ev.releases.map((u) => `${u.namespace}/${u.job}`));
    const states = new Map<string, JobState>();
    const seen = new Set<string>();
    for (const j of jobs.values()) {
      seen.add(j.key);
      const live = j.pods.filter((p) => !p.terminal);
      const w = waitingOf.get(j.key);
      const state: JobState =
        live.length === 0 ? 'finished' : live.some((p) => p.node) ? 'running' : live.some((p) => p.gated) && !released.has(j.key) ? 'queued' : 'released';
      states.set(j.key, state);
      const prev = this.lastStates.get(j.key);
      const gpus = j.gpus.reduce((a, g) => a + g.count, 0);
      const rec: JobRecord = {
        namespace: j.namespace,
        name: j.job,
        queue: j.queue,
        qos: j.qos,
        user: j.user,
        resource: j.gpus[0]?.resource ?? '',
        model: j.models.join(','),
        gangSize: j.gangSize,
        gpusPerPod: live.length > 0 ? Math.round(gpus / live.length) : prev?.gpusPerPod ?? 0,
        gpus: live.length > 0 ? gpus : prev?.gpus ?? 0,
        state,
        reason: state === 'queued' ? (w?.reason ?? '') : '',
        waitingFor: state === 'queued' ? (w?.waitingFor ?? '') : '',
        priority: j.priority,
        podsSeen: j.pods.length,
        submittedAt: new Date(Number.isFinite(j.submittedMs) ? j.submittedMs : nowMs),
        releasedAt: state === 'queued' ? null : prev?.releasedAt ?? new Date(nowMs),
        finishedAt: state === 'finished' ? prev?.finishedAt ?? new Date(nowMs) : null,
      };
      this.lastStates.set(j.key, rec);
      if (leader) this.opts.records?.observe(rec);
    }
    for (const [key, prev] of this.lastStates) {
      if (seen.has(key)) continue;
      this.lastStates.delete(key);
      // Every pod is gone without the job finishing first: deleted.
      if (prev.state !== 'finished' && leader) this.opts.records?.observe({ ...prev, state: 'deleted', reason: '', waitingFor: '', finishedAt: new Date(nowMs) });
      this.opts.records?.forget(prev.namespace, prev.name);
    }
    return states;
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
        this.opts.events.waiting(w.unit, `waiting in queue ${queue}, position ${w.position} of ${list.length}: ${w.reason}`);
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
  }
}
