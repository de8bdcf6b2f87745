// Plain data that the pure placement logic (fit, scores, GPU choice) works on. The
// extender builds these from the cluster cache; the bench and the trace simulator build
// them from their own clusters. Nothing here does I/O.

/** The node scoring policies a pod or the config may name. */
import type { GpuDevice, ShareAsk } from './shares.js';

export const POLICIES = ['binpack', 'spread', 'fragmentation'] as const;
export type PolicyName = (typeof POLICIES)[number];

/** GPU occupancy of one node for one GPU resource. Units: milli-GPU (1000 = one GPU). */
export interface GpuSlots {
  /** GPUs the node has for this resource (allocatable). */
  capacity: number;
  /** GPUs with nothing on them. */
  freeWhole: number;
  /** Free milli of each partly used GPU (0 < free < 1000). Empty when GPUs are only
   * handed out whole, as with plain device-plugin resources such as nvidia.com/gpu. */
  partialFree: readonly number[];
  /** Each GPU's memory, cores and slots, when a node agent splits them (HAMi's device
   * plugin; placement/shares.ts): fit is then decided on these. */
  devices?: readonly GpuDevice[];
}

export interface NodeView {
  name: string;
  /** GPU product label; '' when unknown. */
  product: string;
  /** Why GPU work must not land here; null when it may. */
  unusable: string | null;
  /** Occupancy of the resource being asked for; undefined when the node lacks it. */
  gpus: GpuSlots | undefined;
  /** Free CPU and memory, checked only when both node and ask carry them (simulator). */
  cpuFreeMilli?: number;
  memFreeMiB?: number;
}

/** What one pod asks of one GPU resource. */
export interface GpuAsk {
  resource: string;
  /** Number of GPUs; 0 for a CPU-only pod (simulator), which fits on CPU and memory alone. */
  count: number;
  /** Share of each GPU in milli; 1000 = whole, exclusive GPUs; < 1000 only with count 1. */
  milli: number;
  /** Accepted GPU models (products or aliases); empty = any. */
  models: readonly string[];
  cpuMilli?: number;
  memMiB?: number;
  /** Per container, the memory and cores asked of each GPU (resources such as
   * nvidia.com/gpumem); checked against `devices` of nodes that have them. */
  shares?: readonly ShareAsk[];
}

/** How often each GPU ask shape is seen; weights sum to 1 (see size-mix.ts). */
export interface SizeMixEntry {
  count: number;
  milli: number;
  weight: number;
  /** CPU and memory of the shape; when set (simulator), a node short of them cannot
   * take the shape, so all its free GPU counts as fragment for it. */
  cpuMilli?: number;
  memMiB?: number;
  /** Accepted GPU models of the shape (empty or absent = any); a node of another model
   * cannot serve it, so all its free GPU counts as fragment for it. */
  models?: readonly string[];
  /** How scarce the nodes that can take the shape are (scarcity.ts); the fragmentation
   * policy weighs the shape's fragment by weight x scarcity. Absent: 1. */
  scarcity?: number;
}
export type SizeMix = readonly SizeMixEntry[];

export const WHOLE = 1000;

export const freeMilli = (s: GpuSlots): number => {
  let sum = s.freeWhole * WHOLE;
  for (const f of s.partialFree) sum += f;
  return sum;
};
