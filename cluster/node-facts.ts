// What sluice needs to know of a Node: GPUs per managed resource, the GPU model and
// memory (NVIDIA GPU Feature Discovery labels), and whether GPU work may land there.
import type { V1Node } from '@kubernetes/client-node';
import { parseQuantity } from './quantity.js';

export const LABEL_GPU_PRODUCT = 'nvidia.com/gpu.product';
export const LABEL_GPU_MEMORY = 'nvidia.com/gpu.memory';
export const LABEL_GPU_DISABLED = 'sluice.io/gpu-disabled';

export interface NodeFacts {
  name: string;
  /** Allocatable count per managed resource; absent resources are 0. */
  allocatable: Record<string, number>;
  /** GPU product, e.g. NVIDIA-A100-SXM4-80GB; '' when the node has no GFD label. */
  product: string;
  /** Memory per GPU in MiB; 0 when unknown. */
  memoryMiB: number;
  /** Why no GPU pod may be placed here (cordoned, NotReady, disabled); null when fine. */
  unusable: string | null;
  /** The node's labels (node selectors and affinity are matched against them). */
  labels: Readonly<Record<string, string>>;
  /** Allocatable CPU (milli) and memory (MiB); 0 when the node does not report them. */
  cpuMilli: number;
  memMiB: number;
}

export function nodeFacts(node: V1Node, resources: readonly string[]): NodeFacts {
  const name = node.metadata?.name ?? '';
  const labels = node.metadata?.labels ?? {};
  const alloc = node.status?.allocatable ?? {};
  const allocatable: Record<string, number> = {};
  for (const r of resources) {
    const n = Math.floor(parseQuantity(alloc[r]));
    allocatable[r] = Number.isFinite(n) && n > 0 ? n : 0;
  }
  const mem = Math.floor(parseQuantity(labels[LABEL_GPU_MEMORY]));
  const cpu = parseQuantity(alloc['cpu']);
  const hostMem = parseQuantity(alloc['memory']);
  return {
    name,
    allocatable,
    product: labels[LABEL_GPU_PRODUCT] ?? '',
    memoryMiB: Number.isFinite(mem) && mem > 0 ? mem : 0,
    unusable: unusableReason(node),
    labels,
    cpuMilli: Number.isFinite(cpu) && cpu > 0 ? Math.round(cpu * 1000) : 0,
    memMiB: Number.isFinite(hostMem) && hostMem > 0 ? hostMem / 2 ** 20 : 0,
  };
}

function unusableReason(node: V1Node): string | null {
  const disabled = node.metadata?.labels?.[LABEL_GPU_DISABLED];
  if (disabled !== undefined && disabled !== 'false') return `GPUs disabled by label ${LABEL_GPU_DISABLED}`;
  if (node.spec?.unschedulable) return 'node is cordoned';
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (!ready) return 'node reports no Ready condition';
  if (ready.status !== 'True') return `node is NotReady (${ready.reason ?? ready.status})`;
  return null;
}

/** What an empty node can take, for the shapes' scarcity (placement/scarcity.ts): the GPUs
 * of every managed resource together, product, CPU and memory (undefined when not reported). */
export function nodeClassFigures(f: NodeFacts, resources: readonly string[]): { gpus: number; product: string; cpuMilli: number | undefined; memMiB: number | undefined } {
  let gpus = 0;
  for (const r of resources) gpus += f.allocatable[r] ?? 0;
  return { gpus, product: f.product, cpuMilli: f.cpuMilli > 0 ? f.cpuMilli : undefined, memMiB: f.memMiB > 0 ? f.memMiB : undefined };
}

/** Do two facts of a node give the same class figures (compared without building keys:
 * this runs on every node status update). */
export function sameNodeClass(a: NodeFacts, b: NodeFacts, resources: readonly string[]): boolean {
  if (a.product !== b.product || a.cpuMilli !== b.cpuMilli || a.memMiB !== b.memMiB) return false;
  for (const r of resources) if ((a.allocatable[r] ?? 0) !== (b.allocatable[r] ?? 0)) return false;
  return true;
}
