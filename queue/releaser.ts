// Carrying out a release: removing sluice's scheduling gate from each pod of a unit.
//
// Releases go through bull on Redis so that they are durable (a decided release survives
// a crash of sluice), retried with backoff (apiserver conflicts, outages), rate-limited
// (to protect the apiserver when thousands of pods go at once) and idempotent when
// replayed: the bull job id is the pod's uid plus the gate, and the patch itself is a
// JSON patch that tests the pod's uid and the gate's position before removing it, so a
// replay against a pod whose gate is already gone, or a new pod of the same name, changes
// nothing. A gang's pods are enqueued in one Redis MULTI: all or none.
//
// Only the leader processes the jobs (start()/stop() follow the Lease); a follower's
// releaser is never started.
import Bull from 'bull';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { GATE_QUEUE } from '../webhooks/labels.js';
import type { Unit } from './units.js';

export interface ReleaseOrder {
  namespace: string;
  name: string;
  uid: string;
  /** Where the gate was when the release was decided (the patch tests it, then looks again if it moved). */
  gateIndex: number;
  unit: string;
  queue: string;
  /** When the cluster or quota event that let the unit go happened (ms). */
  eventAtMs: number;
}

export type GateOutcome = 'removed' | 'already_gone' | 'pod_gone';

/** The apiserver side of a release. */
export interface GatePatcher {
  removeGate(o: ReleaseOrder): Promise<GateOutcome>;
}

export const releaseJobId = (uid: string): string => `${uid}+${GATE_QUEUE.replace('/', '~')}`;

interface ApiError {
  code?: number | string;
  body?: unknown;
}

const statusOf = (e: unknown): number | undefined => {
  const c = (e as ApiError).code;
  return typeof c === 'number' ? c : undefined;
};

export class KubeGatePatcher implements GatePatcher {
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async removeGate(o: ReleaseOrder): Promise<GateOutcome> {
    let index = o.gateIndex;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.core.patchNamespacedPod({
          name: o.name,
          namespace: o.namespace,
          body: [
            { op: 'test', path: '/metadata/uid', value: o.uid },
            { op: 'test', path: `/spec/schedulingGates/${index}/name`, value: GATE_QUEUE },
            { op: 'remove', path: `/spec/schedulingGates/${index}` },
          ],
        });
        return 'removed';
      } catch (e) {
        const status = statusOf(e);
        if (status === 404) return 'pod_gone';
        if (status !== 422) throw e;
        // The test failed: the gate moved, is gone, or this is another pod of that name.
        let pod;
        try {
          pod = await this.core.readNamespacedPod({ name: o.name, namespace: o.namespace });
        } catch (re) {
          if (statusOf(re) === 404) return 'pod_gone';
          throw re;
        }
        if (pod.metadata?.uid !== o.uid) return 'pod_gone';
        index = (pod.spec?.schedulingGates ?? []).findIndex((g) => g.name === GATE_QUEUE);
        if (index < 0) return 'already_gone';
      }
    }
    throw new Error(`the gate of pod ${o.namespace}/${o.name} kept moving; retrying`);
  }
}

export interface ReleaserOptions {
  redisUrl: string;
  /** Redis key prefix (one per installation; tests use their own). */
  prefix: string;
  patcher: GatePatcher;
  /** Most gate removals per second. */
  ratePerSecond: number;
  log: Logger;
  metrics: Metrics;
  /** Called after each pod's gate is gone (removed now or already). */
  onReleased?: (o: ReleaseOrder, outcome: GateOutcome) => void;
  /** How long an enqueue may wait for Redis before the release counts as not decided. */
  enqueueTimeoutMs?: number;
}

/** How the manager hands decided releases over. */
export interface ReleaseSink {
  /** Resolves false when the release could not be handed over (it is decided again later). */
  enqueue(unit: Unit, eventAtMs: number): Promise<boolean>;
  /** Pods whose release is decided but not yet carried out. */
  pendingUids(): Promise<Set<string>>;
  start(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Snapshot mode (no apiserver, no Redis): the gate is removed from the in-memory copy at
 * once, as the watch would show it.
 */
export class InMemoryReleaser implements ReleaseSink {
  constructor(
    private readonly ungate: (uid: string) => boolean,
    private readonly onReleased?: (o: ReleaseOrder, outcome: GateOutcome) => void,
  ) {}

  async enqueue(unit: Unit, eventAtMs: number): Promise<boolean> {
    for (const p of unit.pods) {
      const outcome: GateOutcome = this.ungate(p.uid) ? 'removed' : 'already_gone';
      this.onReleased?.({ namespace: unit.namespace, name: p.name, uid: p.uid, gateIndex: p.gateIndex, unit: unit.key, queue: unit.queue, eventAtMs }, outcome);
    }
    return true;
  }

  async pendingUids(): Promise<Set<string>> {
    return new Set();
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Longest wait between two reconnect attempts to Redis, and before the worker polls again. */
const REDIS_RECONNECT_MAX_MS = 1000;

export class BullReleaser implements ReleaseSink {
  private readonly queue: Bull.Queue<ReleaseOrder>;
  private processing = false;
  private registered = false;
  private redisDown = false;
  private closing = false;
  private readonly bucket: TokenBucket;

  constructor(private readonly opts: ReleaserOptions) {
    // Rate-limited here rather than with bull's limiter: that one parks jobs over the limit
    // as delayed jobs whose promotion lagged by seconds in tests; a token bucket in the
    // worker paces the patches exactly.
    this.bucket = new TokenBucket(Math.max(1, opts.ratePerSecond));
    this.queue = new Bull<ReleaseOrder>('sluice-release', opts.redisUrl, {
      prefix: opts.prefix,
      // Bull's default reconnect backoff is e^attempt ms, up to 20 s: after an outage of a few
      // seconds the next attempt was up to 20 s away (issue 22: releases resumed 14.5 s after
      // Redis came back). Retry at most every second instead: one cheap TCP connect.
      redis: { retryStrategy: (attempt: number) => Math.min(100 * attempt, REDIS_RECONNECT_MAX_MS) },
      // A leader that dies mid-release leaves its jobs active: they count as stalled and go
      // back to the queue within seconds (bull's default is 30 s), as often as it takes.
      // retryProcessDelay: how long the worker waits after a Redis error before it polls again
      // (bull's default 5 s would add to the reconnect).
      settings: { lockDuration: 5000, stalledInterval: 2500, maxStalledCount: 100, retryProcessDelay: REDIS_RECONNECT_MAX_MS },
      defaultJobOptions: {
        attempts: 20,
        backoff: { type: 'exponential', delay: 200 },
        removeOnComplete: true,
        removeOnFail: 1000,
      },
    });
    handleWorkerNaming(this.queue, (err) => opts.log.debug({ err }, 'naming the release worker connection failed (harmless)'));
    this.queue.on('error', (e: unknown) => {
      if (this.closing) return; // bull reports the connections it is closing
      const message = errorMessage(e);
      opts.metrics.redisUp.set(0);
      if (!this.redisDown) opts.log.warn({ err: message }, `Redis error in the release queue (${message}); releases wait and resume when Redis is back`);
      this.redisDown = true;
    });
    this.queue.on('failed', (job, err) => {
      const o = job.data;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1);
      opts.metrics.releaseActions.inc({ result: final ? 'failed' : 'retried' });
      opts.log.warn(
        { pod: `${o.namespace}/${o.name}`, attempt: job.attemptsMade, err: err.message },
        final ? 'gave up removing the gate' : 'removing the gate failed; retrying with backoff',
      );
    });
  }

  /** Enqueues the unit's pods in one MULTI. Resolves false when Redis did not take them in time. */
  async enqueue(unit: Unit, eventAtMs: number): Promise<boolean> {
    const orders = unit.pods.map((p) => ({
      data: { namespace: unit.namespace, name: p.name, uid: p.uid, gateIndex: p.gateIndex, unit: unit.key, queue: unit.queue, eventAtMs },
      opts: { jobId: releaseJobId(p.uid) },
    }));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.opts.enqueueTimeoutMs ?? 5000);
      timer.unref();
    });
    try {
      const ok = await Promise.race([this.queue.addBulk(orders).then(() => true), timeout]);
      if (ok) this.opts.metrics.redisUp.set(1);
      else this.opts.metrics.redisUp.set(0);
      if (ok && this.redisDown) {
        this.redisDown = false;
        this.opts.log.info('Redis is back; releases continue');
      }
      return ok;
    } catch (e) {
      this.opts.log.warn({ unit: unit.key, err: (e as Error).message }, 'could not enqueue a release; the job stays waiting and is tried again');
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** UIDs of pods whose release is decided but not yet carried out (restart: they count as released). */
  async pendingUids(): Promise<Set<string>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('Redis did not answer within 5 s')), this.opts.enqueueTimeoutMs ?? 5000);
      timer.unref();
    });
    try {
      const jobs = await Promise.race([this.queue.getJobs(['waiting', 'active', 'delayed', 'paused']), timeout]);
      return new Set(jobs.filter(Boolean).map((j) => j.data.uid));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts working off the queue (the leader). */
  async start(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    if (!this.registered) {
      this.registered = true;
      void this.queue
        .process(4, async (job) => {
          await this.bucket.take();
          const outcome = await this.opts.patcher.removeGate(job.data);
          this.opts.metrics.releaseActions.inc({ result: outcome });
          this.opts.onReleased?.(job.data, outcome);
          return outcome;
        })
        .catch((e: unknown) => {
          // bull rejects with undefined when the worker connection ends before it was ready.
          if (!this.closing) this.opts.log.warn({ err: errorMessage(e) }, 'release worker stopped');
        });
    } else {
      await this.queue.resume(true);
    }
  }

  /**
   * Stops taking new jobs (lost the Lease); the ones running finish. Not bull's forced
   * variant (doNotWaitActive): that reconnects the blocking Redis connection, and closing
   * the queue during that reconnection left a rejected promise nobody handled. A job a
   * blocked wait still hands over afterwards was decided by the new leader: carrying it
   * out is harmless (the patch is idempotent).
   */
  async stop(): Promise<void> {
    if (!this.processing) return;
    this.processing = false;
    await this.queue.pause(true).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.processing = false;
    // bull opens the worker's connections lazily, part-way through process(), and its close()
    // does not wait for that start-up. A close before that point misses them, and the ones
    // opened afterwards stay up (seen: a Redis socket still 'ready' after close, keeping Node
    // alive). Opening them now puts them among the connections close() ends.
    if (this.registered) {
      const lazy = this.queue as Bull.Queue & { client?: unknown; eclient?: unknown; bclient?: unknown };
      void [lazy.client, lazy.eclient, lazy.bclient];
    }
    await this.queue.close().catch(() => undefined);
    // A connection still connecting when bull disconnected it can finish connecting
    // afterwards (ioredis ignores a disconnect before its socket exists): end it then.
    for (const c of this.queue.clients) {
      if (c.status === 'end') continue;
      c.once('ready', () => c.disconnect());
      c.disconnect();
    }
  }
}

/**
 * bull's process() sends CLIENT SETNAME on the worker's blocking connection and never
 * awaits it (`setWorkerName`, bull 4.16). A close before Redis answers rejects that command
 * with "Connection is closed." and nobody listening: an unhandledRejection, which stops
 * Node. Seen when a replica became leader and shut down within the same second. The name
 * only labels the connection in CLIENT LIST, so a failure is logged and otherwise ignored.
 */
function handleWorkerNaming(queue: Bull.Queue, onError: (message: string) => void): void {
  const q = queue as Bull.Queue & { setWorkerName?: () => Promise<unknown> };
  const setWorkerName = q.setWorkerName;
  if (typeof setWorkerName !== 'function') return;
  q.setWorkerName = () => setWorkerName.call(queue).catch((e: unknown) => onError(errorMessage(e)));
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : e === undefined ? 'connection ended before it was ready' : String(e);
}

/** `perSecond` tokens a second, at most `perSecond` at once; take() waits for one. */
class TokenBucket {
  private tokens: number;
  private at = Date.now();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  async take(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.at) / 1000) * this.perSecond);
      this.at = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.perSecond) * 1000)));
    }
  }
}
