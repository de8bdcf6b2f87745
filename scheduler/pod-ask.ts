// Turns a pod into what the placement logic needs: one GpuAsk per managed resource it
// asks for (whole GPUs, or for the shared resource the memory and cores of each GPU per
// container), the accepted GPU models and the scoring policy it wants.
import type { V1Pod } from '@kubernetes/client-node';
import { podGpuRequests, podShareAsks, type ShareNames } from '../cluster/pod-request.js';
import { parseModelList } from '../placement/gpu-model.js';
import { POLICIES, type PolicyName } from '../config/schema.js';
import { WHOLE, type GpuAsk } from '../placement/types.js';

export const ANNOTATION_GPU_MODEL = 'sluice.io/gpu-model';
export const ANNOTATION_POLICY = 'sluice.io/policy';

export interface PodAsk {
  asks: GpuAsk[];
  /** The pod's sluice.io/policy when valid, else null (use the configured default). */
  policy: PolicyName | null;
}

/** Throws PodRequestError on a pod whose GPU requests are malformed. */
export function podAsk(pod: V1Pod, resources: readonly string[], shareNames?: ShareNames | null): PodAsk {
  const annotations = pod.metadata?.annotations ?? {};
  const models = parseModelList(annotations[ANNOTATION_GPU_MODEL]);
  const asks: GpuAsk[] = podGpuRequests(pod, resources).map((r) => {
    const ask: GpuAsk = { resource: r.resource, count: r.count, milli: WHOLE, models };
    if (shareNames && r.resource === shareNames.resource) ask.shares = podShareAsks(pod, shareNames).filter((s) => s !== null);
    return ask;
  });
  const p = annotations[ANNOTATION_POLICY];
  const policy = p && (POLICIES as readonly string[]).includes(p) ? (p as PolicyName) : null;
  return { asks, policy };
}
