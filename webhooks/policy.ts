// What the webhooks decide with, besides the request: the platform policy (from the
// `webhooks` config section, parsed once at start) and the facts of the cluster they
// read (namespace labels, GPU products, node sizes). Both are plain data or small
// read-only interfaces, so mutate.ts and validate.ts stay pure.
import type { QosClass } from './labels.js';
import type { ShareNames } from '../cluster/pod-request.js';
import type { SluiceConfig } from '../config/schema.js';

export interface Toleration {
  key: string;
  operator: 'Exists' | 'Equal';
  value?: string;
  effect: string;
}

export interface PriorityClassRef {
  name: string;
  /** The value and preemptionPolicy to write when the cluster's class is not known (not
   * listed yet, or no apiserver and no classes in the snapshot); the cluster's own win. */
  value: number;
  preemptionPolicy: 'PreemptLowerPriority' | 'Never';
}

export interface WebhookPolicy {
  /** Managed GPU resources; the first is the one the sluice.io/gpus shorthand asks. */
  gpuResources: readonly string[];
  /** Added to GPU pods unless one of their tolerations already tolerates it; null = none. */
  gpuToleration: Toleration | null;
  /** Put the sluice.io/queue scheduling gate on GPU pods (the queue manager removes it). */
  queueing: boolean;
  /** The only user allowed to remove the gate or change queue/qos/user labels. */
  serviceAccount: string;
  /** sluice.io/job-type -> node labels the pod must land on (required node affinity). */
  jobTypes: ReadonlyMap<string, ReadonlyArray<readonly [string, string]>>;
  priorityClasses: Readonly<Record<QosClass, PriorityClassRef>>;
  /** What validation does when the queue cannot be read (Postgres down, nothing cached). */
  onStoreDown: 'allow' | 'deny';
  /** GPU share resource names (config sharing); null when sharing is off. */
  sharing: ShareNames | null;
}

/** The `webhooks` section of the configuration (config/schema.ts). */
export type WebhooksConfig = SluiceConfig['webhooks'];

export class PolicyError extends Error {
  override name = 'PolicyError';
}

const TAINT = /^([A-Za-z0-9][-A-Za-z0-9_./]*)(?:=([-A-Za-z0-9_.]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/;

/** "key[=value]:Effect" (kubectl taint syntax) -> the toleration for it; '' -> null. */
export function parseTaint(s: string): Toleration | null {
  if (s === '') return null;
  const m = TAINT.exec(s);
  if (!m) throw new PolicyError(`webhooks.gpuTaint "${s}" is not a taint; write it as key[=value]:Effect, e.g. nvidia.com/gpu:NoSchedule`);
  return m[2] !== undefined ? { key: m[1]!, operator: 'Equal', value: m[2], effect: m[3]! } : { key: m[1]!, operator: 'Exists', effect: m[3]! };
}

export function policyFromConfig(c: WebhooksConfig, gpuResources: readonly string[], sharing: ShareNames | null = null): WebhookPolicy {
  const jobTypes = new Map<string, ReadonlyArray<readonly [string, string]>>();
  for (const [type, labels] of Object.entries(c.jobTypes)) {
    // Sorted so the affinity term (and so the patch) is the same on every call.
    jobTypes.set(
      type,
      Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  }
  return {
    gpuResources,
    gpuToleration: parseTaint(c.gpuTaint),
    queueing: c.queueing,
    serviceAccount: c.serviceAccount,
    jobTypes,
    priorityClasses: {
      guaranteed: { name: c.guaranteedPriorityClass, value: c.guaranteedPriority, preemptionPolicy: c.guaranteedPreemptionPolicy },
      'best-effort': { name: c.bestEffortPriorityClass, value: c.bestEffortPriority, preemptionPolicy: c.bestEffortPreemptionPolicy },
    },
    onStoreDown: c.onStoreDown,
    sharing,
  };
}

/** The cluster as the webhooks see it. */
export interface ClusterFacts {
  /** Labels of a namespace; undefined when the namespace is not known (yet). */
  namespaceLabels(namespace: string): Readonly<Record<string, string>> | undefined;
  /**
   * For a namespace namespaceLabels does not know: read it from the apiserver (cached,
   * short timeout); undefined when it does not exist or cannot be read. Absent without an
   * apiserver.
   */
  lookupNamespace?(namespace: string): Promise<Readonly<Record<string, string>> | undefined>;
  /** Distinct GPU products of nodes that have `resource`, sorted. */
  products(resource: string): readonly string[];
  /**
   * Most GPUs of `resource` one node has among nodes whose product is accepted by
   * `models` (empty = any); 0 when none matches; null when no node has the resource at
   * all (cache empty or not synced: nothing can be concluded).
   */
  largestNode(resource: string, models: readonly string[]): number | null;
  /**
   * The PriorityClass as the cluster defines it; null when the cluster has no such class;
   * undefined when it is not known (not listed yet, or no source): use the configured values.
   */
  priorityClass?(name: string): { value: number; preemptionPolicy: 'PreemptLowerPriority' | 'Never' } | null | undefined;
  /** The largest GPU HAMi's device plugin registered (memory first, then cores), or null
   * when no node has shared GPUs. */
  largestSharedGpu?(): { node: string; index: number; memMiB: number; cores: number } | null;
  /** Memory sizes (MiB) of the shared GPUs registered, ascending: what prices a share asked
   * in MiB as a fraction of a GPU (placement/shares.ts pricingMemMiB). */
  sharedGpuSizes?(): readonly number[];
}
