// Real capacity for the queue manager: can every pod of a unit be placed on the nodes as
// they are, right now? Pure. Each pod is checked with placement/'s fit() (model, health,
// cordon, size) plus its node selector and required node affinity, and the placement is
// kept for the rest of the evaluation, so two units never count the same free GPUs.
//
// Where a pod is modelled to land, in order:
// 1. the node with the fewest idle GPUs that still fit it (binpack), as kube-scheduler
//    places it when some node fits without preemption;
// 2. for guaranteed pods only, when no node has enough idle GPUs: the node with the fewest
//    idle + best-effort GPUs that fit, since kube-scheduler then preempts best-effort pods
//    through the extender. Best-effort pods see only idle GPUs.
//
// GPU shares (HAMi's device plugin): on a node that registers its GPUs, a pod asking
// shares is fitted on each GPU's memory, cores and slots by the same fit() as the
// extender's filter, and placed on the fullest GPU that takes it (binpack within the
// node); guaranteed pods may count the GPUs' best-effort shares as free, as above.
//
// Cost: nodes are indexed per resource by free GPUs, so one pod's check looks at the
// nodes with just enough room first and stops at the first that fits; a shape that found
// no node is remembered until something changes.
//
// A model can live across passes (the ETA forecast, queue/forecast.ts): what a pass placed
// stays placed, takenBy() says what each placed pod took, and giveBack() returns GPUs when a
// job ends, so a pass after a job end costs the changed nodes, not a rebuild of every node
// (and what the model learned about shapes that never fit, or nodes a shape could use,
// stays valid).
import { fit, type Misfit } from '../placement/fit.js';
import { nodeMatches } from '../placement/node-selector.js';
import {
  deviceMisfit,
  freeShareMilli,
  memText,
  placeContainers,
  slotsOfDevices,
  withoutUses,
  type DeviceUse,
  type GpuDevice,
  type PickGpu,
} from '../placement/shares.js';
import { WHOLE, type GpuAsk, type NodeView } from '../placement/types.js';
import type { QosClass } from '../webhooks/labels.js';
import type { UnitPod } from './units.js';

export interface CapacityNode {
  name: string;
  product: string;
  unusable: string | null;
  labels: Readonly<Record<string, string>>;
  /** Per managed resource: allocatable, idle (free) and held by best-effort pods. */
  capacity: Record<string, number>;
  free: Record<string, number>;
  bestEffort: Record<string, number>;
  /** GPUs HAMi's device plugin splits, for the share resource: each GPU with what is placed
   * on it, and the uses of best-effort pods among that (reclaimable by guaranteed pods). */
  shared?: SharedGpus;
}

export interface SharedGpus {
  resource: string;
  devices: readonly GpuDevice[];
  bestEffortUses: readonly DeviceUse[];
  /** Why no GPU of the node is usable (all excluded), as the extender's view says; else null. */
  unusable: string | null;
}

/** The fitting GPU with the least free share (binpack within the node), lowest index on a tie. */
const fullestFit: PickGpu = (candidates, a) => {
  let best: GpuDevice | null = null;
  for (const d of candidates) {
    if (deviceMisfit(d, a) !== null) continue;
    if (!best || freeShareMilli(d) < freeShareMilli(best) || (freeShareMilli(d) === freeShareMilli(best) && d.index < best.index)) best = d;
  }
  return best;
};

const emptyNode = (n: CapacityNode): CapacityNode => ({
  ...n,
  free: { ...n.capacity },
  bestEffort: {},
  ...(n.shared
    ? { shared: { ...n.shared, devices: n.shared.devices.map((d) => ({ ...d, usedMemMiB: 0, usedCores: 0, usedSlots: 0 })), bestEffortUses: [] } }
    : {}),
});

/**
 * The node's shared GPUs once a pod holding `shares` is gone. The rules:
 * 1. a best-effort pod's use is freed only while it is still among the node's best-effort
 *    uses (once per use), and leaves that list: a guaranteed pod modelled to reclaim it has
 *    already taken it off the GPU, so freeing it again would free another pod's share;
 * 2. a guaranteed pod's uses are freed as they are;
 * 3. no GPU's used memory, cores or slots go below zero (a use the model never had).
 */
export function freeShares(shared: SharedGpus, shares: { uses: readonly DeviceUse[]; bestEffort: boolean }): SharedGpus {
  let gone: readonly DeviceUse[] = shares.uses;
  let bestEffortUses = shared.bestEffortUses;
  if (shares.bestEffort) {
    const left = [...bestEffortUses];
    const found: DeviceUse[] = [];
    for (const u of shares.uses) {
      const i = left.findIndex((b) => b.uuid === u.uuid && b.memMiB === u.memMiB && b.cores === u.cores);
      if (i < 0) continue;
      found.push(u);
      left.splice(i, 1);
    }
    gone = found;
    bestEffortUses = left;
  }
  if (gone.length === 0) return bestEffortUses === shared.bestEffortUses ? shared : { ...shared, bestEffortUses };
  const devices = withoutUses(shared.devices, gone).map((d) =>
    d.usedMemMiB >= 0 && d.usedCores >= 0 && d.usedSlots >= 0
      ? d
      : { ...d, usedMemMiB: Math.max(0, d.usedMemMiB), usedCores: Math.max(0, d.usedCores), usedSlots: Math.max(0, d.usedSlots) },
  );
  return { ...shared, devices, bestEffortUses };
}

export type PlaceResult =
  | { ok: true; nodes: string[] /** Gives the GPUs back (a tentative placement). */; undo(): void }
  | { ok: false; reason: string /** false when no amount of waiting can help (model, size, selector). */; resolvable: boolean };

type Index = Map<number, Set<string>>; // free GPUs -> node names
/** GPUs one pod took on its node: idle and best-effort deltas per resource (negative = taken). */
export interface Taken {
  resource: string;
  delta: { idle: number; bestEffort: number };
  /** The node's shared GPUs before the pod was placed on them (undo puts them back). */
  sharedBefore?: SharedGpus;
  /** What the pod holds on the node's shared GPUs (memory, cores, a slot per GPU), and
   * whether as a best-effort pod: giveBack() frees these, since by a job's end other pods
   * have come and gone and sharedBefore no longer says what the GPUs are. */
  shares?: { uses: readonly DeviceUse[]; bestEffort: boolean };
}
/** Where a placed pod went and what it took there. */
export interface PlacedPod {
  node: string;
  taken: readonly Taken[];
}
type Found = { ok: true; node: string } | { ok: false; reason: string; resolvable: boolean };

const shapes = new WeakMap<UnitPod, { shape: string; guaranteed: string; bestEffort: string }>();
function shapesOf(pod: UnitPod): { shape: string; guaranteed: string; bestEffort: string } {
  let s = shapes.get(pod);
  if (s === undefined) {
    const shape = `${JSON.stringify(pod.requests)}|${pod.shares ? JSON.stringify(pod.shares) : ''}|${pod.models.join(',')}|${JSON.stringify(pod.nodeSelector)}|${JSON.stringify(pod.affinityTerms)}`;
    s = { shape, guaranteed: `guaranteed|${shape}`, bestEffort: `best-effort|${shape}` };
    shapes.set(pod, s);
  }
  return s;
}
/** A stable key for what a pod asks and where it may go (kept per pod: a pass asks it often). */
const shapeOf = (pod: UnitPod): string => shapesOf(pod).shape;
/** The same, with the QoS (guaranteed pods may reclaim best-effort GPUs). */
const qosShapeOf = (pod: UnitPod, qos: QosClass): string => (qos === 'guaranteed' ? shapesOf(pod).guaranteed : shapesOf(pod).bestEffort);

export class CapacityModel {
  private readonly nodes = new Map<string, CapacityNode>();
  /** Per resource: nodes by idle GPUs, and by idle + best-effort GPUs. */
  private readonly idle = new Map<string, Index>();
  private readonly reclaimable = new Map<string, Index>();
  private readonly maxCapacity = new Map<string, number>();
  /** The last search for each shape, valid while the free GPUs have not changed (version). */
  private readonly searched = new Map<string, { version: number; result: Found }>();
  /**
   * Names the free GPUs as they are: a fresh number (never one used before) at every change;
   * the number from before when a tentative placement is undone, since the free GPUs are then
   * as they were. A reused number would let a search made in between pass for current.
   */
  private version = 0;
  private lastVersion = 0;
  private readonly everFits = new Map<string, boolean>();
  private empty: CapacityModel | null = null;
  /** Pods placed and not undone: what each took (takenBy). */
  private readonly placed = new Map<UnitPod, PlacedPod>();

  /** `emptyCluster`: this model is every node with nothing on it (answers "could it ever fit?"). */
  constructor(
    nodes: Iterable<CapacityNode>,
    private readonly emptyCluster = false,
  ) {
    for (const n of nodes) {
      const copy = { ...n, free: { ...n.free }, bestEffort: { ...n.bestEffort }, ...(n.shared ? { shared: { ...n.shared } } : {}) };
      this.nodes.set(n.name, copy);
      for (const r of Object.keys(n.capacity)) {
        if (!(n.capacity[r]! > 0)) continue;
        this.maxCapacity.set(r, Math.max(this.maxCapacity.get(r) ?? 0, n.capacity[r]!));
        this.index(this.idle, r, copy.free[r] ?? 0, n.name, +1);
        this.index(this.reclaimable, r, (copy.free[r] ?? 0) + (copy.bestEffort[r] ?? 0), n.name, +1);
      }
    }
  }

  private index(ix: Map<string, Index>, resource: string, free: number, name: string, sign: 1 | -1): void {
    let byFree = ix.get(resource);
    if (!byFree) ix.set(resource, (byFree = new Map()));
    let set = byFree.get(free);
    if (sign > 0) {
      if (!set) byFree.set(free, (set = new Set()));
      set.add(name);
    } else set?.delete(name);
  }

  /** The node as placement/'s fit() sees it: idle GPUs only, or idle + best-effort ones.
   * Shared GPUs as the extender's cache shows them (cluster/cache.ts buildView). */
  private view(n: CapacityNode, resource: string, reclaim: boolean): NodeView {
    const sh = n.shared;
    if (sh && sh.resource === resource) {
      const devices = reclaim ? withoutUses(sh.devices, sh.bestEffortUses) : sh.devices;
      return { name: n.name, product: n.product, unusable: n.unusable ?? sh.unusable, gpus: devices.length > 0 ? slotsOfDevices(devices) : undefined };
    }
    const capacity = n.capacity[resource] ?? 0;
    const idle = n.free[resource] ?? 0;
    const freeWhole = reclaim ? idle + (n.bestEffort[resource] ?? 0) : idle;
    return { name: n.name, product: n.product, unusable: n.unusable, gpus: capacity > 0 ? { capacity, freeWhole, partialFree: [] } : undefined };
  }

  /** The pod's ask of one resource, with its containers' shares for the share resource (as
   * the extender's filter asks it). */
  private askOf(n: CapacityNode, pod: UnitPod, resource: string, count: number): GpuAsk {
    const ask: GpuAsk = { resource, count, milli: WHOLE, models: pod.models };
    if (pod.shares && n.shared?.resource === resource) ask.shares = pod.shares;
    return ask;
  }

  /** Why this node cannot take the pod (for this QoS: guaranteed may reclaim), or null. */
  misfit(n: CapacityNode, pod: UnitPod, qos: QosClass): Misfit | null {
    return this.misfitOn(n, pod, qos === 'guaranteed');
  }

  private misfitOn(n: CapacityNode, pod: UnitPod, reclaim: boolean): Misfit | null {
    for (const r of pod.requests) {
      const m = fit(this.view(n, r.resource, reclaim), this.askOf(n, pod, r.resource, r.count));
      if (m) return m;
    }
    if (!nodeMatches(n.name, n.labels, pod.nodeSelector, pod.affinityTerms)) {
      return { reason: `node ${n.name} does not match the pod's node selector or affinity`, resolvable: false, kind: 'unusable' };
    }
    return null;
  }

  /** Places every pod or none: a failed unit leaves the model as it was. */
  place(pods: readonly UnitPod[], qos: QosClass): PlaceResult {
    const done: Array<{ pod: UnitPod; node: string; taken: Taken[] }> = [];
    const before = this.version;
    let after = -1;
    const undo = (): void => {
      // Undone right after: the free GPUs are as before, and so are the searches made then.
      const unchangedSince = this.version === after;
      for (const d of done.reverse()) {
        this.give(d.node, d.taken);
        this.placed.delete(d.pod);
      }
      if (unchangedSince) this.version = before;
    };
    for (const pod of pods) {
      const r = this.placeOne(pod, qos);
      if (!r.ok) {
        after = this.version;
        undo();
        if (pods.length === 1) return r;
        // A gang may fail although each pod alone would fit an empty cluster: waiting
        // helps only if the whole gang fits the empty cluster.
        const resolvable = this.wouldFitEmpty(pods, qos);
        const reason = resolvable
          ? `gang of ${pods.length}: pod ${pod.name}: ${r.reason}`
          : `gang of ${pods.length} could never fit all at once (the nodes are too few or too small for it); ${r.reason}`;
        return { ok: false, reason, resolvable };
      }
      const entry = { node: r.node, taken: this.take(pod, r.node, qos) };
      done.push({ pod, ...entry });
      this.placed.set(pod, entry);
    }
    after = this.version;
    return { ok: true, nodes: done.map((d) => d.node), undo };
  }

  /** Would the pods fit now? Leaves the model unchanged (so what it learned stays valid). */
  wouldPlace(pods: readonly UnitPod[], qos: QosClass): boolean {
    const r = this.place(pods, qos);
    if (r.ok) r.undo(); // puts the version back too: remembered searches still hold
    return r.ok;
  }

  /** Nodes that could ever host one of the pods (checked as if empty); the same Set for the same shapes. */
  eligibleNodes(pods: readonly UnitPod[], qos: QosClass): Set<string> {
    const key = this.shapesKey(pods, qos);
    let out = this.eligible.get(key);
    if (out) return out;
    out = new Set<string>();
    for (const n of this.nodes.values()) {
      const empty = emptyNode(n);
      if (pods.some((p) => !this.misfit(empty, p, qos))) out.add(n.name);
    }
    this.eligible.set(key, out);
    return out;
  }

  /** What the pods ask and where they may go, as one key (pods of one shape count once). */
  shapesKey(pods: readonly UnitPod[], qos: QosClass): string {
    return `${qos}|${[...new Set(pods.map(shapeOf))].sort().join('||')}`;
  }

  private readonly eligible = new Map<string, Set<string>>();

  private wouldFitEmpty(pods: readonly UnitPod[], qos: QosClass): boolean {
    const key = `${qos}|${pods.map(shapeOf).join('||')}`;
    if (this.emptyCluster) return false; // failed on the empty cluster itself: never
    let ever = this.everFits.get(key);
    if (ever === undefined) {
      this.empty ??= new CapacityModel([...this.nodes.values()].map(emptyNode), true);
      ever = this.empty.wouldPlace(pods, qos);
      this.everFits.set(key, ever);
    }
    return ever;
  }

  private placeOne(pod: UnitPod, qos: QosClass): Found {
    if (pod.requests.length === 0) return { ok: true, node: '' };
    // Many waiting pods share a shape: its search holds until the free GPUs change.
    const shape = qosShapeOf(pod, qos);
    const known = this.searched.get(shape);
    if (known && known.version === this.version) return known.result;
    const result = this.search(pod, qos);
    this.searched.set(shape, { version: this.version, result });
    return result;
  }

  private search(pod: UnitPod, qos: QosClass): Found {
    const main = pod.requests.reduce((a, b) => (b.count > a.count ? b : a));
    const max = this.maxCapacity.get(main.resource) ?? 0;
    let resolvable = false;
    let sample: string | null = null;
    const passes: Array<[Map<string, Index>, boolean]> =
      qos === 'guaranteed'
        ? [
            [this.idle, false],
            [this.reclaimable, true],
          ]
        : [[this.idle, false]];
    for (const [ix, reclaim] of passes) {
      const byFree = ix.get(main.resource);
      if (!byFree) continue;
      for (let free = main.count; free <= max; free++) {
        for (const name of byFree.get(free) ?? []) {
          const m = this.misfitOn(this.nodes.get(name)!, pod, reclaim);
          if (!m) return { ok: true, node: name };
          if (m.resolvable) resolvable = true;
          sample ??= m.reason;
        }
      }
    }
    // Nothing fits now. Would it fit an empty node somewhere (then waiting helps)?
    resolvable ||= this.wouldFitEmpty([pod], qos);
    const share = pod.shares?.[0];
    const what =
      share && pod.shares!.length === 1 && share.count === 1
        ? `a GPU with ${memText(share)} and ${share.cores} cores${pod.models.length ? ` (${pod.models.join(',')})` : ''}`
        : `${main.count} ${qos === 'best-effort' ? 'idle ' : ''}${main.resource}${pod.models.length ? ` (${pod.models.join(',')})` : ''}`;
    const reason = resolvable
      ? `no node has ${what} free now`
      : `no node could ever take ${what}${sample ? ` (${sample})` : ''}; check the pod's GPU model, node selector and size`;
    return { ok: false, reason, resolvable };
  }

  /** Counts the pod on the node; guaranteed pods take idle GPUs first, then reclaim best-effort ones. */
  private take(pod: UnitPod, node: string, qos: QosClass): Taken[] {
    const n = this.nodes.get(node);
    if (!n) return [];
    return pod.requests.map(({ resource, count }) => {
      const placed = n.shared?.resource === resource && pod.shares ? this.placeShares(n, pod.shares, qos) : undefined;
      const idle = n.free[resource] ?? 0;
      const fromIdle = Math.min(idle, count);
      const fromBestEffort = qos === 'guaranteed' ? count - fromIdle : 0;
      const delta = { idle: -fromIdle, bestEffort: qos === 'guaranteed' ? -fromBestEffort : count };
      this.adjust(n, resource, delta);
      return placed ? { resource, delta, sharedBefore: placed.before, shares: { uses: placed.uses, bestEffort: qos === 'best-effort' } } : { resource, delta };
    });
  }

  /** Places the containers' shares on the node's GPUs (the fullest that fits); a guaranteed
   * pod that fits only where best-effort shares are, takes those GPUs from them (the
   * best-effort shares on the GPUs it took count as preempted). Returns the GPUs before and
   * the uses placed. */
  private placeShares(n: CapacityNode, shares: NonNullable<UnitPod['shares']>, qos: QosClass): { before: SharedGpus; uses: DeviceUse[] } {
    const before = n.shared!;
    let placed = placeContainers(before.devices, shares, fullestFit);
    let shared: SharedGpus = before;
    if ('misfit' in placed && qos === 'guaranteed') {
      placed = placeContainers(withoutUses(before.devices, before.bestEffortUses), shares, fullestFit);
      if (!('misfit' in placed)) {
        const taken = new Set(placed.uses.flat().map((u) => u.uuid));
        const preempted = before.bestEffortUses.filter((u) => taken.has(u.uuid));
        shared = { ...before, devices: withoutUses(before.devices, preempted), bestEffortUses: before.bestEffortUses.filter((u) => !taken.has(u.uuid)) };
        placed = placeContainers(shared.devices, shares, fullestFit);
      }
    }
    // place() checked the fit first; a misfit here leaves the GPUs as they were.
    if ('misfit' in placed) return { before, uses: [] };
    n.shared = {
      ...shared,
      devices: placed.after,
      bestEffortUses: qos === 'best-effort' ? [...shared.bestEffortUses, ...placed.uses.flat()] : shared.bestEffortUses,
    };
    return { before, uses: placed.uses.flat() };
  }

  /** Exact inverse of take(). */
  private give(node: string, taken: readonly Taken[]): void {
    const n = this.nodes.get(node);
    if (!n) return;
    for (const t of taken) {
      if (t.sharedBefore) n.shared = t.sharedBefore;
      this.adjust(n, t.resource, { idle: -t.delta.idle, bestEffort: -t.delta.bestEffort });
    }
  }

  /** What a pod placed by place() (and not undone) took, and where; undefined otherwise. */
  takenBy(pod: UnitPod): PlacedPod | undefined {
    return this.placed.get(pod);
  }

  /**
   * A job ended: its pods' GPUs come back (`taken` as takenBy() gave it, or as a running pod
   * holds them). Best-effort GPUs never go below zero: the model's count of them may be
   * lower than the pods hold (a node reports fewer used GPUs than its pods ask).
   * Its shares on shared GPUs come back too (freeShares).
   */
  giveBack(node: string, taken: readonly Taken[]): void {
    const n = this.nodes.get(node);
    if (!n) return;
    for (const t of taken) {
      if (t.shares && n.shared?.resource === t.resource) n.shared = freeShares(n.shared, t.shares);
      const be = n.bestEffort[t.resource] ?? 0;
      this.adjust(n, t.resource, { idle: -t.delta.idle, bestEffort: -Math.min(t.delta.bestEffort, be) });
    }
  }

  private adjust(n: CapacityNode, resource: string, delta: { idle: number; bestEffort: number }): void {
    const idle = n.free[resource] ?? 0;
    const be = n.bestEffort[resource] ?? 0;
    this.index(this.idle, resource, idle, n.name, -1);
    this.index(this.reclaimable, resource, idle + be, n.name, -1);
    n.free[resource] = idle + delta.idle;
    n.bestEffort[resource] = be + delta.bestEffort;
    this.index(this.idle, resource, n.free[resource]!, n.name, +1);
    this.index(this.reclaimable, resource, n.free[resource]! + n.bestEffort[resource]!, n.name, +1);
    this.version = ++this.lastVersion;
  }

  /** Idle GPUs of a resource over healthy nodes. */
  idleGpus(resource: string): number {
    let n = 0;
    for (const node of this.nodes.values()) if (!node.unusable) n += node.free[resource] ?? 0;
    return n;
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  /** Every node as this model has it now (copies): where a forecast starts from. */
  nodeList(): CapacityNode[] {
    return [...this.nodes.values()].map((n) => ({
      ...n,
      free: { ...n.free },
      bestEffort: { ...n.bestEffort },
      ...(n.shared ? { shared: { ...n.shared } } : {}),
    }));
  }
}
