// GPU shares on devices that a node agent (HAMi's device plugin) splits: each GPU has
// memory, compute (cores, 100 = the whole GPU) and a number of slots (tasks it may run at
// once). Pure: the extender, the queue's fit check and the simulator all read GPUs through
// these functions.
//
// One GPU, two models:
//   exact    - memory, cores and slots per GPU, as HAMi's scheduler checks them
//              (deviceMisfit); this decides whether an ask fits and which GPU it gets;
//   1-D      - the policies' milli-GPU (placement/types.ts GpuSlots), which scores nodes
//              exactly as the simulator does.
// The bridge: an ask's share is the larger of its memory and cores fractions
// (shareMilli), a GPU's free share the smaller of its free memory and free cores
// fractions (freeShareMilli). Then "1-D says it fits" implies "it fits exactly" (memory
// and cores both fit), so a node the policy ranks is one the pod can go to; see
// test/unit/shares.test.ts for the measurement against the mean and memory-only mappings.
import { WHOLE, type GpuSlots, type SizeMix } from './types.js';
import type { HostFree, Policy } from './policies.js';

/** One GPU as the node agent registered it, with what is placed on it. */
export interface GpuDevice {
  uuid: string;
  /** The GPU's index on its node (HAMi's 9-field form; else its position in the list). */
  index: number;
  /** GPU model as registered, e.g. "NVIDIA-NVIDIA A100-SXM4-80GB". */
  type: string;
  numa: number;
  memMiB: number;
  /** Compute units; 100 = the whole GPU. */
  cores: number;
  /** Tasks the GPU may run at once (HAMi's split count). */
  slots: number;
  usedMemMiB: number;
  usedCores: number;
  usedSlots: number;
}

/** What one container asks of each of its GPUs. */
export interface ShareAsk {
  /** GPUs wanted. */
  count: number;
  /** Memory per GPU in MiB; 0 = memPercent of the GPU's memory. */
  memMiB: number;
  /** Memory per GPU as a percentage of the GPU (used when memMiB is 0). */
  memPercent: number;
  /** Compute per GPU, 0..100; 100 = the GPU alone. */
  cores: number;
}

/** Memory the ask takes on this GPU (MiB). */
export const memNeed = (d: Pick<GpuDevice, 'memMiB'>, a: ShareAsk): number => (a.memMiB > 0 ? a.memMiB : Math.floor((d.memMiB * a.memPercent) / 100));

const gpuName = (d: GpuDevice): string => `GPU ${d.index} (${d.uuid})`;

/** null when one GPU-worth of the ask fits on the GPU now, else why not (names the GPU
 * and the numbers). The rules are HAMi's scheduler's, in its order: 1. a free slot;
 * 2. enough free memory; 3. enough free cores; 4. an ask of all cores needs a GPU nothing
 * runs on; 5. an ask of no cores cannot go to a GPU whose cores are all taken. */
export function deviceMisfit(d: GpuDevice, a: ShareAsk): string | null {
  if (d.usedSlots >= d.slots) return `${gpuName(d)}: all ${d.slots} slots taken`;
  const mem = memNeed(d, a);
  if (d.memMiB - d.usedMemMiB < mem) return `${gpuName(d)}: ${d.memMiB - d.usedMemMiB} of ${d.memMiB} MiB free, pod needs ${mem} MiB`;
  const cores = Math.min(a.cores, 100);
  if (d.cores - d.usedCores < cores) return `${gpuName(d)}: ${d.cores - d.usedCores} of ${d.cores} cores free, pod needs ${cores}`;
  if (d.cores === 100 && cores === 100 && d.usedSlots > 0) return `${gpuName(d)}: pod needs the whole GPU, ${d.usedSlots} task(s) run on it`;
  if (d.cores !== 0 && d.usedCores === d.cores && cores === 0) return `${gpuName(d)}: all ${d.cores} cores taken`;
  return null;
}

/** null when the ask could fit on an empty GPU like this one, else why it never can. */
export function neverFits(d: GpuDevice, a: ShareAsk): string | null {
  return deviceMisfit({ ...d, usedMemMiB: 0, usedCores: 0, usedSlots: 0 }, a);
}

/** The ask's one-dimensional share of a GPU with `memMiB` memory: the larger of its memory
 * and cores fractions, in milli, at least 1. */
export function shareMilli(a: ShareAsk, memMiB: number): number {
  const memFrac = a.memMiB > 0 ? (memMiB > 0 ? a.memMiB / memMiB : 1) : a.memPercent / 100;
  const coreFrac = Math.min(a.cores, 100) / 100;
  return Math.max(1, Math.min(WHOLE, Math.ceil(WHOLE * Math.max(memFrac, coreFrac))));
}

/** The GPU's free one-dimensional share: the smaller of its free memory and free cores
 * fractions, in milli; 0 without a free slot. */
export function freeShareMilli(d: GpuDevice): number {
  if (d.usedSlots >= d.slots || d.memMiB <= 0) return 0;
  let f = (d.memMiB - d.usedMemMiB) / d.memMiB;
  if (d.cores > 0) f = Math.min(f, (d.cores - d.usedCores) / d.cores);
  return Math.max(0, Math.floor(WHOLE * f));
}

/** The node's GPUs as the policies see them: idle GPUs whole, the others by free share
 * (a GPU in use is never whole: an ask of the whole GPU needs one nothing runs on). */
export function slotsOfDevices(devices: readonly GpuDevice[]): GpuSlots {
  let freeWhole = 0;
  const partialFree: number[] = [];
  for (const d of devices) {
    if (d.usedSlots === 0 && d.usedMemMiB === 0 && d.usedCores === 0) freeWhole++;
    else {
      const f = Math.min(WHOLE - 1, freeShareMilli(d));
      if (f > 0) partialFree.push(f);
    }
  }
  return { capacity: devices.length, freeWhole, partialFree, devices };
}

/** The devices after one GPU-worth of the ask is placed on the one with `uuid`. */
export function placeOn(devices: readonly GpuDevice[], uuid: string, a: ShareAsk): GpuDevice[] {
  return devices.map((d) =>
    d.uuid === uuid ? { ...d, usedMemMiB: d.usedMemMiB + memNeed(d, a), usedCores: d.usedCores + Math.min(a.cores, 100), usedSlots: d.usedSlots + 1 } : d,
  );
}

/** The devices without the given uses (what is left when those pods are gone). */
export function withoutUses(devices: readonly GpuDevice[], uses: readonly DeviceUse[]): GpuDevice[] {
  return devices.map((d) => {
    let { usedMemMiB, usedCores, usedSlots } = d;
    for (const u of uses) {
      if (u.uuid !== d.uuid) continue;
      usedMemMiB -= u.memMiB;
      usedCores -= u.cores;
      usedSlots -= 1;
    }
    return usedSlots === d.usedSlots ? d : { ...d, usedMemMiB, usedCores, usedSlots };
  });
}

/** One GPU's share of a container, as HAMi's annotation lists it. */
export interface DeviceUse {
  uuid: string;
  memMiB: number;
  cores: number;
}

/** The GPU the policy's choice names: for an idle GPU, the lowest-index idle one that fits;
 * for a partly used GPU with `free` milli, the lowest-index fitting GPU with that free
 * share (any fitting GPU closest to it above, then below, if the exact check ruled those
 * out). null when no GPU fits. */
export function deviceForChoice(
  devices: readonly GpuDevice[],
  a: ShareAsk,
  choice: { on: 'whole' } | { on: 'idle' } | { on: 'partial'; free: number },
): GpuDevice | null {
  const fitting = devices.filter((d) => deviceMisfit(d, a) === null).sort((x, y) => x.index - y.index);
  if (fitting.length === 0) return null;
  const idle = (d: GpuDevice): boolean => d.usedSlots === 0 && d.usedMemMiB === 0 && d.usedCores === 0;
  if (choice.on === 'partial') {
    const free = choice.free;
    const exact = fitting.find((d) => !idle(d) && Math.min(WHOLE - 1, freeShareMilli(d)) === free);
    if (exact) return exact;
    const dist = (d: GpuDevice): number => {
      const f = idle(d) ? WHOLE : freeShareMilli(d);
      return f >= free ? f - free : WHOLE + free - f;
    };
    return fitting.reduce((b, d) => (dist(d) < dist(b) ? d : b));
  }
  return fitting.find(idle) ?? fitting[0]!;
}

/** Why the node's GPUs cannot take the container asks, placed one after the other, each
 * container on `count` different GPUs (null when they can). Lists at most three GPUs'
 * reasons. */
export function devicesMisfit(devices: readonly GpuDevice[], asks: readonly ShareAsk[]): string | null {
  const placed = placeContainers(devices, asks, (ds, a) => ds.find((x) => deviceMisfit(x, a) === null) ?? null);
  return 'misfit' in placed ? placed.misfit : null;
}

/** Picks one GPU for one GPU-worth of an ask among `candidates` (all of which it may use);
 * null when none fits. */
export type PickGpu = (candidates: readonly GpuDevice[], a: ShareAsk) => GpuDevice | null;

/** Places each container's ask on `count` different GPUs, one GPU at a time with `pick`,
 * the devices updated after each: the GPUs of each container, or why they do not fit. */
export function placeContainers(
  devices: readonly GpuDevice[],
  asks: readonly ShareAsk[],
  pick: PickGpu,
): { uses: DeviceUse[][]; after: GpuDevice[] } | { misfit: string } {
  let ds = [...devices];
  const uses: DeviceUse[][] = [];
  for (const a of asks) {
    const mine: DeviceUse[] = [];
    for (let k = 0; k < a.count; k++) {
      const taken = new Set(mine.map((u) => u.uuid));
      const candidates = ds.filter((x) => !taken.has(x.uuid));
      const d = pick(candidates, a);
      if (!d || deviceMisfit(d, a) !== null) {
        const why = candidates.map((x) => deviceMisfit(x, a)).filter((r): r is string => r !== null);
        const more = why.length > 3 ? `; and ${why.length - 3} more` : '';
        const what = `${memText(a)} and ${Math.min(a.cores, 100)} cores`;
        return {
          misfit: `${a.count > 1 ? `pod needs ${a.count} GPUs with ${what} free each` : `no GPU has ${what} free`}: ${why.slice(0, 3).join('; ') || 'no GPU left'}${more}`,
        };
      }
      mine.push({ uuid: d.uuid, memMiB: memNeed(d, a), cores: Math.min(a.cores, 100) });
      ds = placeOn(ds, d.uuid, a);
    }
    uses.push(mine);
  }
  return { uses, after: ds };
}

export const memText = (a: ShareAsk): string => (a.memMiB > 0 ? `${a.memMiB} MiB` : `${a.memPercent}% memory`);

/** The node and pod figures a policy's GPU choice may depend on: the node's free CPU,
 * memory and model before the pod, and the pod's CPU and memory. */
export interface PodOnNode {
  host: HostFree;
  cpuMilli?: number | undefined;
  memMiB?: number | undefined;
}

/** Picks the GPU the policy's `choose` names (criterion "on the node, which GPU"), on the
 * candidates as the policy sees them (slotsOfDevices), then the device that choice
 * stands for (deviceForChoice). With `onNode`, the choice is made as the policy scored
 * the node (the extender's bind and the trace simulator pass it). */
export function policyPick(policy: Pick<Policy, 'choose'>, mix: SizeMix, resource: string, onNode?: PodOnNode): PickGpu {
  return (candidates, a) => {
    const memMiB = candidates.reduce((m, d) => Math.max(m, d.memMiB), 0);
    const slots = slotsOfDevices(candidates);
    const ask = { resource, count: 1, milli: shareMilli(a, memMiB), models: [], cpuMilli: onNode?.cpuMilli, memMiB: onNode?.memMiB };
    const choice = policy.choose(slots, ask, mix, onNode?.host);
    return deviceForChoice(candidates, a, choice);
  };
}

// ---- GPU-equivalents ------------------------------------------------------------------
// What a share counts as against a queue's quota, and what a victim costs: its one-
// dimensional share (shareMilli) per GPU, so four pods of a quarter GPU count one GPU.
// Milli, so sums stay exact (4 x 250 = 1000, where 4 x 0.25 floats would drift for 0.1).

/** GPU-equivalents (milli) of a pod's container asks on GPUs of `gpuMemMiB` memory: per
 * container, its GPUs x its share of each. */
export function asksMilli(asks: readonly (ShareAsk | null)[], gpuMemMiB: number): number {
  let m = 0;
  for (const a of asks) if (a) m += a.count * shareMilli(a, gpuMemMiB);
  return m;
}

/** GPU-equivalents (milli) of the GPUs a pod holds: per GPU, the share of it it uses, by
 * that GPU's memory (`memOf`, 0 when the GPU is not known: then the use counts whole). */
export function usesMilli(uses: readonly DeviceUse[], memOf: (uuid: string) => number): number {
  let m = 0;
  for (const u of uses) m += shareMilli({ count: 1, memMiB: u.memMiB, memPercent: 0, cores: u.cores }, memOf(u.uuid));
  return m;
}

/** The memory that prices a pod's asks before it holds a GPU: the smallest of `sizes`
 * (ascending GPU memories) that can hold its largest memory ask, so the price is the most
 * it can cost once placed (a larger GPU makes the same MiB a smaller share); the largest
 * when none can; 0 when no size is known. */
export function pricingMemMiB(asks: readonly (ShareAsk | null)[], sizes: readonly number[]): number {
  let need = 0;
  for (const a of asks) if (a && a.memMiB > need) need = a.memMiB;
  for (const s of sizes) if (s >= need) return s;
  return sizes.length > 0 ? sizes[sizes.length - 1]! : 0;
}

/** A pod's GPUs of the share resource against quota: its `count` devices, or fewer when
 * its asks (priced on GPUs of `gpuMemMiB`) come to less; never more than `count`. */
export function shareGpus(count: number, asks: readonly (ShareAsk | null)[], gpuMemMiB: number): number {
  const m = asksMilli(asks, gpuMemMiB);
  return m >= count * WHOLE ? count : milliToGpus(m);
}

/** Milli as GPUs for people and JSON: 1250 -> 1.25. */
export const milliToGpus = (m: number): number => Math.round(m) / 1000;
/** GPUs (a count or a fraction from milliToGpus) as milli. */
export const gpusToMilli = (g: number): number => Math.round(g * 1000);
