// Fit: can this pod's GPU ask be placed on this node, and if not, why. A reason is
// "resolvable" when taking pods away (preemption) could make room, and unresolvable
// when nothing on the node can change the answer (wrong model, GPUs disabled, too few
// GPUs in all) - kube-scheduler then does not try to preempt there.
import { modelAccepted } from './gpu-model.js';
import { devicesMisfit, neverFits, shareMilli } from './shares.js';
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
  if (ask.shares && s.devices) return sharesMisfit(n, s.devices, ask) ?? cpuMemMisfit(node, ask);
  if (!slotsFit(s, ask)) {
    const reason =
      ask.milli >= WHOLE
        ? `node ${n}: ${s.freeWhole} of ${s.capacity} ${ask.resource} free, pod needs ${ask.count}`
        : `node ${n}: no ${ask.resource} has ${ask.milli}m free, pod needs a ${ask.milli}m share`;
    return { reason, resolvable: true, kind: 'insufficient' };
  }
  return cpuMemMisfit(node, ask);
}

/** Fit on GPUs split by memory, cores and slots: unresolvable when no GPU of the node
 * could hold a container's share even empty (naming the largest), else the exact check. */
function sharesMisfit(n: string, devices: NonNullable<GpuSlots['devices']>, ask: GpuAsk): Misfit | null {
  for (const a of ask.shares!) {
    if (devices.length > 0 && devices.every((d) => neverFits(d, a) !== null)) {
      const largest = devices.reduce((b, d) => (d.memMiB > b.memMiB ? d : b));
      return {
        reason: `node ${n}: no GPU could ever hold the share (${neverFits(largest, a)}; largest GPU ${largest.memMiB} MiB, ${largest.cores} cores)`,
        resolvable: false,
        kind: 'too_big',
      };
    }
  }
  const why = devicesMisfit(devices, ask.shares!);
  return why === null ? null : { reason: `node ${n}: ${why}`, resolvable: true, kind: 'insufficient' };
}

/** The ask with its one-dimensional share (milli) worked out for this node's GPUs: the
 * largest container share, by the node's largest GPU memory; whole GPUs for an ask of
 * several (the policies model shares of one GPU only). Unchanged without shares. */
export function askOnNode(ask: GpuAsk, s: GpuSlots | undefined): GpuAsk {
  if (!ask.shares || ask.shares.length === 0 || ask.count > 1) return ask;
  let mem = 0;
  for (const d of s?.devices ?? []) if (d.memMiB > mem) mem = d.memMiB;
  let milli = 0;
  for (const a of ask.shares) milli = Math.max(milli, shareMilli(a, mem));
  return milli === ask.milli ? ask : { ...ask, milli };
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
  if (ask.shares && s.devices) return fit(node, ask) === null;
  return slotsFit(s, ask);
}
