// Namespace labels for the admission webhooks (sluice.io/managed, sluice.io/default-queue):
// a small map fed by a list+watch informer on namespaces (restarted with backoff by
// watch-with-backoff.ts, like informers.ts), or by the Namespaces of a snapshot file.
import { CoreV1Api, makeInformer, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WatchWithBackoff } from './watch-with-backoff.js';

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

export class NamespaceStore {
  private readonly labels = new Map<string, Readonly<Record<string, string>>>();
  synced = false;

  upsert(ns: V1Namespace): void {
    const name = ns.metadata?.name;
    if (name) this.labels.set(name, ns.metadata?.labels ?? EMPTY);
  }

  delete(name: string): void {
    this.labels.delete(name);
  }

  replaceAll(list: readonly V1Namespace[]): void {
    this.labels.clear();
    for (const ns of list) this.upsert(ns);
    this.synced = true;
  }

  /** Labels of the namespace; undefined when it is not known. */
  get(name: string): Readonly<Record<string, string>> | undefined {
    return this.labels.get(name);
  }

  get size(): number {
    return this.labels.size;
  }
}

export class NamespaceWatcher {
  private readonly watch: WatchWithBackoff;

  constructor(
    kc: KubeConfig,
    store: NamespaceStore,
    log: Logger,
    private readonly metrics: Metrics,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1Namespace>(kc, '/api/v1/namespaces', () => core.listNamespace());
    informer.on('add', (ns) => this.applied('add', () => store.upsert(ns)));
    informer.on('update', (ns) => this.applied('update', () => store.upsert(ns)));
    informer.on('delete', (ns) => this.applied('delete', () => store.delete(ns.metadata?.name ?? '')));
    this.watch = new WatchWithBackoff({
      kind: 'namespace', what: 'namespaces', informer, log, metrics,
      onSynced: () => {
        store.synced = true;
      },
    });
  }

  private applied(verb: string, fn: () => void): void {
    this.metrics.cacheEvents.inc({ kind: 'namespace', verb });
    fn();
  }

  start(): void {
    this.watch.start();
  }

  async stop(): Promise<void> {
    await this.watch.stop();
  }
}
