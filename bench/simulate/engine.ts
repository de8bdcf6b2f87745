// One simulation run of the trace replay (method of the FGD paper's artifact, ATC '23):
// pods arrive one at a time in a seeded random order and never leave; the list is tuned
// to `inflation` (1.3) x cluster GPU capacity (see arrivals); a pod that fits no node
// fails and is skipped. Equal node scores go to a node order random per seed (TIE_RULES,
// as the artifact). Fit, scores and GPU choice are the pure placement code the extender
// uses (placement/): a share's GPU within its node is the one the extender's bind would
// pick (policyPick); this file only keeps the cluster state, GPU by GPU.
//
// Speed: a node's score for an ask shape changes only when that node changes, so scores
// are cached per (node, shape) and a node's row is dropped when a pod lands on it.
import { fit, fits } from '../../placement/fit.js';
import {
  POLICY_BY_NAME,
  applyChoice,
  binpack,
  fragmentation,
  fragmentationAware,
  fragmentationPlacement,
  spread,
  toExtenderScores,
  type GpuChoice,
  type Policy,
} from '../../placement/policies.js';
import { placeContainers, policyPick, type GpuDevice } from '../../placement/shares.js';
import { makeBestFitPolicy, makeRandomPolicy } from '../../placement/reference-policies.js';
import { fgdFragmentation, fgdPlace, fgdTypicalShapes, type FgdNode, type FgdPod } from '../../placement/fgd-reference.js';
import { sizeMix } from '../../placement/size-mix.js';
import { nodeClasses, withScarcity, type NodeClass } from '../../placement/scarcity.js';
import { WHOLE, type GpuAsk, type GpuSlots, type NodeView, type SizeMix } from '../../placement/types.js';
import { kubeSchedulerTotal } from '../../placement/kube-scores.js';
import { bestFeasible } from '../../placement/best-nodes.js';
import type { TraceNode, TracePod } from './trace.js';

export const SIM_POLICIES = ['fragmentation', 'fgd', 'binpack', 'spread', 'best-fit', 'random'] as const;
export type SimPolicyName = (typeof SIM_POLICIES)[number];

/** Small seeded PRNG (mulberry32): uniform in [0, 1). */
/** Rules for equal node scores:
 * - shuffled: the smallest name after the FGD artifact renamed its nodes. Its simulator
 *   (pkg/simulator/simulator.go syncClusterResourceList) sorts the nodes by name and
 *   prefixes each with its place in a random permutation (`rand.Perm`, "%04d-"); its
 *   vendored scheduler (v1.20.5, generic_scheduler.go selectHost) then takes the smallest
 *   name. So ties go to a node order that is random per seed and fixed within the run.
 * - name: the smallest trace name (openb-node-0000 first). Not the artifact's rule: equal
 *   scores then fill nodes of one kind (neighbouring names) first.
 * - random: uniformly among the equal nodes, as kube-scheduler v1.28's selectHost. */
export const TIE_RULES = ['shuffled', 'name', 'random'] as const;
export type TieRule = (typeof TIE_RULES)[number];

/** Each node's place in the tie order of rule 'shuffled': a seeded random permutation. */
export function shuffledNodeRanks(count: number, rng: () => number): Int32Array {
  const rank = Int32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = rank[i]!;
    rank[i] = rank[j]!;
    rank[j] = t;
  }
  return rank;
}

export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const podGpuMilli = (p: TracePod): number => p.numGpu * p.gpuMilli;

/** The arrival sequence, as the FGD artifact builds it (pkg/simulator: SortClusterPods,
 * then TunePodsByNodeTotalResource with -tune 1.3): the pod list shuffled; then, while its
 * GPU demand exceeds `inflation` x capacity, a random pod removed; else pods drawn from the
 * list (in file order) at random appended until the next one would pass that target
 * (the artifact compares with the drawn pod's per-GPU share, kept here). */
export function arrivals(pods: readonly TracePod[], capacityMilli: number, inflation: number, rng: () => number): TracePod[] {
  const target = inflation * capacityMilli;
  const out = [...pods];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  let demand = out.reduce((s, p) => s + podGpuMilli(p), 0);
  if (demand > target) {
    while (demand > target && out.length > 0) {
      const [p] = out.splice(Math.floor(rng() * out.length), 1);
      demand -= podGpuMilli(p!);
    }
    return out;
  }
  if (!pods.some((p) => podGpuMilli(p) > 0)) return out;
  while (true) {
    const p = pods[Math.floor(rng() * pods.length)]!;
    if (demand + p.gpuMilli > target) break;
    out.push(p);
    demand += podGpuMilli(p);
  }
  return out;
}

/** The trace's GPU pod shapes (GPUs, share, CPU, memory, models) by frequency: FGD's target workload. */
export function traceSizeMix(pods: readonly TracePod[]): SizeMix {
  type Entry = { count: number; milli: number; cpuMilli: number; memMiB: number; models: string[]; weight: number };
  const tally = new Map<string, Entry>();
  for (const p of pods) {
    if (p.numGpu === 0) continue;
    const k = `${p.numGpu}/${p.gpuMilli}/${p.cpuMilli}/${p.memMiB}/${p.models.join('|')}`;
    const t = tally.get(k);
    if (t) t.weight++;
    else tally.set(k, { count: p.numGpu, milli: p.gpuMilli, cpuMilli: p.cpuMilli, memMiB: p.memMiB, models: p.models, weight: 1 });
  }
  return sizeMix([...tally.values()]);
}

/** The trace cluster's node classes, for the shapes' scarcity (placement/scarcity.ts); the
 * extender's cache builds the same from the nodes' allocatable figures. */
export const traceNodeClasses = (nodes: readonly TraceNode[]): NodeClass[] =>
  nodeClasses(nodes.map((n) => ({ gpus: n.gpus, product: n.model, cpuMilli: n.cpuMilli, memMiB: n.memMiB })));

export interface SimPoint {
  /** Arrived GPU demand, % of capacity (5, 10, ... 130). */
  arrivedPct: number;
  allocatedMilli: number;
  allocationPct: number;
  /** Capacity not allocated, in GPUs. */
  unallocatedGpus: number;
}

export interface SimResult {
  policy: SimPolicyName;
  seed: number;
  nodes: number;
  capacityMilli: number;
  arrived: number;
  placed: number;
  failed: number;
  failedGpuPods: number;
  points: SimPoint[];
  /** Where the unallocated GPU capacity sits when arrivals reach 100% (in GPUs). */
  unallocatedAt100: UnallocatedBreakdown | null;
  /** GPU-share pods placed, and how many of them went onto a GPU already in use. */
  sharePods: { placed: number; ontoUsedGpu: number };
  /** Each arrival's node and GPU indexes, in arrival order (with recordPlacements). */
  placements?: SimPlacement[];
  /** Placements whose feasibility and bookkeeping were checked (= placed). */
  checkedPlacements: number;
}

/** Where one arrival went: the node and the indexes of the GPUs it took (none for a
 * CPU-only pod); node null when it fit no node. */
export interface SimPlacement {
  node: string | null;
  gpus: number[];
}

export interface SimOptions {
  nodes: readonly TraceNode[];
  pods: readonly TracePod[];
  /** Replay `pods` in list order, as they are: no shuffle, no tuning to `inflation`. */
  asListed?: boolean;
  /** Keep every arrival's node and GPU indexes (SimResult.placements). */
  recordPlacements?: boolean;
  policy: SimPolicyName;
  seed: number;
  /** Size mix for the fragmentation policy; default: the pod list's own shapes, with
   * their scarcity on this cluster. */
  mix?: SizeMix;
  inflation?: number;
  stepPct?: number;
  /** Rank nodes as kube-scheduler does with sluice as its extender: the policy's 0..10
   * integers (toExtenderScores over the feasible nodes) x (100/10) x `weight`, plus
   * kube-scheduler's NodeResourcesFit (LeastAllocated) and BalancedAllocation scores at
   * their default weight 1 (placement/kube-scores.ts). Without it, nodes are ranked by the
   * policy's raw scores. */
  extenderScores?: { weight: number } | undefined;
  /** How equal node scores are broken (TIE_RULES): 'shuffled' (the default), 'name' or
   * 'random' (kube-scheduler v1.28; the default with extenderScores). */
  ties?: TieRule;
  /** With extenderScores: the extender's filter keeps only the `filterBest` feasible nodes
   * the policy ranks highest (its raw scores, equal scores to the smallest node name:
   * bestFeasible), as sluice's scheduler.filterBest does; kube-scheduler then scores those
   * alone. Applies to every policy alike (fgd and the reference policies too). */
  filterBest?: number | undefined;
  /** Replaces the named policy's scoring, to try variants (results keep the name). */
  custom?: (node: NodeView & { gpus: GpuSlots }, ask: GpuAsk, mix: SizeMix) => { choice: GpuChoice; score: number };
}

export interface UnallocatedBreakdown {
  /** Free shares of partly used GPUs. */
  partial: number;
  /** Idle GPUs on nodes with less than 4 CPUs or 16 GiB memory free. */
  idleStarved: number;
  /** Other idle GPUs. */
  idle: number;
}

function breakdown(views: readonly (NodeView & { gpus: GpuSlots })[]): UnallocatedBreakdown {
  const out = { partial: 0, idleStarved: 0, idle: 0 };
  for (const v of views) {
    for (const f of v.gpus.partialFree) out.partial += f / WHOLE;
    if ((v.cpuFreeMilli ?? 0) < 4000 || (v.memFreeMiB ?? 0) < 16384) out.idleStarved += v.gpus.freeWhole;
    else out.idle += v.gpus.freeWhole;
  }
  return out;
}

/** A node's score for an ask and where on the node it would go; `gpus`: the GPU indexes,
 * when the policy names them itself (fgd). */
type Placement = { choice: GpuChoice; score: number; gpus?: readonly number[] };

/** A trace node's GPUs as the live path's share code (placement/shares.ts) sees them:
 * 1000 MiB each, so that a share of m milli asks m MiB and a GPU's free share is its free
 * milli; compute is not asked and slots never run out. */
export function traceDevices(used: Int32Array, model: string): GpuDevice[] {
  return Array.from(used, (u, index) => ({
    uuid: String(index),
    index,
    type: model,
    numa: 0,
    memMiB: WHOLE,
    cores: 100,
    slots: WHOLE,
    usedMemMiB: u,
    usedCores: 0,
    usedSlots: u > 0 ? 1 : 0,
  }));
}

/** A trace node, empty, as the placement code sees it. */
export const traceView = (n: TraceNode): NodeView & { gpus: GpuSlots } => ({
  name: n.name,
  product: n.model,
  unusable: null,
  gpus: { capacity: n.gpus, freeWhole: n.gpus, partialFree: [] },
  cpuFreeMilli: n.cpuMilli,
  memFreeMiB: n.memMiB,
});

/** What a trace pod asks (one GPU resource, named 'gpu' here). */
export const traceAsk = (p: TracePod, resource = 'gpu'): GpuAsk => ({
  resource,
  count: p.numGpu,
  milli: p.numGpu === 0 ? 0 : p.gpuMilli,
  models: p.models,
  cpuMilli: p.cpuMilli,
  memMiB: p.memMiB,
});

/** The simulator's scoring of sluice's policy on one node: the function the extender's
 * prioritize runs (placement/policies.ts fragmentationAware.score), here with the node's
 * fragmentation before the placement cached. test/bench/extender-equality.test.ts holds
 * the two to the same ranking. */
export function sluiceScore(v: NodeView & { gpus: GpuSlots }, ask: GpuAsk, mix: SizeMix, before?: number): Placement {
  return fragmentationPlacement(v, ask, mix, before);
}

/** The slot choice of FGD's GPU pick (the GPUs themselves go with it, by index). */
function fgdChoice(node: FgdNode, ask: GpuAsk, gpus: readonly number[]): GpuChoice {
  if (ask.count === 0 || ask.milli >= WHOLE) return { on: 'whole' };
  const left = node.gpuLeft[gpus[0]!]!;
  return left === WHOLE ? { on: 'idle' } : { on: 'partial', free: left };
}

function makePolicy(name: Exclude<SimPolicyName, 'fragmentation' | 'fgd'>, nodes: readonly TraceNode[], rng: () => number): Policy {
  if (name === 'binpack') return binpack;
  if (name === 'spread') return spread;
  if (name === 'random') return makeRandomPolicy(rng);
  const max = (f: (n: TraceNode) => number): number => Math.max(1, ...nodes.map(f));
  return makeBestFitPolicy({ gpuMilli: max((n) => n.gpus * WHOLE), cpuMilli: max((n) => n.cpuMilli), memMiB: max((n) => n.memMiB) });
}

/** The lowest-index GPU(s) in the chosen state: where the reference policies' shares and
 * every whole-GPU ask go (the extender binds whole GPUs by count; the node's device plugin
 * picks them). */
function lowestInState(used: Int32Array, ask: GpuAsk, choice: GpuChoice): number[] {
  const want = choice.on === 'whole' ? ask.count : ask.count === 0 ? 0 : 1;
  const out: number[] = [];
  for (let g = 0; g < used.length && out.length < want; g++) {
    const u = used[g]!;
    if (choice.on === 'partial' ? WHOLE - u === choice.free : u === 0) out.push(g);
  }
  return out;
}

/** Puts the ask on GPUs `gpus` (occupancy per GPU, kept beside the slot multiset to check
 * it: invariants), checking that they are the state the scored choice names. */
function occupy(used: Int32Array, ask: GpuAsk, choice: GpuChoice, gpus: readonly number[], node: string): void {
  const want = choice.on === 'whole' ? ask.count : ask.count === 0 ? 0 : 1;
  if (gpus.length !== want || new Set(gpus).size !== want)
    throw new Error(`invariant: node ${node}: GPUs ${gpus.join(',')} for choice ${JSON.stringify(choice)} of ${want}`);
  for (const g of gpus) {
    const u = used[g];
    const ok = u !== undefined && (choice.on === 'partial' ? WHOLE - u === choice.free : u === 0);
    if (!ok)
      throw new Error(
        `invariant: node ${node}: GPU ${g} (${u === undefined ? 'none' : `${WHOLE - u} milli free`}) is not the choice ${JSON.stringify(choice)} the policy scored`,
      );
    used[g] = u + (choice.on === 'whole' ? WHOLE : ask.milli);
  }
}

function checkNode(v: NodeView & { gpus: GpuSlots }, used: Int32Array): void {
  let whole = 0;
  const partial: number[] = [];
  for (const u of used) {
    if (u > WHOLE) throw new Error(`invariant: GPU on ${v.name} overcommitted (${u} milli)`);
    if (u === 0) whole++;
    else if (u < WHOLE) partial.push(WHOLE - u);
  }
  const a = partial.sort((x, y) => x - y).join(',');
  const b = [...v.gpus.partialFree].sort((x, y) => x - y).join(',');
  if (whole !== v.gpus.freeWhole || a !== b) throw new Error(`invariant: slots of ${v.name} disagree with its GPUs`);
  if ((v.cpuFreeMilli ?? 0) < 0 || (v.memFreeMiB ?? 0) < 0) throw new Error(`invariant: CPU or memory of ${v.name} overcommitted`);
}

export function simulate(opts: SimOptions): SimResult {
  const { nodes, policy: policyName, seed } = opts;
  const inflation = opts.inflation ?? 1.3;
  const step = opts.stepPct ?? 5;
  const mix = opts.mix ?? withScarcity(traceSizeMix(opts.pods), traceNodeClasses(nodes));
  const capacityMilli = nodes.reduce((s, n) => s + n.gpus * WHOLE, 0);
  const order = opts.asListed ? [...opts.pods] : arrivals(opts.pods, capacityMilli, inflation, seededRandom(seed));
  const rng = seededRandom(seed ^ 0x9e3779b9);
  const other = policyName === 'fragmentation' || policyName === 'fgd' ? null : makePolicy(policyName, nodes, rng);
  // Which GPU a share goes to on its node: the live path's choice (policyPick, which the
  // extender's bind runs) for the policies the extender offers and best-fit; random draws
  // its choice once, when scoring, and fgd names its GPUs itself.
  const livePick: Policy | null = opts.custom
    ? null
    : policyName in POLICY_BY_NAME
      ? POLICY_BY_NAME[policyName as keyof typeof POLICY_BY_NAME]
      : policyName === 'best-fit'
        ? other
        : null;
  const fgdPod = (a: GpuAsk, gpuSpec: string): FgdPod => ({ cpuMilli: a.cpuMilli ?? 0, milli: a.milli, count: a.count, gpuType: gpuSpec });
  const fgdShapes =
    policyName === 'fgd'
      ? fgdTypicalShapes(opts.pods.map((p) => ({ cpuMilli: p.cpuMilli, milli: p.numGpu === 0 ? 0 : p.gpuMilli, count: p.numGpu, gpuType: p.gpuSpec })))
      : [];

  const views = nodes.map(traceView);
  const used = nodes.map((n) => new Int32Array(n.gpus));

  // Interned ask shapes and the per-(node, shape) cache of placements.
  const shapeIds = new Map<string, number>();
  const asks: GpuAsk[] = [];
  const fgdPods: FgdPod[] = [];
  const shapeOf = (p: TracePod): number => {
    const k = `${p.numGpu}/${p.gpuMilli}/${p.cpuMilli}/${p.memMiB}/${p.gpuSpec}`;
    let id = shapeIds.get(k);
    if (id === undefined) {
      id = asks.length;
      shapeIds.set(k, id);
      const ask = traceAsk(p);
      asks.push(ask);
      fgdPods.push(fgdPod(ask, p.gpuSpec));
    }
    return id;
  };
  const shapeIdx = order.map(shapeOf);
  const nShapes = asks.length;
  const cache: (Placement | undefined)[] = new Array(nodes.length * nShapes);
  const fragBefore = new Float64Array(nodes.length).fill(Number.NaN);

  const fgdNode = (n: number): FgdNode => ({
    cpuLeft: views[n]!.cpuFreeMilli ?? 0,
    gpuLeft: Array.from(used[n]!, (u) => WHOLE - u),
    gpuType: nodes[n]!.model,
  });
  const place = (n: number, ask: GpuAsk, s: number): Placement => {
    const v = views[n]!;
    if (opts.custom) return opts.custom(v, ask, mix);
    if (policyName === 'fgd') {
      const node = fgdNode(n);
      let before = fragBefore[n]!;
      if (Number.isNaN(before)) before = fragBefore[n] = fgdFragmentation(node, fgdShapes);
      const { score, gpus } = fgdPlace(node, fgdPods[s]!, fgdShapes, before);
      return { choice: fgdChoice(node, ask, gpus), score, gpus };
    }
    if (!other) {
      let before = fragBefore[n]!;
      if (Number.isNaN(before)) before = fragBefore[n] = fragmentation(v.gpus, mix, v);
      return sluiceScore(v, ask, mix, before);
    }
    return { choice: other.choose(v.gpus, ask, mix), score: other.score(v, ask, mix) };
  };

  // Equal node scores (TIE_RULES): ranked by their own scores, every policy gets the FGD
  // artifact's rule ('shuffled'), so all compete under the scheduler the published figures
  // come from. Through kube-scheduler (extenderScores) ties are drawn uniformly at random,
  // as v1.28's selectHost does.
  let ties = 0;
  const tieRule: TieRule = opts.ties ?? (opts.extenderScores ? 'random' : 'shuffled');
  const rank = tieRule === 'shuffled' ? shuffledNodeRanks(nodes.length, seededRandom(seed ^ 0x5bd1e995)) : null;
  const tieWins = (n: number, incumbent: number): boolean => {
    if (rank) return rank[n]! < rank[incumbent]!;
    if (tieRule === 'name') return nodes[n]!.name < nodes[incumbent]!.name;
    return rng() * ++ties < 1;
  };

  const points: SimPoint[] = [];
  let nextPct = step;
  let arrivedMilli = 0;
  let allocated = 0;
  let placed = 0;
  let failed = 0;
  let failedGpuPods = 0;
  let unallocatedAt100: UnallocatedBreakdown | null = null;
  const shares = { placed: 0, ontoUsedGpu: 0 };
  const record: SimPlacement[] | undefined = opts.recordPlacements ? [] : undefined;
  /** The GPU indexes the placement takes on node n. */
  const gpusOf = (n: number, ask: GpuAsk, p: Placement): number[] => {
    if (p.gpus) return [...p.gpus];
    if (livePick && ask.count === 1 && ask.milli < WHOLE) {
      const v = views[n]!;
      const host = { cpuFreeMilli: v.cpuFreeMilli, memFreeMiB: v.memFreeMiB, product: v.product };
      const pick = policyPick(livePick, mix, ask.resource, { host, cpuMilli: ask.cpuMilli, memMiB: ask.memMiB });
      const placed = placeContainers(traceDevices(used[n]!, nodes[n]!.model), [{ count: 1, memMiB: ask.milli, memPercent: 0, cores: 0 }], pick);
      if ('misfit' in placed) throw new Error(`invariant: the live path finds no GPU on ${v.name} for a ${ask.milli}m share: ${placed.misfit}`);
      return [Number(placed.uses[0]![0]!.uuid)];
    }
    return lowestInState(used[n]!, ask, p.choice);
  };
  for (let i = 0; i < order.length; i++) {
    const s = shapeIdx[i]!;
    const ask = asks[s]!;
    let best = -Infinity;
    let bestNode = -1;
    let bestPlacement: Placement | undefined;
    ties = 0;
    const feasible: number[] = [];
    const placements: Placement[] = [];
    for (let n = 0; n < views.length; n++) {
      if (!fits(views[n]!, ask)) continue;
      let p: Placement;
      if (policyName === 'random') {
        p = place(n, ask, s);
      } else {
        const k = n * nShapes + s;
        p = cache[k] ?? (cache[k] = place(n, ask, s));
      }
      if (opts.extenderScores) {
        feasible.push(n);
        placements.push(p);
        continue;
      }
      if (p.score > best) {
        best = p.score;
        bestNode = n;
        bestPlacement = p;
        ties = 1;
      } else if (p.score === best && tieWins(n, bestNode)) {
        // Equal scores: see tieWins.
        bestNode = n;
        bestPlacement = p;
      }
    }
    if (opts.extenderScores && feasible.length > 0) {
      let shown = feasible.map((_, j) => j);
      if (opts.filterBest && opts.filterBest > 0) {
        shown = bestFeasible(
          placements.map((p) => p.score),
          feasible.map((n) => nodes[n]!.name),
          opts.filterBest,
        );
      }
      const scaled = toExtenderScores(
        shown.map((j) => placements[j]!.score),
        other?.scale ?? fragmentationAware.scale,
      );
      for (let jj = 0; jj < shown.length; jj++) {
        const j = shown[jj]!;
        const n = feasible[j]!;
        const v = views[n]!;
        const load = {
          allocCpuMilli: nodes[n]!.cpuMilli,
          allocMemMiB: nodes[n]!.memMiB,
          reqCpuMilli: nodes[n]!.cpuMilli - (v.cpuFreeMilli ?? 0) + (ask.cpuMilli ?? 0),
          reqMemMiB: nodes[n]!.memMiB - (v.memFreeMiB ?? 0) + (ask.memMiB ?? 0),
        };
        const sc = kubeSchedulerTotal(load, scaled[jj]!, opts.extenderScores.weight);
        if (sc > best) {
          best = sc;
          bestNode = feasible[j]!;
          bestPlacement = placements[j];
          ties = 1;
        } else if (sc === best && tieWins(feasible[j]!, bestNode)) {
          bestNode = feasible[j]!;
          bestPlacement = placements[j];
        }
      }
    }
    if (bestNode < 0 || !bestPlacement) {
      failed++;
      if (ask.count > 0) failedGpuPods++;
      record?.push({ node: null, gpus: [] });
    } else {
      const v = views[bestNode]!;
      const misfit = fit(v, ask);
      if (misfit) throw new Error(`invariant: infeasible placement chosen: ${misfit.reason}`);
      const gpus = gpusOf(bestNode, ask, bestPlacement);
      if (ask.count === 1 && ask.milli < WHOLE) {
        shares.placed++;
        if (used[bestNode]![gpus[0]!]! > 0) shares.ontoUsedGpu++;
      }
      occupy(used[bestNode]!, ask, bestPlacement.choice, gpus, v.name);
      record?.push({ node: v.name, gpus });
      if (ask.count > 0) v.gpus = applyChoice(v.gpus, ask, bestPlacement.choice);
      v.cpuFreeMilli! -= ask.cpuMilli ?? 0;
      v.memFreeMiB! -= ask.memMiB ?? 0;
      checkNode(v, used[bestNode]!);
      allocated += ask.count * ask.milli;
      placed++;
      cache.fill(undefined, bestNode * nShapes, (bestNode + 1) * nShapes);
      fragBefore[bestNode] = Number.NaN;
    }
    arrivedMilli += ask.count * ask.milli;
    while (nextPct <= inflation * 100 + 1e-9 && arrivedMilli >= (nextPct / 100) * capacityMilli) {
      points.push({
        arrivedPct: nextPct,
        allocatedMilli: allocated,
        allocationPct: (100 * allocated) / capacityMilli,
        unallocatedGpus: (capacityMilli - allocated) / WHOLE,
      });
      if (Math.abs(nextPct - 100) < 1e-9) unallocatedAt100 = breakdown(views);
      nextPct += step;
    }
  }
  return {
    policy: policyName,
    seed,
    nodes: nodes.length,
    capacityMilli,
    arrived: order.length,
    placed,
    failed,
    failedGpuPods,
    points,
    unallocatedAt100,
    sharePods: shares,
    ...(record ? { placements: record } : {}),
    checkedPlacements: placed,
  };
}
