// Namespace labels for the admission webhooks (sluice.io/managed, sluice.io/default-queue):
// a small map fed by a list+watch informer on namespaces (restarted with backoff by
// watch-with-backoff.ts, like informers.ts), or by the Namespaces of a snapshot file.
import { CoreV1Api, makeInformer, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WatchWithBackoff } from './watch-with-backoff.js';

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** Reads one namespace from the apiserver; null when it does not exist. */
export type NamespaceReader = (name: string) => Promise<V1Namespace | null>;

export interface ReaderOptions {
  /** Give up on the apiserver after this long (the webhook's own timeout is 5 s). */
  timeoutMs?: number;
  /** How long a miss (not found, error, timeout) is remembered before reading again. */
  missTtlMs?: number;
}

export class NamespaceStore {
  private readonly labels = new Map<string, Readonly<Record<string, string>>>();
  synced = false;
  private reader: { read: NamespaceReader; log: Logger; metrics: Metrics; timeoutMs: number; missTtlMs: number } | null = null;
  private readonly misses = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<Readonly<Record<string, string>> | undefined>>();

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

  /** Lets lookup() read namespaces the informer has not delivered yet (NamespaceWatcher sets it). */
  useReader(read: NamespaceReader, log: Logger, metrics: Metrics, o: ReaderOptions = {}): void {
    this.reader = { read, log, metrics, timeoutMs: o.timeoutMs ?? 1000, missTtlMs: o.missTtlMs ?? 5000 };
  }

  /**
   * Labels of the namespace; when the informer has not delivered it (a namespace created
   * just before its first pod), read once from the apiserver and kept. Undefined when it
   * does not exist, the read fails or times out, or there is no apiserver (snapshot mode):
   * the namespace then counts as unmanaged.
   */
  async lookup(name: string): Promise<Readonly<Record<string, string>> | undefined> {
    const known = this.labels.get(name);
    if (known !== undefined || !this.reader || name === '') return known;
    const missAt = this.misses.get(name);
    if (missAt !== undefined && Date.now() - missAt < this.reader.missTtlMs) return undefined;
    let p = this.inFlight.get(name);
    if (!p) {
      p = this.readOnce(name, this.reader).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, p);
    }
    return p;
  }

  private async readOnce(name: string, r: NonNullable<NamespaceStore['reader']>): Promise<Readonly<Record<string, string>> | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${r.timeoutMs} ms`)), r.timeoutMs);
    });
    try {
      const ns = await Promise.race([r.read(name), timeout]);
      if (ns === null) {
        this.misses.set(name, Date.now());
        r.metrics.namespaceReads.inc({ result: 'not_found' });
        r.log.info({ namespace: name }, `namespace ${name} is unknown to the informer and not found in the apiserver; treated as unmanaged`);
        return undefined;
      }
      // The informer may have delivered it meanwhile: its copy is at least as new.
      if (!this.labels.has(name)) this.upsert(ns);
      const labels = this.labels.get(name);
      r.metrics.namespaceReads.inc({ result: 'found' });
      r.log.info({ namespace: name, managed: labels?.[MANAGED] === 'true' }, `namespace ${name} not yet seen by the informer: read from the apiserver`);
      return labels;
    } catch (e) {
      this.misses.set(name, Date.now());
      r.metrics.namespaceReads.inc({ result: 'error' });
      r.log.warn(
        { namespace: name, err: (e as Error)?.message ?? String(e) },
        `namespace ${name} is unknown to the informer and cannot be read from the apiserver (${(e as Error)?.message ?? String(e)}); treated as unmanaged`,
      );
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

const MANAGED = 'sluice.io/managed';

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
    // Pods may arrive for a namespace the watch has not delivered yet: read it on demand.
    store.useReader(
      async (name) => {
        try {
          return await core.readNamespace({ name });
        } catch (e) {
          if ((e as { code?: number })?.code === 404) return null;
          throw e;
        }
      },
      log,
      metrics,
    );
    informer.on('add', (ns) => this.applied('add', () => store.upsert(ns)));
    informer.on('update', (ns) => this.applied('update', () => store.upsert(ns)));
    informer.on('delete', (ns) => this.applied('delete', () => store.delete(ns.metadata?.name ?? '')));
    this.watch = new WatchWithBackoff({
      kind: 'namespace',
      what: 'namespaces',
      informer,
      log,
      metrics,
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
