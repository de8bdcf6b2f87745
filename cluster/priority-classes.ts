// The PriorityClasses sluice assigns (webhooks.guaranteedPriorityClass and
// bestEffortPriorityClass), as the cluster defines them: their real `value` and
// `preemptionPolicy`, which the mutating webhook must write on the pod (the apiserver's
// Priority plugin rejects a pod whose spec.priority differs from its class's value). Fed by
// a list+watch informer (restarted with backoff), or by the PriorityClasses of a snapshot
// file; only the configured names are kept.
import { makeInformer, SchedulingV1Api, type KubeConfig, type V1PriorityClass } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WatchWithBackoff } from './watch-with-backoff.js';

export interface PriorityClassFacts {
  value: number;
  preemptionPolicy: 'PreemptLowerPriority' | 'Never';
}

export class PriorityClassStore {
  private readonly classes = new Map<string, PriorityClassFacts>();
  /** True once the classes have been listed (informer or snapshot): a missing name is then really missing. */
  synced = false;

  constructor(private readonly names: ReadonlySet<string>) {}

  upsert(pc: V1PriorityClass): void {
    const name = pc.metadata?.name;
    if (!name || !this.names.has(name) || typeof pc.value !== 'number') return;
    this.classes.set(name, { value: pc.value, preemptionPolicy: pc.preemptionPolicy === 'Never' ? 'Never' : 'PreemptLowerPriority' });
  }

  delete(name: string): void {
    this.classes.delete(name);
  }

  replaceAll(list: readonly V1PriorityClass[]): void {
    this.classes.clear();
    for (const pc of list) this.upsert(pc);
    this.synced = true;
  }

  /** The class as the cluster has it; null when it does not exist; undefined when not known yet (not synced). */
  get(name: string): PriorityClassFacts | null | undefined {
    const c = this.classes.get(name);
    if (c) return c;
    return this.synced ? null : undefined;
  }
}

export class PriorityClassWatcher {
  private readonly watch: WatchWithBackoff;

  constructor(
    kc: KubeConfig,
    store: PriorityClassStore,
    log: Logger,
    private readonly metrics: Metrics,
  ) {
    const api = kc.makeApiClient(SchedulingV1Api);
    // All classes are listed (a cluster has a handful) and only the configured names kept.
    const informer = makeInformer<V1PriorityClass>(kc, '/apis/scheduling.k8s.io/v1/priorityclasses', () => api.listPriorityClass());
    informer.on('add', (pc) => this.applied('add', () => store.upsert(pc)));
    informer.on('update', (pc) => this.applied('update', () => store.upsert(pc)));
    informer.on('delete', (pc) => this.applied('delete', () => store.delete(pc.metadata?.name ?? '')));
    this.watch = new WatchWithBackoff({
      kind: 'priorityclass',
      what: 'priorityclasses',
      informer,
      log,
      metrics,
      onSynced: () => {
        store.synced = true;
      },
    });
  }

  private applied(verb: string, fn: () => void): void {
    this.metrics.cacheEvents.inc({ kind: 'priorityclass', verb });
    fn();
  }

  start(): void {
    this.watch.start();
  }

  async stop(): Promise<void> {
    await this.watch.stop();
  }
}
