// Runs one list+watch informer (@kubernetes/client-node) and restarts it with exponential
// backoff when it fails: a failed start (apiserver unreachable, list refused) or a running
// watch that breaks. Used by informers.ts (nodes, pods) and namespaces.ts.
//
// client-node's informer reports both kinds of failure through its 'error' callbacks (a
// failed list emits 'error' and start() still resolves; a failed watch request makes
// start() reject). One 'error' listener is registered for the informer's lifetime: while
// a start is in progress it records the failure, afterwards it schedules a restart.
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

/** The part of client-node's Informer used here. */
export interface RestartableInformer {
  on(verb: 'error', cb: (err?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface WatchWithBackoffOptions {
  /** Label of sluice_informer_errors_total and of the log lines: node, pod, namespace. */
  kind: string;
  /** Plural for the log line: "cannot list/watch <what> from the apiserver". */
  what: string;
  informer: RestartableInformer;
  log: Logger;
  metrics: Metrics;
  /** Called after every completed list (first start and restarts). */
  onSynced: () => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called with the delay of every scheduled restart (tests). */
  onRetry?: (delayMs: number) => void;
}

export class WatchWithBackoff {
  /** The informer has completed a list at least once. */
  synced = false;
  private readonly min: number;
  private readonly max: number;
  private backoffMs: number;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Set while start() runs: failures land here instead of scheduling a restart. */
  private starting: { failed: unknown } | null = null;

  constructor(private readonly o: WatchWithBackoffOptions) {
    this.min = o.minBackoffMs ?? MIN_BACKOFF_MS;
    this.max = o.maxBackoffMs ?? MAX_BACKOFF_MS;
    this.backoffMs = this.min;
    o.informer.on('error', (err?: unknown) => {
      const e = err ?? new Error('watch ended');
      if (this.starting) this.starting.failed ??= e;
      else this.retry(e);
    });
  }

  /** Starts the informer; returns at once. */
  start(): void {
    void this.run();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    const attempt: { failed: unknown } = { failed: null };
    this.starting = attempt;
    try {
      await this.o.informer.start();
    } catch (e) {
      attempt.failed ??= e ?? new Error('watch failed');
    } finally {
      this.starting = null;
    }
    if (attempt.failed !== null) {
      this.retry(attempt.failed);
      return;
    }
    if (this.stopped) return;
    this.synced = true;
    this.backoffMs = this.min;
    this.o.log.info({ kind: this.o.kind }, `${this.o.kind} informer synced`);
    this.o.onSynced();
  }

  private retry(err: unknown): void {
    if (this.stopped || this.timer) return;
    this.o.metrics.informerErrors.inc({ kind: this.o.kind });
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.max, this.backoffMs * 2);
    this.o.log.warn(
      { kind: this.o.kind, err: describe(err), retryInMs: delay },
      `cannot list/watch ${this.o.what} from the apiserver; retrying in ${Math.round(delay / 1000)}s`,
    );
    this.o.onRetry?.(delay);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.o.informer.stop().catch(() => undefined);
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null) {
    const o = err as { message?: unknown; code?: unknown; statusCode?: unknown };
    return String(o.message ?? o.code ?? o.statusCode ?? JSON.stringify(err));
  }
  return String(err);
}
