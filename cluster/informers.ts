// Keeps the ClusterCache in step with the apiserver: list+watch informers on nodes and
// pods (@kubernetes/client-node). An informer that fails (apiserver unreachable, watch
// broken) is restarted with exponential backoff; the cache counts as synced once both
// informers have completed a list.
import { CoreV1Api, makeInformer, type KubeConfig, type V1Node, type V1Pod, type Informer } from '@kubernetes/client-node';
import type { ClusterCache } from './cache.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

interface Watched {
  kind: 'node' | 'pod';
  informer: Informer<V1Node> | Informer<V1Pod>;
  synced: boolean;
  backoffMs: number;
  timer: NodeJS.Timeout | null;
}

export class ClusterWatcher {
  private readonly watched: Watched[];
  private stopped = false;

  constructor(
    kc: KubeConfig,
    private readonly cache: ClusterCache,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    const nodes = makeInformer<V1Node>(kc, '/api/v1/nodes', () => core.listNode());
    const pods = makeInformer<V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());

    nodes.on('add', (n) => this.applied('node', 'add', () => cache.upsertNode(n)));
    nodes.on('update', (n) => this.applied('node', 'update', () => cache.upsertNode(n)));
    nodes.on('delete', (n) => this.applied('node', 'delete', () => cache.deleteNode(n.metadata?.name ?? '')));
    pods.on('add', (p) => this.applied('pod', 'add', () => cache.upsertPod(p)));
    pods.on('update', (p) => this.applied('pod', 'update', () => cache.upsertPod(p)));
    pods.on('delete', (p) => this.applied('pod', 'delete', () => cache.deletePod(p.metadata?.uid ?? '')));

    this.watched = [
      { kind: 'node', informer: nodes, synced: false, backoffMs: MIN_BACKOFF_MS, timer: null },
      { kind: 'pod', informer: pods, synced: false, backoffMs: MIN_BACKOFF_MS, timer: null },
    ];
  }

  private applied(kind: 'node' | 'pod', verb: string, fn: () => void): void {
    this.metrics.cacheEvents.inc({ kind, verb });
    fn();
  }

  /** Starts both informers; returns at once. Readiness: synced(). */
  start(): void {
    for (const w of this.watched) void this.run(w);
  }

  synced(): boolean {
    return this.watched.every((w) => w.synced);
  }

  private async run(w: Watched): Promise<void> {
    if (this.stopped) return;
    let failed: unknown = null;
    const onError = (err: unknown): void => {
      failed = err ?? new Error('watch ended');
    };
    w.informer.on('error', onError);
    try {
      await w.informer.start();
    } catch (e) {
      failed = e;
    } finally {
      w.informer.off('error', onError);
    }
    if (failed === null) {
      w.synced = true;
      w.backoffMs = MIN_BACKOFF_MS;
      this.updateSynced();
      this.log.info({ kind: w.kind }, `${w.kind} informer synced`);
      // Later failures of the running watch come through the error callback.
      w.informer.on('error', (err: unknown) => this.retry(w, err));
      return;
    }
    this.retry(w, failed);
  }

  private retry(w: Watched, err: unknown): void {
    if (this.stopped || w.timer) return;
    this.metrics.informerErrors.inc({ kind: w.kind });
    const delay = w.backoffMs;
    w.backoffMs = Math.min(MAX_BACKOFF_MS, w.backoffMs * 2);
    this.log.warn(
      { kind: w.kind, err: describe(err), retryInMs: delay },
      `cannot list/watch ${w.kind}s from the apiserver; retrying in ${Math.round(delay / 1000)}s`,
    );
    w.timer = setTimeout(() => {
      w.timer = null;
      void this.run(w);
    }, delay);
    w.timer.unref();
  }

  private updateSynced(): void {
    const s = this.synced();
    if (s) this.cache.synced = true;
    this.metrics.cacheSynced.set(s ? 1 : 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.watched) {
      if (w.timer) clearTimeout(w.timer);
      await w.informer.stop().catch(() => undefined);
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null) {
    const o = err as { message?: unknown; code?: unknown; statusCode?: unknown };
    return String(o.message ?? o.code ?? o.statusCode ?? JSON.stringify(err));
  }
  return String(err);
}
