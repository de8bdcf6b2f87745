// leaderworkerset.x-k8s.io LeaderWorkerSet: spec.replicas groups of
// spec.leaderWorkerTemplate.size pods (one leader, size - 1 workers). Each group is one
// gang and so one sluice job, "leaderworkerset-<name>-<group index>". Its pods are owned
// by StatefulSets (the leaders' by one owned by the LWS, each group's workers by one owned
// by its leader pod), so a pod is recognised by the LWS's labels on it, not by owners.
// Only templates that ask a GPU count (the leader uses workerTemplate when it has no
// leaderTemplate).
// api-call: GET /apis/leaderworkerset.x-k8s.io/v1/namespaces/{namespace}/leaderworkersets/{name}
import type { V1Pod } from '@kubernetes/client-node';
import { asObject, countField, specOf, templateAsksGpu, type WorkloadKind, type WorkloadRef } from './kind.js';

export const LABEL_LWS_NAME = 'leaderworkerset.sigs.k8s.io/name';
export const LABEL_LWS_GROUP = 'leaderworkerset.sigs.k8s.io/group-index';

export const leaderWorkerSet: WorkloadKind = {
  group: 'leaderworkerset.x-k8s.io',
  kind: 'LeaderWorkerSet',
  resource: 'leaderworkersets',
  version: 'v1',
  gang(obj, _pod, gpuResources) {
    const lwt = asObject(specOf(obj)?.leaderWorkerTemplate);
    if (!lwt) return { problem: 'spec.leaderWorkerTemplate is missing' };
    const size = countField(lwt.size, 'spec.leaderWorkerTemplate.size', 1);
    if (typeof size === 'string') return { problem: size };
    if (size < 1) return { problem: 'spec.leaderWorkerTemplate.size is 0' };
    const workers = templateAsksGpu(lwt.workerTemplate, gpuResources) ? size - 1 : 0;
    const leader = templateAsksGpu(lwt.leaderTemplate ?? lwt.workerTemplate, gpuResources) ? 1 : 0;
    if (leader + workers === 0) return { problem: 'no pod template of the LeaderWorkerSet asks a GPU, yet this pod does' };
    return { size: leader + workers };
  },
  jobName(obj, pod) {
    const group = pod.metadata?.labels?.[LABEL_LWS_GROUP];
    if (group === undefined || !/^\d+$/.test(group)) return { problem: `the pod has no whole-number label ${LABEL_LWS_GROUP}` };
    return `leaderworkerset-${obj.metadata?.name ?? ''}-${group}`;
  },
};

/** The LeaderWorkerSet a pod belongs to: a pod owned by a StatefulSet and labelled with the LWS's name. */
export function lwsOf(pod: V1Pod, owner: { kind: string } | undefined): WorkloadRef | undefined {
  const name = pod.metadata?.labels?.[LABEL_LWS_NAME];
  if (name === undefined || name === '' || owner?.kind !== 'StatefulSet') return undefined;
  return { apiVersion: `${leaderWorkerSet.group}/${leaderWorkerSet.version}`, kind: leaderWorkerSet.kind, name, uid: '' };
}
