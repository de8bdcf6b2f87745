// Real capacity for the queue manager: can every pod of a unit be placed on the nodes as
// they are, right now? Pure. Each pod is checked with placement/'s fit() (model, health,
// cordon, size) plus its node selector and required node affinity, on the node the
// binpack rule picks (fewest free GPUs that still fit), and the placement is kept for
// the rest of the evaluation, so two units never count the same free GPUs.
//
// Guaranteed units also count GPUs held by best-effort pods as free: kube-scheduler takes
// them back through the extender's preempt verb. Best-effort units see only idle GPUs.
//
// Cost: nodes are indexed per resource by free GPUs, so one pod's check looks at the
// nodes with just enough room first and stops at the first that fits; a cluster with no
// room answers at once.
import { fit, type Misfit } from '../placement/fit.js';
import { nodeMatches } from '../placement/node-selector.js';
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
}

export type PlaceResult =
  | { ok: true; nodes: string[] }
  | { ok: false; reason: string; /** false when no amount of waiting can help (model, size, selector). */ resolvable: boolean };

type Index = Map<number, Set<string>>; // free GPUs -> node names
interface Taken {
  resource: string;
  delta: { idle: number; bestEffort: number };
}

export class CapacityModel {
  private readonly nodes = new Map<string, CapacityNode>();
  /** Per resource: nodes by idle GPUs, and by idle + best-effort GPUs. */
  private readonly idle = new Map<string, Index>();
  private readonly reclaimable = new Map<string, Index>();
  private readonly maxCapacity = new Map<string, number>();

  constructor(nodes: Iterable<CapacityNode>) {
    for (const n of nodes) {
      const copy = { ...n, free: { ...n.free }, bestEffort: { ...n.bestEffort } };
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

  /** The node as placement/'s fit() sees it for this QoS. */
  private view(n: CapacityNode, resource: string, qos: QosClass): NodeView {
    const capacity = n.capacity[resource] ?? 0;
    const idle = n.free[resource] ?? 0;
    const freeWhole = qos === 'guaranteed' ? idle + (n.bestEffort[resource] ?? 0) : idle;
    return { name: n.name, product: n.product, unusable: n.unusable, gpus: capacity > 0 ? { capacity, freeWhole, partialFree: [] } : undefined };
  }

  /** Why this node cannot take the pod, or null. */
  misfit(n: CapacityNode, pod: UnitPod, qos: QosClass): Misfit | null {
    for (const r of pod.requests) {
      const m = fit(this.view(n, r.resource, qos), askOf(pod, r.resource, r.count));
      if (m) return m;
    }
    if (!nodeMatches(n.name, n.labels, pod.nodeSelector, pod.affinityTerms)) {
      return { reason: `node ${n.name} does not match the pod's node selector or affinity`, resolvable: false, kind: 'unusable' };
    }
    return null;
  }

  /** Places every pod or none: a failed unit leaves the model as it was. */
  place(pods: readonly UnitPod[], qos: QosClass): PlaceResult {
    const done: Array<{ node: string; taken: Taken[] }> = [];
    for (const pod of pods) {
      const r = this.placeOne(pod, qos);
      if (!r.ok) {
        for (const d of done.reverse()) this.give(d.node, d.taken, qos);
        return pods.length > 1 ? { ...r, reason: `gang of ${pods.length}: pod ${pod.name}: ${r.reason}` } : r;
      }
      done.push({ node: r.node, taken: this.take(pod, r.node, qos) });
    }
    return { ok: true, nodes: done.map((d) => d.node) };
  }

  private placeOne(pod: UnitPod, qos: QosClass): { ok: true; node: string } | { ok: false; reason: string; resolvable: boolean } {
    if (pod.requests.length === 0) return { ok: true, node: '' };
    // Many waiting pods share a shape: a shape that found no node stays unplaceable until
    // something is placed (the model only loses room between placements).
    const shape = `${qos}|${JSON.stringify(pod.requests)}|${pod.models.join(',')}|${JSON.stringify(pod.nodeSelector)}|${JSON.stringify(pod.affinityTerms)}`;
    const known = this.failed.get(shape);
    if (known && known.version === this.version) return known.result;
    const result = this.search(pod, qos);
    if (!result.ok) this.failed.set(shape, { version: this.version, result });
    return result;
  }

  private readonly failed = new Map<string, { version: number; result: { ok: false; reason: string; resolvable: boolean } }>();
  /** Bumped by every placement. */
  private version = 0;
  private readonly everFits = new Map<string, boolean>();

  private search(pod: UnitPod, qos: QosClass): { ok: true; node: string } | { ok: false; reason: string; resolvable: boolean } {
    const main = pod.requests.reduce((a, b) => (b.count > a.count ? b : a));
    const ix = (qos === 'guaranteed' ? this.reclaimable : this.idle).get(main.resource);
    const max = this.maxCapacity.get(main.resource) ?? 0;
    let resolvable = false;
    let sample: string | null = null;
    if (ix) {
      for (let free = main.count; free <= max; free++) {
        for (const name of ix.get(free) ?? []) {
          const m = this.misfit(this.nodes.get(name)!, pod, qos);
          if (!m) return { ok: true, node: name };
          if (m.resolvable) resolvable = true;
          sample ??= m.reason;
        }
      }
    }
    // Nothing fits now. Would it fit an empty node somewhere (then waiting helps)?
    resolvable ||= this.wouldEverFit(pod, qos);
    const what = `${main.count} ${qos === 'best-effort' ? 'idle ' : ''}${main.resource}${pod.models.length ? ` (${pod.models.join(',')})` : ''}`;
    const reason = resolvable
      ? `no node has ${what} free now`
      : `no node could ever take ${what}${sample ? ` (${sample})` : ''}; check the pod's GPU model, node selector and size`;
    return { ok: false, reason, resolvable };
  }

  private wouldEverFit(pod: UnitPod, qos: QosClass): boolean {
    const shape = `${JSON.stringify(pod.requests)}|${pod.models.join(',')}|${JSON.stringify(pod.nodeSelector)}|${JSON.stringify(pod.affinityTerms)}`;
    let ever = this.everFits.get(shape);
    if (ever === undefined) {
      ever = false;
      for (const n of this.nodes.values()) {
        const empty = { ...n, free: { ...n.capacity }, bestEffort: {} };
        if (!this.misfit(empty, pod, qos)) {
          ever = true;
          break;
        }
      }
      this.everFits.set(shape, ever);
    }
    return ever;
  }

  /** Counts the pod on the node; guaranteed pods take idle GPUs first, then reclaim best-effort ones. */
  private take(pod: UnitPod, node: string, qos: QosClass): Taken[] {
    const n = this.nodes.get(node);
    if (!n) return [];
    return pod.requests.map(({ resource, count }) => {
      const idle = n.free[resource] ?? 0;
      const fromIdle = Math.min(idle, count);
      const fromBestEffort = qos === 'guaranteed' ? count - fromIdle : 0;
      const delta = { idle: -fromIdle, bestEffort: qos === 'guaranteed' ? -fromBestEffort : count };
      this.adjust(n, resource, delta);
      this.version++;
      return { resource, delta };
    });
  }

  /** Exact inverse of take(). */
  private give(node: string, taken: readonly Taken[], _qos: QosClass): void {
    const n = this.nodes.get(node);
    if (!n) return;
    for (const t of taken) this.adjust(n, t.resource, { idle: -t.delta.idle, bestEffort: -t.delta.bestEffort });
    this.version++; // what failed against the fuller state may fit now
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
  }

  /** Would the pods fit now? Leaves the model unchanged. */
  wouldPlace(pods: readonly UnitPod[], qos: QosClass): boolean {
    const done: Array<{ node: string; taken: Taken[] }> = [];
    let ok = true;
    for (const pod of pods) {
      const r = this.placeOne(pod, qos);
      if (!r.ok) {
        ok = false;
        break;
      }
      done.push({ node: r.node, taken: this.take(pod, r.node, qos) });
    }
    for (const d of done.reverse()) this.give(d.node, d.taken, qos);
    return ok;
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  /** Idle GPUs of a resource over healthy nodes (for the submit-time warning). */
  idleGpus(resource: string): number {
    let n = 0;
    for (const node of this.nodes.values()) if (!node.unusable) n += node.free[resource] ?? 0;
    return n;
  }
}

function askOf(pod: UnitPod, resource: string, count: number): GpuAsk {
  return { resource, count, milli: WHOLE, models: pod.models };
}
