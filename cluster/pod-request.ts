// What a pod asks of the managed GPU resources, the way kube-scheduler counts it:
// effective request = max(sum of app containers + restartable (sidecar) init
// containers, each ordinary init container plus the sidecars started before it).
// Requests fall back to limits (the apiserver copies limits of extended resources
// into requests, but a pod seen before defaulting may not have them yet). CPU and memory
// are counted the same way, plus the pod's overhead (podHostRequests).
import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { parseQuantity } from './quantity.js';

export interface ResourceAmount {
  resource: string;
  count: number;
}

export class PodRequestError extends Error {
  override name = 'PodRequestError';
}

function containerAmount(c: V1Container, resource: string): number {
  const raw = c.resources?.requests?.[resource] ?? c.resources?.limits?.[resource];
  if (raw === undefined) return 0;
  const n = parseQuantity(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new PodRequestError(`container ${c.name} asks "${String(raw)}" ${resource}; GPU counts must be whole numbers`);
  }
  return n;
}

/** kube-scheduler's effective request of one resource, given each container's amount. */
function effective(spec: V1PodSpec, amount: (c: V1Container) => number): number {
  let sum = 0;
  for (const c of spec.containers) sum += amount(c);
  let sidecars = 0;
  let initPeak = 0;
  for (const c of spec.initContainers ?? []) {
    const n = amount(c);
    if (c.restartPolicy === 'Always') {
      sidecars += n;
      initPeak = Math.max(initPeak, sidecars);
    } else {
      initPeak = Math.max(initPeak, sidecars + n);
    }
  }
  return Math.max(sum + sidecars, initPeak);
}

/** Managed resources the pod asks for, non-zero only, in the order of `resources`. */
export function podGpuRequests(pod: V1Pod, resources: readonly string[]): ResourceAmount[] {
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) throw new PodRequestError('pod has no spec.containers');
  const out: ResourceAmount[] = [];
  for (const resource of resources) {
    const count = effective(spec, (c) => containerAmount(c, resource));
    if (count > 0) out.push({ resource, count });
  }
  return out;
}

/** CPU (milli) and memory (MiB) a pod holds on its node. */
export interface HostRequests {
  cpuMilli: number;
  memMiB: number;
}

// CPU and memory requests only (no fallback to limits: the apiserver defaults requests
// from limits before kube-scheduler sees the pod). Unreadable amounts count 0: the
// apiserver validated them.
function requestOf(c: V1Container, resource: 'cpu' | 'memory'): number {
  const n = parseQuantity(c.resources?.requests?.[resource]);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** CPU and memory requested as kube-scheduler counts them (computePodResourceRequest):
 * max(app containers + sidecar init containers, the init-container peak) + pod overhead.
 * A pod without a spec asks nothing. */
export function podHostRequests(pod: V1Pod): HostRequests {
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) return { cpuMilli: 0, memMiB: 0 };
  const over = (r: 'cpu' | 'memory'): number => {
    const n = parseQuantity(spec.overhead?.[r]);
    return Number.isFinite(n) && n > 0 ? n : 0;
  };
  const cpu = effective(spec, (c) => requestOf(c, 'cpu')) + over('cpu');
  const mem = effective(spec, (c) => requestOf(c, 'memory')) + over('memory');
  return { cpuMilli: Math.round(cpu * 1000), memMiB: mem / 2 ** 20 };
}

/** The resource names of GPU shares (config `sharing`), as HAMi's device plugin names them. */
export interface ShareNames {
  /** The GPU count resource whose GPUs are shared, e.g. nvidia.com/gpu. */
  resource: string;
  /** Memory per GPU in MiB, e.g. nvidia.com/gpumem. */
  memory: string;
  /** Memory per GPU as a percentage, e.g. nvidia.com/gpumem-percentage. */
  memoryPercent: string;
  /** Compute per GPU in percent, e.g. nvidia.com/gpucores. */
  cores: string;
}

/** The share names of the `sharing` config section; null when sharing is off. */
export function shareNamesOf(c: {
  enabled: boolean;
  resource: string;
  memoryResource: string;
  memoryPercentResource: string;
  coresResource: string;
}): ShareNames | null {
  return c.enabled ? { resource: c.resource, memory: c.memoryResource, memoryPercent: c.memoryPercentResource, cores: c.coresResource } : null;
}

/** What one container asks of shared GPUs (placement/shares.ts ShareAsk). */
export interface ContainerShare {
  count: number;
  memMiB: number;
  memPercent: number;
  cores: number;
}

/**
 * Per container of the pod, init containers first (the order HAMi's device lists use),
 * what it asks of each shared GPU, or null for a container that asks no GPU. Like HAMi's
 * scheduler: limits first, then requests; no memory asked = 100 % of the GPU; no cores = 0.
 * Throws PodRequestError on an amount that is not a whole number in range.
 */
export function podShareAsks(pod: V1Pod, names: ShareNames): Array<ContainerShare | null> {
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) throw new PodRequestError('pod has no spec.containers');
  const amount = (c: V1Container, r: string, max: number): number | undefined => {
    const raw = c.resources?.limits?.[r] ?? c.resources?.requests?.[r];
    if (raw === undefined) return undefined;
    const n = parseQuantity(raw);
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new PodRequestError(`container ${c.name} asks "${String(raw)}" ${r}; it must be a whole number from 0 to ${max}`);
    }
    return n;
  };
  return [...(spec.initContainers ?? []), ...spec.containers].map((c) => {
    const count = amount(c, names.resource, 1024) ?? 0;
    if (count === 0) return null;
    const memMiB = amount(c, names.memory, 2 ** 31 - 1) ?? 0;
    const pct = amount(c, names.memoryPercent, 100);
    return { count, memMiB, memPercent: memMiB === 0 ? (pct && pct > 0 ? pct : 100) : 0, cores: amount(c, names.cores, 100) ?? 0 };
  });
}
