// ray.io RayCluster (KubeRay): one head pod and worker groups. The gang is the head plus
// each worker group's guaranteed workers x numOfHosts: minReplicas when the in-tree
// autoscaler is on (workers it adds above that are elastic members: the queue releases
// them one by one, see queue/units.ts), else replicas. Groups with suspend: true count
// nothing. Only templates that ask a GPU count; when none of the guaranteed pods asks
// one, the GPU workers are all elastic.
// api-call: GET /apis/ray.io/v1/namespaces/{namespace}/rayclusters/{name}
import { asObject, countField, specOf, templateAsksGpu, type Gang, type Raw, type WorkloadKind } from './kind.js';

export const rayCluster: WorkloadKind = {
  group: 'ray.io',
  kind: 'RayCluster',
  resource: 'rayclusters',
  version: 'v1',
  gang: (obj, _pod, gpuResources) => rayClusterGang(specOf(obj), 'spec', gpuResources),
};

/** The gang of a RayCluster spec (also a RayJob's spec.rayClusterSpec); `at` names it in problems. */
export function rayClusterGang(spec: Raw | undefined, at: string, gpuResources: readonly string[]): Gang {
  if (!spec) return { problem: `${at} is missing` };
  const autoscaling = spec.enableInTreeAutoscaling === true;
  const head = asObject(spec.headGroupSpec);
  if (!head) return { problem: `${at}.headGroupSpec is missing` };
  let size = templateAsksGpu(head.template, gpuResources) ? 1 : 0;
  let anyGpu = size > 0;
  const groups = spec.workerGroupSpecs ?? [];
  if (!Array.isArray(groups)) return { problem: `${at}.workerGroupSpecs is not a list` };
  for (const [i, g] of groups.entries()) {
    const w = asObject(g);
    const where = `${at}.workerGroupSpecs[${i}]`;
    if (!w) return { problem: `${where} is not a worker group` };
    const min = countField(w.minReplicas, `${where}.minReplicas`, 0);
    if (typeof min === 'string') return { problem: min };
    const replicas = countField(w.replicas, `${where}.replicas`, min);
    if (typeof replicas === 'string') return { problem: replicas };
    const hosts = countField(w.numOfHosts, `${where}.numOfHosts`, 1);
    if (typeof hosts === 'string') return { problem: hosts };
    if (!templateAsksGpu(w.template, gpuResources)) continue;
    anyGpu = true;
    if (w.suspend === true) continue;
    size += (autoscaling ? min : replicas) * hosts;
  }
  if (!anyGpu) return { problem: `no pod template of ${at} asks a GPU, yet this pod does` };
  return size > 0 ? { size } : { elastic: true };
}
