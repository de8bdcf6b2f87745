// Leader election with a coordination.k8s.io/v1 Lease, the way client-go's leaderelection
// does it: the holder renews spec.renewTime every retry period; another replica takes
// the Lease over only after seeing it unrenewed for a whole lease duration on its own
// clock; every write carries the resourceVersion read, so two replicas racing for it
// cannot both win (the apiserver answers 409 to the second). A leader that cannot renew
// within the renew deadline steps down at once, before its Lease can expire, so two
// replicas never both act. On shutdown the leader gives the Lease up (empty holder) so a
// follower takes over within one retry period instead of a lease duration.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import { settledWithin } from './settled-within.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  now?: () => number;
}

export interface Leadership {
  isLeader(): boolean;
  /** Why this replica cannot take part in the election (the apiserver refuses the Lease:
   * namespace missing, RBAC), or null while the Lease can be read and written. */
  leaseProblem?(): string | null;
  /** Calls `fn(true)` on becoming leader and `fn(false)` on losing it (at once if leading now). */
  subscribe(fn: (leading: boolean) => void): void;
}

/** Always leader: a single sluice without an apiserver (snapshot mode). */
export const SOLE_LEADER: Leadership = {
  isLeader: () => true,
  subscribe: (fn) => fn(true),
};

/** Lease failures are logged at warn at most this often (the same failure repeats every retry period). */
export const LEASE_WARN_INTERVAL_MS = 60_000;

/** The apiserver's own reason for refusing a call (client-node ApiException: code + Status body). */
export function apiReason(e: unknown): string {
  const code = statusOf(e);
  let message = '';
  const body = (e as { body?: unknown }).body;
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown } | undefined;
    if (typeof parsed?.message === 'string') message = parsed.message;
  } catch {
    // not JSON: fall back to the error's own message
  }
  if (!message) message = (e as Error).message?.split('\n')[0] ?? String(e);
  return code ? `HTTP ${code}: ${message}` : message;
}

const statusOf = (e: unknown): number | undefined => {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
};

export class LeaderElector implements Leadership {
  private readonly api: CoordinationV1Api;
  private leading = false;
  private lastRenewMs = 0;
  private observed: { holder: string; renewTime: string; atMs: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The acquire-or-renew call in flight, if any (stop() waits for it). */
  private ticking: Promise<void> | null = null;
  private readonly now: () => number;
  private readonly listeners: Array<(leading: boolean) => void> = [];
  /** The last failure to read or write the Lease, until a call succeeds again. */
  private failure: string | null = null;
  private lastWarnMs = -Infinity;
  private readonly problemListeners: Array<(problem: boolean) => void> = [];

  constructor(
    kc: KubeConfig,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.now = opts.now ?? Date.now;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Calls fn(true) when Lease calls start failing, fn(false) when they work again (metrics). */
  onLeaseProblem(fn: (problem: boolean) => void): void {
    this.problemListeners.push(fn);
  }

  leaseProblem(): string | null {
    return this.failure === null
      ? null
      : `cannot take part in leader election: the Lease ${this.opts.namespace}/${this.opts.name} cannot be read or written (${this.failure}); check that the namespace exists and that sluice's RBAC allows leases get/create/update there`;
  }

  subscribe(fn: (leading: boolean) => void): void {
    this.listeners.push(fn);
    if (this.leading) fn(true);
  }

  start(): void {
    this.stopped = false;
    this.runTick();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.runTick(), this.opts.retryPeriodMs);
    this.timer.unref();
  }

  private runTick(): void {
    const t = this.tick().finally(() => {
      if (this.ticking === t) this.ticking = null;
    });
    this.ticking = t;
  }

  private async tick(): Promise<void> {
    try {
      const ok = await this.tryAcquireOrRenew();
      // stop() came while the call was out: it gives the Lease up; the answer changes nothing.
      if (this.stopped) return;
      if (this.failure !== null) {
        this.opts.log.info({ lease: `${this.opts.namespace}/${this.opts.name}`, was: this.failure }, 'the Lease is reachable again');
        this.failure = null;
        this.lastWarnMs = -Infinity;
        for (const fn of this.problemListeners) fn(false);
      }
      if (ok) {
        this.lastRenewMs = this.now();
        this.setLeading(true);
      } else if (this.leading) {
        this.setLeading(false, 'another replica holds the Lease');
      }
    } catch (e) {
      if (this.stopped) return;
      if (this.leading && this.now() - this.lastRenewMs > this.opts.renewDeadlineMs) {
        this.setLeading(false, `could not renew the Lease for ${this.opts.renewDeadlineMs} ms (${(e as Error).message})`);
      }
      this.leaseFailed(e);
    }
    // A leader that missed its deadline while the call hung steps down here too.
    if (this.leading && this.now() - this.lastRenewMs > this.opts.renewDeadlineMs) {
      this.setLeading(false, 'the Lease renewal took longer than the renew deadline');
    }
    this.schedule();
  }

  /** Records a failed Lease call; a warning with the apiserver's reason when the reason is new
   * or LEASE_WARN_INTERVAL_MS has passed (it repeats every retry period otherwise). */
  private leaseFailed(e: unknown): void {
    const reason = apiReason(e);
    const now = this.now();
    if (reason !== this.failure || now - this.lastWarnMs >= LEASE_WARN_INTERVAL_MS) {
      this.lastWarnMs = now;
      this.opts.log.warn(
        { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity, reason },
        `could not take or renew the leader Lease (${reason}): while no replica can, the extender refuses every pod and no queued job is released`,
      );
    }
    if (this.failure === null) for (const fn of this.problemListeners) fn(true);
    this.failure = reason;
  }

  private setLeading(leading: boolean, why?: string): void {
    if (leading === this.leading) return;
    this.leading = leading;
    const lease = `${this.opts.namespace}/${this.opts.name}`;
    if (leading) this.opts.log.info({ lease, identity: this.opts.identity }, 'became leader: serving the extender and running the queue manager');
    else this.opts.log.warn({ lease, identity: this.opts.identity, why }, `stopped leading (${why}): no extender decisions and no releases until leader again`);
    for (const fn of this.listeners) fn(leading);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    // MicroTime: serialised with the microsecond precision the apiserver's MicroTime expects.
    const nowTime = new V1MicroTime(this.now());
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
              acquireTime: nowTime,
              renewTime: nowTime,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (ce) {
        if (statusOf(ce) === 409) return false;
        throw ce;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = String(spec.renewTime ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, atMs: this.now() };
    }
    const durationMs = (spec.leaseDurationSeconds ?? Math.ceil(this.opts.leaseDurationMs / 1000)) * 1000;
    const mine = holder === identity;
    const expired = holder === '' || this.now() - this.observed.atMs > durationMs;
    if (!mine && !expired) return false;
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
        renewTime: nowTime,
        acquireTime: mine ? spec.acquireTime : nowTime,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body });
      return true;
    } catch (e) {
      if (statusOf(e) === 409) return false;
      throw e;
    }
  }

  /** Stops campaigning; a leader gives the Lease up so a follower takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // A renewal or acquisition still out may land after this point and leave the Lease with
    // this replica (seen: a replica re-became leader 15 ms after stopping, and its followers
    // waited the whole lease duration). Wait for it, bounded by the renew deadline, so that
    // giving the Lease up comes after it.
    const inFlight = this.ticking;
    const mayHold = this.leading || inFlight !== null;
    if (this.leading) this.setLeading(false, 'shutting down');
    if (!mayHold) return;
    if (inFlight) await settledWithin(inFlight, this.opts.renewDeadlineMs);
    try {
      const { namespace, name } = this.opts;
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
      });
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'could not give up the Lease on shutdown; a follower takes over when it expires');
    }
  }
}
