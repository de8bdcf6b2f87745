// Keeps the ClusterCache in step with the apiserver: list+watch of nodes and pods
// (list-watch.ts, objects projected by slim.ts before anything keeps them). A list+watch
// that fails (apiserver unreachable, watch broken) is restarted with exponential backoff;
// the cache counts as synced once both have completed a list. Restarts: watch-with-backoff.ts.
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiTransport } from './api-transport.js';
import { ListWatch } from './list-watch.js';
import { slimNode, slimPod } from './slim.js';
import type { ClusterCache } from './cache.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WatchWithBackoff } from './watch-with-backoff.js';

export class ClusterWatcher {
  private readonly watched: WatchWithBackoff[];
  private readonly api: ApiTransport;

  constructor(
    kc: KubeConfig,
    private readonly cache: ClusterCache,
    log: Logger,
    private readonly metrics: Metrics,
  ) {
    // Two watches held open plus the list pages: its own connections, apart from the binds'.
    this.api = new ApiTransport(kc, { maxSockets: 4 });
    const nodes = listWatch(this.api, '/api/v1/nodes', slimNode, (n) => n.metadata?.name ?? '');
    const pods = listWatch(this.api, '/api/v1/pods', slimPod, (p) => p.metadata?.uid ?? '');

    nodes.on('add', (n) => this.applied('node', 'add', () => cache.upsertNode(n)));
    nodes.on('update', (n) => this.applied('node', 'update', () => cache.upsertNode(n)));
    nodes.on('delete', (name) => this.applied('node', 'delete', () => cache.deleteNode(name)));
    pods.on('add', (p) => this.applied('pod', 'add', () => cache.upsertPod(p)));
    pods.on('update', (p) => this.applied('pod', 'update', () => cache.upsertPod(p)));
    pods.on('delete', (uid) => this.applied('pod', 'delete', () => cache.deletePod(uid)));

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
    this.api.close();
  }
}

function listWatch<T>(api: ApiTransport, path: string, project: (raw: unknown) => T, keyOf: (o: T) => string): ListWatch<T> {
  return new ListWatch(api, { path, project, keyOf });
}
