// What every workload kind tells sluice (one file per kind in this folder, like Kueue's
// pkg/controller/jobs/<kind>): which API object it is, and how many of its pods form the
// gang that starts whole. Pure: the objects come in as decoded JSON from reader.ts.
//
// Only pods that ask a managed GPU resource are held by sluice, so a gang counts the pods
// of the templates that ask one (an MPIJob launcher or a Ray head without GPUs is not a
// member: counting it would leave the gang waiting for a pod that is never gated).
import type { V1Pod } from '@kubernetes/client-node';
import { podGpuRequests, PodRequestError } from '../cluster/pod-request.js';

/** A Kubernetes object as read from the apiserver (JSON); only metadata is typed. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ apiVersion?: string; kind?: string; name?: string; uid?: string; controller?: boolean }>;
  };
  spec?: unknown;
}

/** A reference to a workload: what an ownerReference names. */
export interface WorkloadRef {
  apiVersion: string;
  kind: string;
  name: string;
  /** Empty when the reference comes from a label (LeaderWorkerSet), not an ownerReference. */
  uid: string;
}

/**
 * How many GPU pods of the workload start together:
 * - size: a gang of that many pods;
 * - elastic: each pod starts on its own as room appears;
 * - problem: the spec cannot be read (said in words a person can act on).
 */
export type Gang = { size: number } | { elastic: true } | { problem: string };

export interface WorkloadKind {
  group: string;
  kind: string;
  /** The plural resource name (RBAC and the URL path). */
  resource: string;
  /** The version read when the reference does not name one. */
  version: string;
  /** The gang of the workload, for the pod being admitted (LeaderWorkerSet: its group). */
  gang(obj: KubeObject, pod: V1Pod, gpuResources: readonly string[]): Gang;
  /** The sluice job the pod belongs to; absent: "<kind>-<name>". */
  jobName?(obj: KubeObject, pod: V1Pod): string | { problem: string };
}

export const groupOf = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '');

export type Raw = Record<string, unknown>;
export const asObject = (v: unknown): Raw | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Raw) : undefined);

/** spec.<path> as an object, or undefined. */
export function specOf(obj: KubeObject): Raw | undefined {
  return asObject(obj.spec);
}

/**
 * A whole count >= 0 from a spec field: the default when absent, a problem sentence when
 * it is anything but a whole number.
 */
export function countField(v: unknown, field: string, dflt: number): number | string {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  return `${field} is ${JSON.stringify(v)}, not a whole number`;
}

/** The GPU shorthand annotation (webhooks/labels.ts ANN_GPUS), read here without importing the webhooks. */
const ANN_GPUS = 'sluice.io/gpus';

/**
 * Whether pods from this template ask a managed GPU resource (limits, requests or the
 * sluice.io/gpus shorthand). A template sluice cannot read asks none.
 */
export function templateAsksGpu(template: unknown, gpuResources: readonly string[]): boolean {
  const t = asObject(template);
  const spec = asObject(t?.spec);
  if (!spec || !Array.isArray(spec.containers)) return false;
  const shorthand = asObject(asObject(t?.metadata)?.annotations)?.[ANN_GPUS];
  if (typeof shorthand === 'string' && /^\s*[1-9]\d*\s*$/.test(shorthand)) return true;
  try {
    return podGpuRequests(t as V1Pod, gpuResources).length > 0;
  } catch (e) {
    if (e instanceof PodRequestError) return true; // a malformed count is still a GPU ask: validation denies it
    throw e;
  }
}

/**
 * Sums counted members over named parts of a spec (replica specs, worker groups), or the
 * first problem. A total of 0 when the admitted pod asks a GPU means the templates and
 * the pod disagree (e.g. GPUs added by another webhook): that is a problem too.
 */
export function sumGang(parts: ReadonlyArray<number | string>, what: string): Gang {
  let total = 0;
  for (const p of parts) {
    if (typeof p === 'string') return { problem: p };
    total += p;
  }
  if (total === 0) return { problem: `no pod template of ${what} asks a GPU, yet this pod does` };
  return { size: total };
}
