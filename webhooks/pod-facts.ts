// Reading what sluice cares about from a pod, shared by mutate.ts and validate.ts:
// scope, queue, owner-derived job name, GPU shorthand. Pure.
import type { V1Container, V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { parseQuantity } from '../cluster/quantity.js';
import {
  ANN_GPUS,
  ANN_GPU_CONTAINER,
  DEFAULT_QUEUE,
  isLabelValue,
  LABEL_DEFAULT_QUEUE_NS,
  LABEL_JOB_TYPE,
  LABEL_KUEUE_QUEUE,
  LABEL_MANAGED_NS,
  LABEL_QUEUE,
  labelSafe,
} from './labels.js';

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

export const podLabels = (pod: V1Pod): Readonly<Record<string, string>> => pod.metadata?.labels ?? NO_LABELS;
export const podAnnotations = (pod: V1Pod): Readonly<Record<string, string>> => pod.metadata?.annotations ?? NO_LABELS;

/** The labels of the workload that owns the pod (workloads/resolve.ts), when it has one. */
export type WorkloadLabels = Readonly<Record<string, string>> | undefined;

/**
 * sluice handles pods in namespaces labelled sluice.io/managed=true and pods that name a
 * queue, on themselves or on their workload. (Kueue's queue-name label alone does not
 * bring a pod in: with Kueue installed, that pod is Kueue's.)
 */
export function inScope(pod: V1Pod, nsLabels: Readonly<Record<string, string>> | undefined, workload?: WorkloadLabels): boolean {
  return nsLabels?.[LABEL_MANAGED_NS] === 'true' || podLabels(pod)[LABEL_QUEUE] !== undefined || workload?.[LABEL_QUEUE] !== undefined;
}

/**
 * The pod's queue, the first of:
 *   1. its sluice.io/queue label, 2. its workload's sluice.io/queue label,
 *   3. its kueue.x-k8s.io/queue-name label, 4. its workload's kueue.x-k8s.io/queue-name label,
 *   5. the namespace's sluice.io/default-queue label, 6. "default".
 */
export function queueOf(pod: V1Pod, nsLabels: Readonly<Record<string, string>> | undefined, workload?: WorkloadLabels): string {
  const labels = podLabels(pod);
  const own = labels[LABEL_QUEUE] ?? workload?.[LABEL_QUEUE] ?? labels[LABEL_KUEUE_QUEUE] ?? workload?.[LABEL_KUEUE_QUEUE];
  if (own !== undefined) return own;
  const ns = nsLabels?.[LABEL_DEFAULT_QUEUE_NS];
  return ns !== undefined && ns !== '' && isLabelValue(ns) ? ns : DEFAULT_QUEUE;
}

export function controllerOf(pod: V1Pod): V1OwnerReference | undefined {
  const refs = pod.metadata?.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  for (const r of refs) if (r && r.controller === true && typeof r.kind === 'string' && typeof r.name === 'string') return r;
  return undefined;
}

/** sluice.io/job when absent: "<kind>-<name>" of the controlling owner (all pods of a Job,
 * RayCluster or ReplicaSet share it), else "pod-<name>"; undefined for an unnamed bare pod. */
export function derivedJob(pod: V1Pod): string | undefined {
  const owner = controllerOf(pod);
  if (owner) return labelSafe(`${owner.kind.toLowerCase()}-${owner.name}`);
  const name = pod.metadata?.name;
  return typeof name === 'string' && name !== '' ? labelSafe(`pod-${name}`) : undefined;
}

export function jobTypeOf(pod: V1Pod): string | undefined {
  return podLabels(pod)[LABEL_JOB_TYPE] ?? podAnnotations(pod)[LABEL_JOB_TYPE];
}

/** A whole, non-negative GPU count from a quantity; NaN otherwise. */
export function wholeCount(q: unknown): number {
  const n = typeof q === 'string' || typeof q === 'number' ? parseQuantity(q) : NaN;
  return Number.isInteger(n) && n >= 0 ? n : NaN;
}

export type Shorthand = { kind: 'none' } | { kind: 'ok'; gpus: number; container: number; share?: ShorthandShare } | { kind: 'bad'; message: string };

/** The share form of sluice.io/gpus: a fraction of one GPU ("0.25": that share of its
 * memory and of its cores) or a memory size ("8Gi", "6000Mi": that much of one GPU's memory). */
export type ShorthandShare = { percent: number } | { memMiB: number };

const SIZE = /^\s*(\d+(?:\.\d+)?)\s*(Mi|Gi|Ti|M|G|T)\s*$/;
const MIB: Record<string, number> = { Mi: 1, Gi: 1024, Ti: 1024 * 1024, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20, T: 1e12 / 2 ** 20 };

function shareForm(raw: string): ShorthandShare | string | null {
  const frac = /^\s*0?\.(\d+)\s*$/.exec(raw);
  if (frac) {
    const percent = Number(`0.${frac[1]}`) * 100;
    if (!Number.isInteger(Math.round(percent * 1e6) / 1e6) || percent < 1)
      return `annotation ${ANN_GPUS} is "${raw}"; a GPU share must be whole percent of one GPU, from 0.01 to 0.99, such as "0.25"`;
    return { percent: Math.round(percent) };
  }
  const size = SIZE.exec(raw);
  if (size) {
    const memMiB = Math.floor(Number(size[1]) * MIB[size[2]!]!);
    if (memMiB < 1) return `annotation ${ANN_GPUS} is "${raw}"; a GPU memory share must be at least 1Mi`;
    return { memMiB };
  }
  return null;
}

/** The sluice.io/gpus annotation and the container it applies to. */
export function shorthandOf(pod: V1Pod): Shorthand {
  const ann = podAnnotations(pod);
  const raw = ann[ANN_GPUS];
  if (raw === undefined) return { kind: 'none' };
  const share = /^\s*\d+\s*$/.test(raw) ? null : shareForm(raw);
  if (typeof share === 'string') return { kind: 'bad', message: share };
  const gpus = share ? 1 : /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(gpus)) {
    return {
      kind: 'bad',
      message: `annotation ${ANN_GPUS} is "${raw}"; it must be a whole number of GPUs such as "2", a share of one GPU such as "0.25", or GPU memory such as "8Gi"`,
    };
  }
  const containers = (pod.spec?.containers ?? []) as V1Container[];
  const named = ann[ANN_GPU_CONTAINER];
  if (named === undefined) {
    if (containers.length === 0) return { kind: 'bad', message: 'the pod has no containers to put GPUs on' };
    return { kind: 'ok', gpus, container: 0, ...(share ? { share } : {}) };
  }
  const i = containers.findIndex((c) => c.name === named);
  if (i < 0) {
    const names = containers.map((c) => c.name).join(', ');
    return { kind: 'bad', message: `annotation ${ANN_GPU_CONTAINER} names container "${named}" but the pod has only ${names}; fix the name` };
  }
  return { kind: 'ok', gpus, container: i, ...(share ? { share } : {}) };
}
