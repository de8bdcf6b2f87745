// Keeps the ClusterCache in step with the apiserver: list+watch informers on nodes and
// pods (@kubernetes/client-node). An informer that fails (apiserver unreachable, watch
// broken) is restarted with exponential backoff; the cache counts as synced once both
// informers have completed a list. Restarts: watch-with-backoff.ts.
import { CoreV1Api, makeInformer, type KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from './cache.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WatchWithBackoff } from './watch-with-backoff.js';

export class ClusterWatcher {
  private readonly watched: WatchWithBackoff[];

  constructor(
    kc: KubeConfig,
    private readonly cache: ClusterCache,
    log: Logger,
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

    const onSynced = (): void => this.updateSynced();
    this.watched = [
      new WatchWithBackoff({ kind: 'node', what: 'nodes', informer: nodes, log, metrics, onSynced }),
      new WatchWithBackoff({ kind: 'pod', what: 'pods', informer: pods, log, metrics, onSynced }),
    ];
  }

  private applied(kind: 'node' | 'pod', verb: string, fn: () => void): void {
    this.metrics.cacheEvents.inc({ kind, verb });
    fn();
  }

  /** Starts both informers; returns at once. Readiness: synced(). */
  start(): void {
    for (const w of this.watched) w.start();
  }

  synced(): boolean {
    return this.watched.every((w) => w.synced);
  }

  private updateSynced(): void {
    const s = this.synced();
    if (s) this.cache.synced = true;
    this.metrics.cacheSynced.set(s ? 1 : 0);
  }

  async stop(): Promise<void> {
    for (const w of this.watched) await w.stop();
  }
}
