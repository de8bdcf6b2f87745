// What sluice needs to know of a Node: GPUs per managed resource, the GPU model and
// memory (NVIDIA GPU Feature Discovery labels), and whether GPU work may land there.
import type { V1Node } from '@kubernetes/client-node';
import { parseQuantity } from './quantity.js';
import { HAMI_NODE_LOCK, HAMI_REGISTER, handshakeStale, parseRegistration, type RegisteredGpu } from './hami.js';

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
  /** GPUs HAMi's device plugin registered (hami.io/node-nvidia-register), healthy ones only;
   * null when the node has no (readable) registration. */
  sharedGpus: SharedGpus | null;
  /** Why the registration was ignored (malformed): names the node and the field; null when fine. */
  registrationProblem: string | null;
  /** HAMi's node lock (hami.io/mutex.lock) as the informer last saw it; undefined when free. */
  hamiLock: string | undefined;
}

export interface SharedGpus {
  /** The GPU count resource the GPUs are split under. */
  resource: string;
  gpus: RegisteredGpu[];
  /** GPUs left out, each with why (unhealthy; all of them when the handshake is stale). */
  excluded: string[];
}

/** How to read HAMi's registration: under which resource, the handshake timeout, the clock. */
export interface SharingFacts {
  resource: string;
  handshakeTimeoutMs: number;
  now: () => number;
}

export function nodeFacts(node: V1Node, resources: readonly string[], sharing?: SharingFacts): NodeFacts {
  const name = node.metadata?.name ?? '';
  const labels = node.metadata?.labels ?? {};
  const alloc = node.status?.allocatable ?? {};
  const allocatable: Record<string, number> = {};
  for (const r of resources) {
    const n = Math.floor(parseQuantity(alloc[r]));
    allocatable[r] = Number.isFinite(n) && n > 0 ? n : 0;
  }
  const shared = sharing ? sharedGpus(name, node.metadata?.annotations ?? {}, allocatable[sharing.resource] ?? 0, sharing) : { gpus: null, problem: null };
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
    sharedGpus: shared.gpus,
    registrationProblem: shared.problem,
    hamiLock: node.metadata?.annotations?.[HAMI_NODE_LOCK],
  };
}

function sharedGpus(
  name: string,
  annotations: Readonly<Record<string, string>>,
  advertised: number,
  sharing: SharingFacts,
): { gpus: SharedGpus | null; problem: string | null } {
  const value = annotations[HAMI_REGISTER];
  if (value === undefined) return { gpus: null, problem: null };
  const reg = parseRegistration(value);
  if ('error' in reg) return { gpus: null, problem: `node ${name}: ignoring ${HAMI_REGISTER}: ${reg.error}` };
  const stale = handshakeStale(annotations, advertised, sharing.now(), sharing.handshakeTimeoutMs);
  if (stale) return { gpus: { resource: sharing.resource, gpus: [], excluded: reg.gpus.map((g) => `GPU ${g.index} (${g.uuid}): ${stale}`) }, problem: null };
  const excluded = reg.gpus.filter((g) => !g.healthy).map((g) => `GPU ${g.index} (${g.uuid}): reported unhealthy by the device plugin`);
  return { gpus: { resource: sharing.resource, gpus: reg.gpus.filter((g) => g.healthy), excluded }, problem: null };
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
export function nodeClassFigures(
  f: NodeFacts,
  resources: readonly string[],
): { gpus: number; product: string; cpuMilli: number | undefined; memMiB: number | undefined } {
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
