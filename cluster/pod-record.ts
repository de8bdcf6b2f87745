// What the cluster cache keeps of a pod: the fields the extender, the queue manager and
// the preemption path read, taken from the V1Pod once per watch event (full pods are not
// kept). Pure.
import type { V1NodeSelectorTerm as NodeSelectorTerm, V1Pod } from '@kubernetes/client-node';
import { podGpuRequests, podHostRequests, podShareAsks, PodRequestError, type ContainerShare, type ResourceAmount, type ShareNames } from './pod-request.js';
import { podDeviceHold } from './hami.js';
import type { DeviceUse } from '../placement/shares.js';

export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  nodeName: string;
  /** Succeeded or Failed: holds no GPUs any more. */
  terminal: boolean;
  /** Succeeded (a Failed pod is usually re-created by its controller; a Succeeded one is not). */
  succeeded: boolean;
  priority: number;
  labels: Record<string, string>;
  requests: readonly ResourceAmount[];
  /** CPU (milli) and memory (MiB) requested, as kube-scheduler counts them. */
  cpuMilli: number;
  memMiB: number;
  created: string;
  /** When this cache first saw the pod (ms): orders pods created within the same second. */
  seenMs: number;
  /** Names of spec.schedulingGates still on the pod (the queue manager removes sluice.io/queue). */
  gates: readonly string[];
  annotations: Readonly<Record<string, string>>;
  /** spec.nodeSelector and the required node-affinity terms, as the queue's fit check reads them. */
  nodeSelector: Readonly<Record<string, string>>;
  affinityTerms: readonly NodeSelectorTerm[] | null;
  /** status.startTime, else creationTimestamp ('' when neither is known). */
  started: string;
  /** metadata.deletionTimestamp is set: being deleted, still holding its GPUs. */
  terminating: boolean;
  /** The controller that owns the pod (ownerReferences with controller: true), if any. */
  owner: PodOwner | null;
  /** Per container (init first) what it asks of shared GPUs, null entries for containers
   * without GPUs; null when sharing is off or the pod asks no shared GPU. */
  shares: ReadonlyArray<ContainerShare | null> | null;
  /** The GPUs the pod holds through HAMi's protocol (cluster/hami.ts podDeviceHold). */
  hold: { node: string; uses: readonly DeviceUse[] } | null;
}

export interface PodOwner {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/**
 * The record of a pod; `seenMs` is when the cache first saw it (kept across updates). A pod
 * whose GPU requests cannot be read counts no GPUs: the apiserver would not have admitted it.
 */
export function podRecord(pod: V1Pod, uid: string, resources: readonly string[], seenMs: number, shareNames?: ShareNames): PodRecord {
  let requests: readonly ResourceAmount[];
  let shares: Array<ContainerShare | null> | null = null;
  try {
    requests = podGpuRequests(pod, resources);
    if (shareNames && requests.some((r) => r.resource === shareNames.resource)) shares = podShareAsks(pod, shareNames);
  } catch (e) {
    if (!(e instanceof PodRequestError)) throw e;
    requests = [];
  }
  const phase = pod.status?.phase;
  const host = podHostRequests(pod);
  return {
    uid,
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    nodeName: pod.spec?.nodeName ?? '',
    terminal: phase === 'Succeeded' || phase === 'Failed',
    succeeded: phase === 'Succeeded',
    priority: pod.spec?.priority ?? 0,
    labels: pod.metadata?.labels ?? {},
    requests,
    cpuMilli: host.cpuMilli,
    memMiB: host.memMiB,
    created: timestamp(pod.metadata?.creationTimestamp),
    seenMs,
    gates: (pod.spec?.schedulingGates ?? []).map((g) => g?.name ?? ''),
    annotations: pod.metadata?.annotations ?? {},
    nodeSelector: pod.spec?.nodeSelector ?? {},
    affinityTerms: pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? null,
    started: timestamp(pod.status?.startTime) || timestamp(pod.metadata?.creationTimestamp),
    terminating: !!pod.metadata?.deletionTimestamp,
    owner: ownerOf(pod),
    shares,
    hold: shareNames && phase !== 'Succeeded' && phase !== 'Failed' ? podDeviceHold(pod.metadata?.annotations ?? {}, pod.spec?.nodeName ?? '') : null,
  };
}

/** creationTimestamp as client-node delivers it (a Date) or as JSON has it (a string). */
function timestamp(v: Date | string | undefined): string {
  if (v === undefined || v === null) return '';
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? '' : v.toISOString();
  return String(v);
}

function ownerOf(pod: V1Pod): PodOwner | null {
  const refs = pod.metadata?.ownerReferences;
  const o = Array.isArray(refs) ? refs.find((r) => r?.controller === true) : undefined;
  return o && o.kind && o.name ? { apiVersion: o.apiVersion ?? '', kind: o.kind, name: o.name, uid: o.uid ?? '' } : null;
}
