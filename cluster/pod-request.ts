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
