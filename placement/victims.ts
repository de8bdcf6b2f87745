// Victim choice for best-effort preemption: which pods on each candidate node give their
// GPUs back to a guaranteed pod, or why the node is dropped. Pure: the extender
// (scheduler/preempt.ts) builds the inputs from the cluster cache and kube-scheduler's
// proposal; tests build them by hand.
//
// Victim units. Only best-effort pods of lower priority than the preemptor that hold GPUs
// of the asked resource and are not already terminating can be victims. A pod of a gang
// (sluice.io/gang-size > 1) is never taken alone: the gang's pods on the node form one
// unit, which frees the GPUs those pods hold on this node but costs the GPUs of the whole
// gang on every node (a gang that loses one pod has lost all its work). A gang lying wholly
// on the node therefore costs what it frees, like a single pod; a gang spread over nodes
// costs more than it frees here and is chosen only when nothing cheaper frees enough.
//
// Overdue victims. A best-effort pod that has run past its time (past its queue's
// maxDuration, or past its own declared sluice.io/expected-duration, whichever is shorter)
// is overdue: its time limit is what lets it be reclaimed first (rule 1 below). A gang unit
// is overdue when every one of its pods on the node is.
//
// GPU shares (nodes whose GPUs HAMi's device plugin splits, placement/shares.ts): a victim
// frees the memory, cores and slot it uses on each GPU, and costs its GPU-equivalents (a
// pod of a quarter GPU costs 0.25). What the preemptor needs is not a count of GPUs but
// room on some GPU, so the set is searched by fit() on the GPUs without the victims' uses
// (shareVictims below); the order of sets is the same.
import { fit } from './fit.js';
import { gpusToMilli, milliToGpus, slotsOfDevices, withoutUses, type DeviceUse } from './shares.js';
import type { GpuAsk, NodeView } from './types.js';

export interface VictimCandidate {
  uid: string;
  /** Only `best-effort` pods are ever victims. */
  qos: 'guaranteed' | 'best-effort' | 'unmanaged';
  /** GPUs of the asked resource this pod holds on this node (devices; a GPU share is 1). */
  gpus: number;
  /** What those GPUs cost when taken back, in GPUs: a GPU share its fraction of a GPU
   * (ClusterCache.gpuEquivalents). Absent = `gpus`. */
  equivalents?: number;
  /** The shares it holds on the node's GPUs (HAMi's device list); absent for whole GPUs. */
  uses?: readonly DeviceUse[];
  priority: number;
  /** Start time in ms since the epoch (pod status.startTime, else its creation). */
  startedAt: number;
  /** Already being deleted: its GPUs are on their way back and may be promised elsewhere. */
  terminating: boolean;
  /** Its gang when sluice.io/gang-size > 1: key namespace/job, GPUs of all its pods on all
   * nodes (GPU shares as fractions). */
  gang: { key: string; gpus: number } | null;
  /** Running past its queue's maxDuration or its declared expected duration (see the file comment). */
  overdue: boolean;
}

export interface NodeCandidates {
  /** The node now, its victims still counted as using their GPUs. */
  view: NodeView;
  /** Pods on the node that may be considered (the extender passes every pod it knows there). */
  pods: readonly VictimCandidate[];
  /** UIDs kube-scheduler proposed on this node (used when GPUs are not what is short). */
  proposed: readonly string[];
}

export interface Preemptor {
  ask: GpuAsk;
  priority: number;
}

/** A chosen victim set: what it frees on its node and what it costs. */
export interface VictimSet {
  node: string;
  /** Victim UIDs, sorted. */
  uids: string[];
  /** GPUs the victims hold on this node (GPU shares as fractions of a GPU). */
  freed: number;
  /** GPUs lost: victims' GPUs, whole gangs counted with all their pods (GPU shares as
   * fractions of a GPU). */
  takenBack: number;
  /** The part of takenBack from victims that are not overdue (still within their time). */
  takenBackInTime: number;
  /** Highest priority among the victims. */
  maxPriority: number;
  /** Earliest start among the victims (ms). */
  earliestStart: number;
}

export interface VictimChoice {
  /** The best node with its victims; empty when no node can free enough. */
  kept: VictimSet[];
  /** Nodes dropped, with the reason in words. */
  dropped: Array<{ node: string; reason: string }>;
}

/**
 * Victim set order, best first:
 *  1. fewer GPUs taken back from victims still within their time (overdue ones, past their
 *     queue's maxDuration or their declared expected duration, are reclaimed first),
 *  2. fewer GPUs taken back (whole gangs counted with all their pods; a GPU share counts
 *     its GPU-equivalents, so two pods of 0.25 lose less than one of 0.75),
 *  3. lower highest victim priority,
 *  4. later earliest victim start (the longest-running victim has run the shortest),
 *  5. fewer pods,
 *  6. smaller sorted list of UIDs (only to make the choice deterministic).
 */
export function compareVictimSets(a: VictimSet, b: VictimSet): number {
  if (a.takenBackInTime !== b.takenBackInTime) return a.takenBackInTime - b.takenBackInTime;
  if (a.takenBack !== b.takenBack) return a.takenBack - b.takenBack;
  if (a.maxPriority !== b.maxPriority) return a.maxPriority - b.maxPriority;
  if (a.earliestStart !== b.earliestStart) return b.earliestStart - a.earliestStart;
  if (a.uids.length !== b.uids.length) return a.uids.length - b.uids.length;
  return compareUidLists(a.uids, b.uids);
}

function compareUidLists(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length - b.length;
}

/**
 * Per node the best victim set by compareVictimSets, or why the node is dropped; then the
 * best node only. kube-scheduler picks among the nodes it gets back by its own rules (which
 * do not weigh GPUs) and does not say which it picked, so sluice returns one node: the
 * preemption that happens is then the one it chose and records.
 */
export function chooseVictims(preemptor: Preemptor, nodes: readonly NodeCandidates[]): VictimChoice {
  const sets: VictimSet[] = [];
  const dropped: VictimChoice['dropped'] = [];
  for (const n of nodes) {
    const r = chooseOnNode(preemptor, n);
    if ('reason' in r) dropped.push({ node: n.view.name, reason: r.reason });
    else sets.push(r);
  }
  // Equal sets on two nodes cannot happen (UIDs differ); the node name only keeps the sort total.
  sets.sort((a, b) => compareVictimSets(a, b) || (a.node < b.node ? -1 : 1));
  const [best, ...rest] = sets;
  for (const s of rest) dropped.push({ node: s.node, reason: `node ${best!.node} loses less (${describe(best!)}; here ${describe(s)})` });
  return { kept: best ? [best] : [], dropped };
}

function describe(s: VictimSet): string {
  const overdue = milliToGpus(gpusToMilli(s.takenBack) - gpusToMilli(s.takenBackInTime));
  return `${s.uids.length} pod${s.uids.length === 1 ? '' : 's'}, ${s.takenBack} GPUs taken back${overdue > 0 ? ` (${overdue} from overdue pods)` : ''}`;
}

export interface VictimUnit {
  /** UIDs of the pod, or of a gang's pods on this node. */
  uids: string[];
  /** Devices freed on this node (whole GPUs: the count the cover needs). */
  frees: number;
  /** GPUs freed on this node, GPU shares as fractions. */
  freesGpus: number;
  /** GPUs lost (a gang's whole total), GPU shares as fractions. */
  cost: number;
  priority: number;
  start: number;
  overdue: boolean;
  /** The shares it frees on the node's GPUs. */
  uses: DeviceUse[];
}

/** The victim units of a node (see the file comment), sorted by their smallest UID. */
export function victimUnits(preemptor: Preemptor, pods: readonly VictimCandidate[]): VictimUnit[] {
  const gangs = new Map<string, VictimUnit>();
  const units: VictimUnit[] = [];
  for (const p of pods) {
    if (!isVictim(preemptor, p)) continue;
    const worth = p.equivalents ?? p.gpus;
    if (!p.gang) {
      units.push({
        uids: [p.uid],
        frees: p.gpus,
        freesGpus: worth,
        cost: worth,
        priority: p.priority,
        start: p.startedAt,
        uses: [...(p.uses ?? [])],
        overdue: p.overdue,
      });
      continue;
    }
    const g = gangs.get(p.gang.key);
    if (!g) {
      const u = {
        uids: [p.uid],
        frees: p.gpus,
        freesGpus: worth,
        cost: p.gang.gpus,
        priority: p.priority,
        start: p.startedAt,
        uses: [...(p.uses ?? [])],
        overdue: p.overdue,
      };
      gangs.set(p.gang.key, u);
      units.push(u);
    } else {
      g.uids.push(p.uid);
      g.frees += p.gpus;
      g.freesGpus = milliToGpus(gpusToMilli(g.freesGpus) + gpusToMilli(worth));
      g.priority = Math.max(g.priority, p.priority);
      g.start = Math.min(g.start, p.startedAt);
      g.overdue &&= p.overdue;
      g.uses.push(...(p.uses ?? []));
    }
  }
  for (const u of units) {
    u.uids.sort();
    u.cost = Math.max(u.cost, u.freesGpus); // a gang's total can lag behind the pods seen here
  }
  return units.sort((a, b) => (a.uids[0]! < b.uids[0]! ? -1 : 1));
}

const isVictim = (preemptor: Preemptor, p: VictimCandidate): boolean =>
  p.qos === 'best-effort' && p.gpus > 0 && !p.terminating && p.priority < preemptor.priority;

function chooseOnNode(preemptor: Preemptor, n: NodeCandidates): VictimSet | { reason: string } {
  const node = n.view.name;
  const misfit = fit(n.view, preemptor.ask);
  if (misfit && !misfit.resolvable) return { reason: misfit.reason };
  if (!misfit) {
    // GPUs are not short here: kube-scheduler preempts for CPU, memory or the like. Its
    // own victims may go only if every one of them is a best-effort pod sluice may take.
    const byUid = new Map(n.pods.map((p) => [p.uid, p]));
    const ok =
      n.proposed.length > 0 &&
      n.proposed.every((u) => {
        const p = byUid.get(u);
        return p !== undefined && p.qos === 'best-effort' && !p.terminating && p.priority < preemptor.priority;
      });
    if (!ok) return { reason: `node ${node} has the GPUs the pod needs; kube-scheduler's other victims there are not all best-effort pods` };
    const pods = n.proposed.map((u) => byUid.get(u)!);
    return toSet(node, victimUnits(preemptor, pods));
  }
  const units = victimUnits(preemptor, n.pods);
  if (preemptor.ask.shares && n.view.gpus?.devices) return shareVictims(preemptor.ask, n.view, units);
  const need = preemptor.ask.count - (n.view.gpus?.freeWhole ?? 0);
  const chosen = bestCover(units, need);
  if (!chosen) {
    const most = units.reduce((s, u) => s + u.frees, 0);
    return { reason: `node ${node}: best-effort pods hold ${most} ${preemptor.ask.resource} there, ${need} more must be freed` };
  }
  return toSet(node, chosen);
}

function toSet(node: string, units: readonly VictimUnit[]): VictimSet {
  const uids = units.flatMap((u) => u.uids).sort();
  return {
    node,
    uids,
    freed: milliToGpus(units.reduce((s, u) => s + gpusToMilli(u.freesGpus), 0)),
    takenBack: milliToGpus(units.reduce((s, u) => s + gpusToMilli(u.cost), 0)),
    takenBackInTime: milliToGpus(units.reduce((s, u) => s + (u.overdue ? 0 : gpusToMilli(u.cost)), 0)),
    maxPriority: units.reduce((m, u) => Math.max(m, u.priority), -Infinity),
    earliestStart: units.reduce((m, u) => Math.min(m, u.start), Infinity),
  };
}

// ---- search --------------------------------------------------------------------------
// The set of units that frees at least `need` and is smallest by compareVictimSets, found
// without trying every subset: rules 1, 2 (and 5) with a knapsack-style cover over GPU
// counts, scored (GPUs in time, GPUs, pods) in that order; rules 3 and 4 by the tightest
// priority and start bounds that still reach the best GPU counts; rule 6 by fixing units one
// by one in UID order. test/unit/victims.test.ts checks it against every subset of random
// nodes.

type Score = [inTimeMilli: number, costMilli: number, pods: number];
const better = (a: Score, b: Score | null): boolean => b === null || a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])));
const sameCost = (a: Score | null, b: Score): boolean => a !== null && a[0] === b[0] && a[1] === b[1];
const same = (a: Score | null, b: Score): boolean => sameCost(a, b) && a![2] === b[2];

/** Least (GPUs in time, GPUs, pods) of a set from `allowed` that contains `forced` and frees >= need. */
function minCover(units: readonly VictimUnit[], need: number, allowed: readonly boolean[], forced: readonly boolean[]): Score | null {
  const dp: Array<Score | null> = new Array<Score | null>(need + 1).fill(null);
  let f0 = 0;
  const s0: Score = [0, 0, 0];
  units.forEach((u, i) => {
    if (!forced[i]) return;
    f0 += u.frees;
    s0[0] += u.overdue ? 0 : gpusToMilli(u.cost);
    s0[1] += gpusToMilli(u.cost);
    s0[2] += u.uids.length;
  });
  dp[Math.min(need, f0)] = s0;
  units.forEach((u, i) => {
    if (!allowed[i] || forced[i]) return;
    for (let f = need; f >= 0; f--) {
      const from = dp[f];
      if (!from) continue;
      const to = Math.min(need, f + u.frees);
      const s: Score = [from[0] + (u.overdue ? 0 : gpusToMilli(u.cost)), from[1] + gpusToMilli(u.cost), from[2] + u.uids.length];
      if (better(s, dp[to] ?? null)) dp[to] = s;
    }
  });
  return dp[need] ?? null;
}

function bestCover(units: readonly VictimUnit[], need: number): VictimUnit[] | null {
  const none = units.map(() => false);
  let allowed = units.map(() => true);
  const best = minCover(units, need, allowed, none);
  if (!best) return null;
  const reaches = (a: boolean[]): boolean => sameCost(minCover(units, need, a, none), best);
  // Rule 3: the lowest priority bound that still reaches the best GPU counts (rules 1 and 2).
  for (const p of [...new Set(units.map((u) => u.priority))].sort((a, b) => a - b)) {
    const a = units.map((u, i) => allowed[i]! && u.priority <= p);
    if (reaches(a)) {
      allowed = a;
      break;
    }
  }
  // Rule 4: the latest start bound that still does.
  for (const t of [...new Set(units.map((u) => u.start))].sort((a, b) => b - a)) {
    const a = units.map((u, i) => allowed[i]! && u.start >= t);
    if (reaches(a)) {
      allowed = a;
      break;
    }
  }
  const target = minCover(units, need, allowed, none)!; // rule 5 within the bounds
  // Rule 6: take each unit, in UID order, when an equally good set still contains it.
  const forced = units.map(() => false);
  for (let i = 0; i < units.length; i++) {
    if (!allowed[i]) continue;
    forced[i] = true;
    const s = minCover(units, need, allowed, forced);
    if (!same(s, target)) {
      forced[i] = false;
      allowed[i] = false;
    }
  }
  return units.filter((_, i) => forced[i]);
}

// ---- GPU shares ------------------------------------------------------------------------
// The best set by compareVictimSets among those after which the preemptor fits the node's
// GPUs (fit() on the GPUs without the victims' uses; CPU and memory are not what
// preemption is asked for here, as in the count cover above). Search: branch and bound over
// the units, cheapest first, never below a set that already fits (a superset costs more)
// nor above the best set's GPUs in time (rule 1); so every set that could be best is
// compared, rules 2-6 included. A preemptor of one share of one GPU (the usual case) needs room on one GPU, and
// only victims on that GPU make it: the search then runs per GPU on the units there, which
// keeps it small (at most the GPU's slots). Past SHARE_SEARCH_STEPS fit checks on a node
// the best set found so far is taken.

/** Fit checks one node's search may spend (a few ms); the search is exact within it. */
export const SHARE_SEARCH_STEPS = 20_000;

function shareVictims(ask: GpuAsk, view: NodeView, units: readonly VictimUnit[]): VictimSet | { reason: string } {
  const devices = view.gpus!.devices!;
  const gpuOnly: GpuAsk = { resource: ask.resource, count: ask.count, milli: ask.milli, models: ask.models, ...(ask.shares ? { shares: ask.shares } : {}) };
  const fitsWithout = (chosen: readonly VictimUnit[]): boolean =>
    fit(
      {
        ...view,
        gpus: slotsOfDevices(
          withoutUses(
            devices,
            chosen.flatMap((u) => u.uses),
          ),
        ),
      },
      gpuOnly,
    ) === null;
  if (!fitsWithout(units)) {
    const most = milliToGpus(units.reduce((s, u) => s + gpusToMilli(u.freesGpus), 0));
    const still = fit(
      {
        ...view,
        gpus: slotsOfDevices(
          withoutUses(
            devices,
            units.flatMap((u) => u.uses),
          ),
        ),
      },
      gpuOnly,
    );
    return {
      reason: `node ${view.name}: best-effort pods hold ${most} ${ask.resource} there, and without them ${still?.reason.replace(/^node [^:]+: /, '') ?? 'it still does not fit'}`,
    };
  }
  const shares = ask.shares ?? [];
  const oneGpu = shares.length === 1 && shares[0]!.count === 1;
  const groups = oneGpu ? devices.map((d) => units.filter((u) => u.uses.some((x) => x.uuid === d.uuid))) : [units];
  const budget = { steps: SHARE_SEARCH_STEPS };
  let best: VictimSet | null = null;
  for (const g of groups) {
    const s = cheapestSet(view.name, g, fitsWithout, best, budget);
    if (s && (!best || compareVictimSets(s, best) < 0)) best = s;
  }
  return best ?? { reason: `node ${view.name}: no set of best-effort pods there makes room` };
}

function cheapestSet(
  node: string,
  units: readonly VictimUnit[],
  fits: (chosen: readonly VictimUnit[]) => boolean,
  bound: VictimSet | null,
  budget: { steps: number },
): VictimSet | null {
  const order = [...units].sort((a, b) => gpusToMilli(a.cost) - gpusToMilli(b.cost) || (a.uids[0]! < b.uids[0]! ? -1 : 1));
  let best = bound;
  const chosen: VictimUnit[] = [];
  // The bound is rule 1's figure (GPUs in time), which only grows as units are added; a
  // set of more GPUs in all can still be better when fewer of them are in time.
  const visit = (i: number, inTimeMilli: number): void => {
    if (budget.steps <= 0) return;
    if (best && inTimeMilli > gpusToMilli(best.takenBackInTime)) return;
    budget.steps--;
    if (chosen.length > 0 && fits(chosen)) {
      const s = toSet(node, chosen);
      if (!best || compareVictimSets(s, best) < 0) best = s;
      return;
    }
    if (i >= order.length) return;
    budget.steps--;
    if (!fits([...chosen, ...order.slice(i)])) return; // the rest cannot make room either
    chosen.push(order[i]!);
    visit(i + 1, inTimeMilli + (order[i]!.overdue ? 0 : gpusToMilli(order[i]!.cost)));
    chosen.pop();
    visit(i + 1, inTimeMilli);
  };
  visit(0, 0);
  return best === bound ? null : best;
}
