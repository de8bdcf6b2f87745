// Node scoring policies. Each answers two questions for a node the ask fits on:
//   choose - on which GPU(s) of the node the ask goes (matters only for shared GPUs);
//   score  - how good the node is; higher is better.
// Scores are absolute (already 0..10), relative (min-max scaled to 0..10 over the
// candidate nodes of one request) or integer levels (the best candidate 10, one less per
// level below); see toExtenderScores. The same code scores the
// extender's whole-GPU asks (partialFree always empty there) and the trace simulator's
// shared-GPU and CPU-only asks (bench/simulate).
//
// binpack        1. prefer the node left with the least free GPU capacity, as a share of
//                   its capacity, so that whole nodes stay free for big jobs;
//                2. on the node, put a GPU share on the fullest GPU it fits on.
// spread         1. prefer the node left with the most free GPU capacity (share);
//                2. on the node, put a share on an idle GPU, else the emptiest one.
// fragmentation  (Fragmentation Gradient Descent, Weng et al., ATC '23, made CPU- and
//                memory-aware)
//                1. prefer the placement that grows the node's expected fragmentation
//                   plus twice the GPU it strands least, in levels: score =
//                   int(100 x sigmoid(-growth / 4 GPUs)), so placements within a few
//                   hundredths of a GPU of each other score alike.
//                   A node's fragmentation for one ask shape is the free GPU capacity the
//                   shape cannot use: all of it when the node lacks the GPUs, CPU or memory
//                   for even one copy of the shape or has a GPU model it does not accept;
//                   else the free milli of GPUs too small for it, plus, for GPU shares,
//                   half of the rest that free CPU/memory cannot back (see fragmentation()).
//                   Weighted by how often the shape arrives (size mix) times how scarce
//                   the nodes that can take it are (scarcity.ts).
//                   Stranded GPU: the node's free GPU that its free CPU or memory cannot
//                   back at the size mix's CPU and memory per GPU (strandedMilli()). Only
//                   growth is charged: a placement that un-strands GPU earns nothing.
//                2. equal levels: the scheduler's tie rule (kube-scheduler: at random; the
//                   trace simulator, as the FGD artifact's: a node order drawn at random
//                   per run and then fixed, which fills nodes in that order and keeps the
//                   rest whole; bench/simulate/engine.ts TIE_RULES);
//                3. on the node, the GPU whose use grows fragmentation least, with the
//                   node's free CPU, memory and model when the caller has them (the bind
//                   does: it then takes the GPU prioritize scored); among equals, the
//                   fullest GPU the share fits on (choicesFor order).
// Reference policies for the simulator (random, best-fit) are in reference-policies.ts.
import { modelAccepted } from './gpu-model.js';
import { WHOLE, freeMilli, type GpuAsk, type GpuSlots, type NodeView, type PolicyName, type SizeMix, type SizeMixEntry } from './types.js';

/** Where on a node an ask goes: whole GPUs, a share of an idle GPU, or a share of a
 * partly used GPU that has `free` milli left (GPUs with equal free are interchangeable). */
export type GpuChoice = { on: 'whole' } | { on: 'idle' } | { on: 'partial'; free: number };

export interface Policy {
  readonly name: string;
  readonly scale: 'absolute' | 'relative' | 'levels';
  /** `host`: the node's free CPU, memory and model before the ask (with the ask's own CPU
   * and memory in `ask`), for a policy whose GPU choice depends on them; score() reads
   * the same from its node. */
  choose(s: GpuSlots, ask: GpuAsk, mix: SizeMix, host?: HostFree): GpuChoice;
  score(node: NodeView & { gpus: GpuSlots }, ask: GpuAsk, mix: SizeMix): number;
}

/** Every distinct place on the node the ask could go, fullest GPU first. Call only when
 * slotsFit. A CPU-only ask (count 0) has the one trivial choice 'whole' (of zero GPUs). */
export function choicesFor(s: GpuSlots, ask: GpuAsk): GpuChoice[] {
  if (ask.count === 0 || ask.milli >= WHOLE) return [{ on: 'whole' }];
  const frees: number[] = [];
  for (const f of s.partialFree) if (f >= ask.milli && !frees.includes(f)) frees.push(f);
  frees.sort((a, b) => a - b);
  const out: GpuChoice[] = frees.map((free) => ({ on: 'partial', free }));
  if (s.freeWhole > 0) out.push({ on: 'idle' });
  return out;
}

/** The node's slots after the ask is placed at `choice`. */
export function applyChoice(s: GpuSlots, ask: GpuAsk, choice: GpuChoice): GpuSlots {
  if (choice.on === 'whole') return { capacity: s.capacity, freeWhole: s.freeWhole - ask.count, partialFree: s.partialFree };
  if (choice.on === 'idle') {
    const left = WHOLE - ask.milli;
    return { capacity: s.capacity, freeWhole: s.freeWhole - 1, partialFree: left > 0 ? [...s.partialFree, left] : s.partialFree };
  }
  const partialFree = [...s.partialFree];
  const i = partialFree.indexOf(choice.free);
  const left = choice.free - ask.milli;
  if (left > 0) partialFree[i] = left;
  else partialFree.splice(i, 1);
  return { capacity: s.capacity, freeWhole: s.freeWhole, partialFree };
}

const freeShareAfter = (s: GpuSlots, ask: GpuAsk): number => (s.capacity === 0 ? 0 : (freeMilli(s) - ask.count * ask.milli) / (s.capacity * WHOLE));

export const binpack: Policy = {
  name: 'binpack',
  scale: 'absolute',
  choose(s, ask) {
    if (ask.count === 0 || ask.milli >= WHOLE) return { on: 'whole' };
    let best = Infinity;
    for (const f of s.partialFree) if (f >= ask.milli && f < best) best = f;
    return best < Infinity ? { on: 'partial', free: best } : { on: 'idle' };
  },
  score(node, ask) {
    return 10 * (1 - freeShareAfter(node.gpus, ask));
  },
};

export const spread: Policy = {
  name: 'spread',
  scale: 'absolute',
  choose(s, ask) {
    if (ask.count === 0 || ask.milli >= WHOLE) return { on: 'whole' };
    if (s.freeWhole > 0) return { on: 'idle' };
    let best = -1;
    for (const f of s.partialFree) if (f >= ask.milli && f > best) best = f;
    return { on: 'partial', free: best };
  },
  score(node, ask) {
    return 10 * freeShareAfter(node.gpus, ask);
  },
};

/** Free CPU and memory and GPU product of a node; a field left undefined is not checked. */
export interface HostFree {
  cpuFreeMilli?: number | undefined;
  memFreeMiB?: number | undefined;
  product?: string | undefined;
}

// modelAccepted tokenizes both strings; fragmentation asks the same (product, models)
// pairs millions of times in the simulator, so remember answers per models list.
const accepted = new WeakMap<readonly string[], Map<string, boolean>>();
function acceptedMemo(product: string, models: readonly string[]): boolean {
  let m = accepted.get(models);
  if (!m) accepted.set(models, (m = new Map()));
  let ok = m.get(product);
  if (ok === undefined) m.set(product, (ok = modelAccepted(product, models)));
  return ok;
}

/** Expected free milli on the node that an ask drawn from `mix` could not use.
 *
 * Per shape, as FGD: all free GPU when the node cannot take one copy of the shape (too
 * few GPUs with its share free, a GPU model it does not accept, or - unlike FGD, which
 * checks CPU only - too little free CPU or memory); else the free milli of GPUs too small
 * for it. Beyond FGD, for a GPU share that the node's GPUs could take n copies of but its
 * free CPU and memory only k: half of the GPU the shape could use times (1 - k/n) counts
 * too. (Counting all of it helped share-only traces and hurt multi-GPU and model-bound
 * ones; counting it for whole-GPU shapes hurt both: bench/results, README "Placement
 * quality".) Each shape counts weight x scarcity (scarcity.ts; absent: 1). Without host
 * figures or scarcity this is exactly FGD's measure. CPU-only shapes (count 0) are skipped: FGD counts all free GPU as their fragment on every node, which grows alike
 * for every placement of a pod. */
export function fragmentation(s: GpuSlots, mix: SizeMix, host?: HostFree): number {
  const free = freeMilli(s);
  if (free === 0) return 0;
  let total = 0;
  for (const t of mix) {
    if (t.count === 0) continue;
    // copies: how many of the shape the GPUs alone take; usable: milli on GPUs it fits.
    let copies = 0;
    let usable = 0;
    if (t.milli >= WHOLE) {
      copies = Math.floor(s.freeWhole / t.count);
      if (copies > 0) usable = s.freeWhole * WHOLE;
    } else {
      copies = s.freeWhole * Math.floor(WHOLE / t.milli);
      usable = s.freeWhole * WHOLE;
      for (const p of s.partialFree) {
        if (p >= t.milli) {
          copies += Math.floor(p / t.milli);
          usable += p;
        }
      }
    }
    const k = copies === 0 ? 0 : Math.min(copies, hostCopies(host, t));
    const w = t.weight * (t.scarcity ?? 1);
    if (k === 0) total += w * free;
    else if (t.milli >= WHOLE) total += w * (free - usable);
    else total += w * (free - usable + SHARE_HOST_PART * usable * (1 - k / copies));
  }
  return total;
}

/** Part of the GPU share capacity that free CPU/memory cannot back counted as fragment. */
const SHARE_HOST_PART = 0.5;

/** How many copies of the shape the node's free CPU and memory (and GPU model) allow. */
function hostCopies(h: HostFree | undefined, t: SizeMixEntry): number {
  if (!h) return Infinity;
  if (t.models && t.models.length > 0 && h.product !== undefined && !acceptedMemo(h.product, t.models)) return 0;
  let k = Infinity;
  if (t.cpuMilli && h.cpuFreeMilli !== undefined) k = Math.min(k, Math.floor(Math.max(0, h.cpuFreeMilli) / t.cpuMilli));
  if (t.memMiB && h.memFreeMiB !== undefined) k = Math.min(k, Math.floor(Math.max(0, h.memFreeMiB) / t.memMiB));
  return k;
}

// With no history yet, the ask itself is the best guess of what comes next.
const mixOrSelf = (mix: SizeMix, ask: GpuAsk): SizeMix => (mix.length > 0 ? mix : [{ count: ask.count, milli: ask.milli, weight: 1 }]);

const minus = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? undefined : a - (b ?? 0));

/** The GPU choice that grows the node's fragmentation least, and by how much.
 * `before` = fragmentation(node.gpus, mix, node) when the caller has it cached. */
export function bestByFragmentation(node: NodeView & { gpus: GpuSlots }, ask: GpuAsk, mix: SizeMix, before?: number): { choice: GpuChoice; delta: number } {
  const m = mixOrSelf(mix, ask);
  const s = node.gpus;
  if (before === undefined || mix.length === 0) before = fragmentation(s, m, node);
  const after: HostFree = {
    cpuFreeMilli: minus(node.cpuFreeMilli, ask.cpuMilli),
    memFreeMiB: minus(node.memFreeMiB, ask.memMiB),
    product: node.product,
  };
  let best: { choice: GpuChoice; delta: number } | null = null;
  for (const choice of choicesFor(s, ask)) {
    const delta = fragmentation(applyChoice(s, ask, choice), m, after) - before;
    if (!best || delta < best.delta) best = { choice, delta };
  }
  return best ?? { choice: { on: 'whole' }, delta: 0 };
}

/** Width of a score level, in milli-GPU of growth (the sigmoid's scale; FGD's plugin
 * uses 1000 with its own mix weights). Tuned on the four shared openb lists (README
 * "Placement quality"). */
export const FRAGMENTATION_LEVEL_MILLI = 4000;

/** How many milli of fragmentation growth one milli of newly stranded GPU counts as. */
export const STRANDING_CHARGE = 2;

/** CPU and memory the mix's GPU shapes ask per whole GPU (pod-weighted); undefined when
 * no shape carries the figure. */
export interface HostPerGpu {
  cpuMilli?: number | undefined;
  memMiB?: number | undefined;
}

// The mix changes far less often than nodes are scored (the simulator's is fixed; the
// extender's cache hands out one array until the next GPU pod is seen).
const perGpuOfMix = new WeakMap<SizeMix, HostPerGpu>();

/** CPU and memory per GPU of the mix's GPU shapes, each over the shapes that name it. */
export function hostPerGpu(mix: SizeMix): HostPerGpu {
  let out = perGpuOfMix.get(mix);
  if (out) return out;
  let cpu = 0;
  let cpuGpus = 0;
  let mem = 0;
  let memGpus = 0;
  for (const t of mix) {
    if (t.count === 0) continue;
    const gpus = (t.weight * t.count * t.milli) / WHOLE;
    if (t.cpuMilli !== undefined) {
      cpu += t.weight * t.cpuMilli;
      cpuGpus += gpus;
    }
    if (t.memMiB !== undefined) {
      mem += t.weight * t.memMiB;
      memGpus += gpus;
    }
  }
  out = { cpuMilli: cpuGpus > 0 ? cpu / cpuGpus : undefined, memMiB: memGpus > 0 ? mem / memGpus : undefined };
  perGpuOfMix.set(mix, out);
  return out;
}

/** Free GPU milli that the free CPU or memory cannot back at `perGpu` (the larger
 * shortfall of the two); a figure the node or the mix lacks is not counted. */
export function strandedMilli(freeGpuMilli: number, host: HostFree, perGpu: HostPerGpu): number {
  let backed = Infinity;
  if (perGpu.cpuMilli && host.cpuFreeMilli !== undefined) backed = Math.min(backed, (Math.max(0, host.cpuFreeMilli) / perGpu.cpuMilli) * WHOLE);
  if (perGpu.memMiB && host.memFreeMiB !== undefined) backed = Math.min(backed, (Math.max(0, host.memFreeMiB) / perGpu.memMiB) * WHOLE);
  return Math.max(0, freeGpuMilli - backed);
}

/** How much GPU placing the ask strands on the node (0 when it strands none or frees some:
 * crediting that would pull pods onto CPU-poor nodes, which measured worse). */
export function strandingGrowth(node: NodeView & { gpus: GpuSlots }, ask: GpuAsk, mix: SizeMix): number {
  const perGpu = hostPerGpu(mix);
  if (perGpu.cpuMilli === undefined && perGpu.memMiB === undefined) return 0;
  const free = freeMilli(node.gpus);
  const before = strandedMilli(free, node, perGpu);
  const after = strandedMilli(
    free - ask.count * ask.milli,
    { cpuFreeMilli: minus(node.cpuFreeMilli, ask.cpuMilli), memFreeMiB: minus(node.memFreeMiB, ask.memMiB) },
    perGpu,
  );
  return Math.max(0, after - before);
}

/** Score (criterion 1) and GPU choice (criterion 3) of the fragmentation policy: an
 * integer 0..100, 50 when neither fragmentation nor stranded GPU grows. */
export function fragmentationPlacement(node: NodeView & { gpus: GpuSlots }, ask: GpuAsk, mix: SizeMix, before?: number): { choice: GpuChoice; score: number } {
  const { choice, delta } = bestByFragmentation(node, ask, mix, before);
  // With no history the mix names no CPU or memory, and nothing counts as stranded.
  const growth = delta + STRANDING_CHARGE * strandingGrowth(node, ask, mix);
  return { choice, score: Math.trunc(100 / (1 + Math.exp(growth / FRAGMENTATION_LEVEL_MILLI))) };
}

export const fragmentationAware: Policy = {
  name: 'fragmentation',
  scale: 'levels',
  choose(s, ask, mix, host) {
    // With the host figures this is the choice score() made (fragmentationPlacement): the
    // bind then takes the GPU prioritize scored the node by.
    const node = { name: '', product: host?.product ?? '', unusable: null, gpus: s, cpuFreeMilli: host?.cpuFreeMilli, memFreeMiB: host?.memFreeMiB };
    return bestByFragmentation(node, ask, mix).choice;
  },
  score(node, ask, mix) {
    return fragmentationPlacement(node, ask, mix).score;
  },
};

export const POLICY_BY_NAME: Record<PolicyName, Policy> = {
  binpack,
  spread,
  fragmentation: fragmentationAware,
};

/** Scales raw policy scores of the candidate nodes to kube-scheduler's 0..10 integers:
 *   absolute - already 0..10: rounded and clamped;
 *   relative - min-max over the candidates;
 *   levels   - integer levels: the best candidate 10, one less per level below it, at
 *              least 0. (Min-max let one far-off candidate squeeze every other into the
 *              same integer, and kube-scheduler's LeastAllocated then chose among them:
 *              multigpu50 through kube-scheduler at weight 10 left 4.08 % unallocated,
 *              2.64 % with levels; README "Placement quality".)
 * Equal scores everywhere: 5. */
export function toExtenderScores(raw: readonly number[], scale: Policy['scale']): number[] {
  if (scale === 'absolute') return raw.map((r) => Math.max(0, Math.min(10, Math.round(r))));
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of raw) {
    if (r < lo) lo = r;
    if (r > hi) hi = r;
  }
  if (!(hi > lo)) return raw.map(() => 5);
  if (scale === 'levels') return raw.map((r) => Math.max(0, Math.round(10 - (hi - r))));
  return raw.map((r) => Math.round((10 * (r - lo)) / (hi - lo)));
}
