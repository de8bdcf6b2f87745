// Namespace labels for the admission webhooks (sluice.io/managed, sluice.io/default-queue):
// a small map fed by a list+watch informer on namespaces (same pattern and backoff as
// informers.ts), or by the Namespaces of a snapshot file.
import { CoreV1Api, makeInformer, type Informer, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});
const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

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
  private readonly informer: Informer<V1Namespace>;
  private backoffMs = MIN_BACKOFF_MS;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    kc: KubeConfig,
    private readonly store: NamespaceStore,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    this.informer = makeInformer<V1Namespace>(kc, '/api/v1/namespaces', () => core.listNamespace());
    this.informer.on('add', (ns) => this.applied('add', () => store.upsert(ns)));
    this.informer.on('update', (ns) => this.applied('update', () => store.upsert(ns)));
    this.informer.on('delete', (ns) => this.applied('delete', () => store.delete(ns.metadata?.name ?? '')));
  }

  private applied(verb: string, fn: () => void): void {
    this.metrics.cacheEvents.inc({ kind: 'namespace', verb });
    fn();
  }

  start(): void {
    void this.run();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    let failed: unknown = null;
    const onError = (err: unknown): void => {
      failed = err ?? new Error('watch ended');
    };
    this.informer.on('error', onError);
    try {
      await this.informer.start();
    } catch (e) {
      failed = e;
    } finally {
      this.informer.off('error', onError);
    }
    if (failed === null) {
      this.store.synced = true;
      this.backoffMs = MIN_BACKOFF_MS;
      this.log.info({ kind: 'namespace' }, 'namespace informer synced');
      this.informer.on('error', (err: unknown) => this.retry(err));
      return;
    }
    this.retry(failed);
  }

  private retry(err: unknown): void {
    if (this.stopped || this.timer) return;
    this.metrics.informerErrors.inc({ kind: 'namespace' });
    const delay = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    const msg = err instanceof Error ? err.message : String((err as { message?: unknown })?.message ?? err);
    this.log.warn({ kind: 'namespace', err: msg, retryInMs: delay }, `cannot list/watch namespaces from the apiserver; retrying in ${Math.round(delay / 1000)}s`);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.informer.stop().catch(() => undefined);
  }
}
