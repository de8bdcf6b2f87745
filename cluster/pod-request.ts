// What a pod asks of the managed GPU resources, the way kube-scheduler counts it:
// effective request = max(sum of app containers + restartable (sidecar) init
// containers, each ordinary init container plus the sidecars started before it).
// Requests fall back to limits (the apiserver copies limits of extended resources
// into requests, but a pod seen before defaulting may not have them yet).
import type { V1Container, V1Pod } from '@kubernetes/client-node';
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

/** Managed resources the pod asks for, non-zero only, in the order of `resources`. */
export function podGpuRequests(pod: V1Pod, resources: readonly string[]): ResourceAmount[] {
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) throw new PodRequestError('pod has no spec.containers');
  const out: ResourceAmount[] = [];
  for (const resource of resources) {
    let sum = 0;
    for (const c of spec.containers) sum += containerAmount(c, resource);
    let sidecars = 0;
    let initPeak = 0;
    for (const c of spec.initContainers ?? []) {
      const n = containerAmount(c, resource);
      if (c.restartPolicy === 'Always') {
        sidecars += n;
        initPeak = Math.max(initPeak, sidecars);
      } else {
        initPeak = Math.max(initPeak, sidecars + n);
      }
    }
    const count = Math.max(sum + sidecars, initPeak);
    if (count > 0) out.push({ resource, count });
  }
  return out;
}
