// Fit: can this pod's GPU ask be placed on this node, and if not, why. A reason is
// "resolvable" when taking pods away (preemption) could make room, and unresolvable
// when nothing on the node can change the answer (wrong model, GPUs disabled, too few
// GPUs in all) - kube-scheduler then does not try to preempt there.
import { modelAccepted } from './gpu-model.js';
import { WHOLE, type GpuAsk, type GpuSlots, type NodeView } from './types.js';

export interface Misfit {
  reason: string;
  resolvable: boolean;
  /** Short label for metrics. */
  kind: 'unusable' | 'no_resource' | 'model' | 'too_big' | 'insufficient' | 'cpu_memory';
}

/** True when the slots alone (ignoring model, health, CPU) can take the ask. */
export function slotsFit(s: GpuSlots, ask: Pick<GpuAsk, 'count' | 'milli'>): boolean {
  if (ask.count === 0) return true;
  if (ask.milli >= WHOLE) return s.freeWhole >= ask.count;
  if (s.freeWhole > 0) return true;
  for (const f of s.partialFree) if (f >= ask.milli) return true;
  return false;
}

/** null when the ask fits the node, else the reason it does not. */
export function fit(node: NodeView, ask: GpuAsk): Misfit | null {
  // A CPU-only ask (simulator) needs no GPU, so GPU health and model do not matter.
  if (ask.count === 0) return cpuMemMisfit(node, ask);
  const n = node.name;
  if (node.unusable) return { reason: `node ${n}: ${node.unusable}`, resolvable: false, kind: 'unusable' };
  const s = node.gpus;
  if (!s || s.capacity === 0) {
    return { reason: `node ${n} has no ${ask.resource}`, resolvable: false, kind: 'no_resource' };
  }
  if (ask.models.length > 0 && !modelAccepted(node.product, ask.models)) {
    return {
      reason: `node ${n} has ${node.product || 'GPUs of unknown model'}, pod accepts only ${ask.models.join(', ')}`,
      resolvable: false,
      kind: 'model',
    };
  }
  if (ask.count > s.capacity) {
    return {
      reason: `node ${n} has ${s.capacity} ${ask.resource} in all, pod needs ${ask.count}`,
      resolvable: false,
      kind: 'too_big',
    };
  }
  if (!slotsFit(s, ask)) {
    const reason =
      ask.milli >= WHOLE
        ? `node ${n}: ${s.freeWhole} of ${s.capacity} ${ask.resource} free, pod needs ${ask.count}`
        : `node ${n}: no ${ask.resource} has ${ask.milli}m free, pod needs a ${ask.milli}m share`;
    return { reason, resolvable: true, kind: 'insufficient' };
  }
  return cpuMemMisfit(node, ask);
}

function cpuMemMisfit(node: NodeView, ask: GpuAsk): Misfit | null {
  const n = node.name;
  if (ask.cpuMilli !== undefined && node.cpuFreeMilli !== undefined && ask.cpuMilli > node.cpuFreeMilli) {
    return { reason: `node ${n}: ${node.cpuFreeMilli}m CPU free, pod needs ${ask.cpuMilli}m`, resolvable: true, kind: 'cpu_memory' };
  }
  if (ask.memMiB !== undefined && node.memFreeMiB !== undefined && ask.memMiB > node.memFreeMiB) {
    return { reason: `node ${n}: ${node.memFreeMiB}Mi memory free, pod needs ${ask.memMiB}Mi`, resolvable: true, kind: 'cpu_memory' };
  }
  return null;
}

/** fit() === null without building reasons: the simulator's hot path. */
export function fits(node: NodeView, ask: GpuAsk): boolean {
  if (ask.cpuMilli !== undefined && node.cpuFreeMilli !== undefined && ask.cpuMilli > node.cpuFreeMilli) return false;
  if (ask.memMiB !== undefined && node.memFreeMiB !== undefined && ask.memMiB > node.memFreeMiB) return false;
  if (ask.count === 0) return true;
  const s = node.gpus;
  if (node.unusable || !s || s.capacity === 0 || ask.count > s.capacity) return false;
  if (ask.models.length > 0 && !modelAccepted(node.product, ask.models)) return false;
  return slotsFit(s, ask);
}
