// The shared picture of the cluster: nodes, the GPUs each has and uses, and the pods
// holding them. Fed by informers (cluster/informers.ts) or a snapshot file; read by the
// extender, webhooks and queue. No I/O here.
//
// Usage is kept incrementally per node, so the extender reads precomputed numbers and
// never re-scans pods. The assume ledger counts a pod the extender has just bound as
// using its GPUs at once, until the watch shows the binding (or a TTL passes): this is
// what keeps two binds racing for the last GPUs from both succeeding, without node
// locks or API reads on the hot path.
//
// Share binds in flight (HAMi's node lock) are counted per node by ShareBindsInFlight
// (cluster/share-binds-in-flight.ts); the cache tells it which node each bind is on.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { nodeClassFigures, nodeFacts, sameNodeClass, type NodeFacts, type SharingFacts } from './node-facts.js';
import type { ResourceAmount, ShareNames } from './pod-request.js';
import { milliToGpus, pricingMemMiB, shareGpus, shareMilli, slotsOfDevices, usesMilli, type DeviceUse, type GpuDevice } from '../placement/shares.js';
import { podRecord, type PodRecord } from './pod-record.js';
import { HAMI_BIND_PHASE } from './hami.js';
import { BIND_PICK_TTL_MS, ShareBindsInFlight } from './share-binds-in-flight.js';

export type { PodOwner, PodRecord } from './pod-record.js';
import { RecentSizes } from '../placement/size-mix.js';
import { parseModelList } from '../placement/gpu-model.js';
import { ANNOTATION_GPU_MODEL } from '../scheduler/pod-ask.js';
import { WHOLE, type NodeView, type SizeMix } from '../placement/types.js';
import { nodeClasses, withScarcity, type NodeClass } from '../placement/scarcity.js';

/** A change the cache applied, for whoever must react (the queue manager). */
export type CacheChange =
  | { kind: 'node'; name: string }
  | { kind: 'pod'; uid: string; before: Readonly<PodRecord> | undefined; after: Readonly<PodRecord> | undefined };

interface Assumed {
  uid: string;
  node: string;
  requests: readonly ResourceAmount[];
  /** The GPUs a share bind took (HAMi's protocol), until the pod's annotations show them. */
  uses: readonly DeviceUse[] | null;
  /** A share bind (HAMi's node lock): in flight until the plugin answers. */
  share: boolean;
  expiresAt: number;
}

/** What is placed on one shared GPU. */
interface DeviceLoad {
  memMiB: number;
  cores: number;
  slots: number;
}

interface NodeRecord {
  name: string;
  facts: NodeFacts | null; // null: pods name this node but the node itself is not (or no longer) known
  used: Record<string, number>;
  /** CPU (milli) and memory (MiB) the node's non-terminal pods request. */
  usedCpuMilli: number;
  usedMemMiB: number;
  assumed: Record<string, number>;
  pods: Set<string>;
  /** Per shared GPU UUID: what pods holding it (and binds in flight) use. */
  deviceLoad: Map<string, DeviceLoad>;
  views: Record<string, NodeView> | null; // per resource, rebuilt lazily after a change
}

export type AssumeResult = { ok: true } | { ok: false; reason: string };

export interface ClusterCacheOptions {
  resources: readonly string[];
  assumeTtlMs: number;
  recentPodWindow: number;
  now?: () => number;
  /** GPU shares through HAMi's device plugin; absent = GPUs are whole only. */
  sharing?: { names: ShareNames; handshakeTimeoutMs: number };
}

const NO_PARTIALS: readonly number[] = Object.freeze([]);

export class ClusterCache {
  readonly resources: readonly string[];
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly pods = new Map<string, PodRecord>();
  private readonly ledger = new Map<string, Assumed>();
  private readonly recent: RecentSizes;
  private readonly assumeTtlMs: number;
  private readonly now: () => number;
  /** Share resource names; null when sharing is off. */
  readonly shareNames: ShareNames | null;
  private readonly sharingFacts: SharingFacts | undefined;
  /** True once the first full list of nodes and pods has been applied. */
  synced = false;
  private readonly listeners: Array<(c: CacheChange) => void> = [];
  /** Node classes for the shapes' scarcity: null after a node's class changed. */
  private classes: NodeClass[] | null = null;
  /** The recent mix last weighed by scarcity, and the result. */
  private mixWeighed: { from: SizeMix; classes: NodeClass[]; out: SizeMix } | null = null;

  constructor(opts: ClusterCacheOptions) {
    this.resources = opts.resources;
    this.assumeTtlMs = opts.assumeTtlMs;
    this.now = opts.now ?? Date.now;
    this.recent = new RecentSizes(opts.recentPodWindow);
    this.shareNames = opts.sharing?.names ?? null;
    this.sharingFacts = opts.sharing
      ? { resource: opts.sharing.names.resource, handshakeTimeoutMs: opts.sharing.handshakeTimeoutMs, now: this.now }
      : undefined;
  }

  /** Calls `fn` after every node or pod change (and once per object on replaceAll). */
  onChange(fn: (c: CacheChange) => void): void {
    this.listeners.push(fn);
  }

  private emit(c: CacheChange): void {
    for (const fn of this.listeners) fn(c);
  }

  // ---- feeding -------------------------------------------------------------------

  upsertNode(node: V1Node): void {
    const facts = nodeFacts(node, this.resources, this.sharingFacts);
    if (!facts.name) return;
    const rec = this.record(facts.name);
    // Status updates arrive every few seconds per node; only a new class changes scarcity.
    if (!rec.facts || !sameNodeClass(rec.facts, facts, this.resources)) this.classes = null;
    rec.facts = facts;
    rec.views = null;
    this.gpuSizes = null;
    if (this.listeners.length) this.emit({ kind: 'node', name: facts.name });
  }

  deleteNode(name: string): void {
    const rec = this.nodes.get(name);
    if (!rec) return;
    if (rec.facts) this.classes = null;
    rec.facts = null;
    this.gpuSizes = null;
    rec.views = null;
    if (rec.pods.size === 0 && this.assumedOn(name) === 0) {
      this.nodes.delete(name);
      this.inFlight.forgetNode(name);
    }
    if (this.listeners.length) this.emit({ kind: 'node', name });
  }

  upsertPod(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const prev = this.pods.get(uid);
    const next = podRecord(pod, uid, this.resources, prev?.seenMs ?? this.now(), this.shareNames ?? undefined);
    if (!prev) {
      const models = parseModelList(next.annotations[ANNOTATION_GPU_MODEL]);
      for (const r of next.requests)
        this.recent.record({ count: r.count, milli: this.recordedMilli(next, r.resource, r.count), cpuMilli: next.cpuMilli, memMiB: next.memMiB, models });
    }
    if (prev) this.account(prev, -1);
    this.pods.set(uid, next);
    this.account(next, +1);
    // The watch now shows the binding: the pod's own accounting takes over.
    if (next.nodeName || next.terminal || next.annotations['hami.io/bind-phase'] === 'failed') this.dropAssumed(uid);
    // The pod's annotations now name its GPUs: they count through the pod, not the ledger.
    else if (next.hold) this.dropAssumedUses(uid);
    if (next.nodeName || next.terminal) this.dropPick(uid);
    this.trackShareBind(uid);
    if (this.listeners.length) this.emit({ kind: 'pod', uid, before: prev, after: next });
  }

  deletePod(uid: string): void {
    const prev = this.pods.get(uid);
    if (prev) {
      this.account(prev, -1);
      this.pods.delete(uid);
    }
    this.dropAssumed(uid);
    this.dropPick(uid);
    this.trackShareBind(uid);
    if (prev && this.listeners.length) this.emit({ kind: 'pod', uid, before: prev, after: undefined });
  }

  /** Replaces everything with a fresh list (initial sync, relist, snapshot load). */
  replaceAll(nodes: readonly V1Node[], pods: readonly V1Pod[]): void {
    const ledger = [...this.ledger.values()];
    this.nodes.clear();
    this.classes = null;
    this.pods.clear();
    this.ledger.clear();
    this.inFlight.clear();
    for (const n of nodes) this.upsertNode(n);
    for (const p of pods) this.upsertPod(p);
    // Keep binds in flight that the new list does not show yet.
    for (const a of ledger) {
      const p = this.pods.get(a.uid);
      if (!p?.nodeName) this.addAssumed(p?.hold ? { ...a, uses: null } : a);
    }
    this.synced = true;
  }

  /** The size-mix milli of a pod's ask: its share of one GPU (by the memory of the GPUs
   * HAMi registered, the first node seen), else whole GPUs. */
  private recordedMilli(p: PodRecord, resource: string, count: number): number {
    if (count !== 1 || !p.shares || resource !== this.shareNames?.resource) return WHOLE;
    const a = p.shares.find((x) => x !== null);
    if (!a) return WHOLE;
    if (this.shareGpuMemMiB === 0) {
      for (const rec of this.nodes.values()) {
        const g = rec.facts?.sharedGpus?.gpus[0];
        if (g) {
          this.shareGpuMemMiB = g.memMiB;
          break;
        }
      }
    }
    return shareMilli(a, this.shareGpuMemMiB);
  }

  private shareGpuMemMiB = 0;

  /** Memory sizes of the shared GPUs registered on known nodes, ascending, distinct; null
   * after a node changed. */
  private gpuSizes: number[] | null = null;

  /**
   * What the pod counts against its queue's quota: its requests, with GPU shares counted
   * as GPU-equivalents (placement/shares.ts shareMilli; 4 pods of 0.25 GPU = 1 GPU).
   *  - a pod holding GPUs (HAMi's device list on it): the share of each GPU it uses, by
   *    that GPU's memory;
   *  - a pod not placed yet: its asks priced on the smallest registered GPU that can hold
   *    them, the most it can cost once placed, so binding never raises its count.
   * Never more than its requests count whole.
   */
  gpuEquivalents(p: Readonly<PodRecord>): readonly ResourceAmount[] {
    const names = this.shareNames;
    if (!names || !p.shares) return p.requests;
    return p.requests.map((r) => {
      if (r.resource !== names.resource) return r;
      const hold = p.hold && !p.terminal ? p.hold : null;
      if (hold) {
        const gpus = this.nodes.get(hold.node)?.facts?.sharedGpus?.gpus ?? [];
        const milli = usesMilli(hold.uses, (uuid) => gpus.find((g) => g.uuid === uuid)?.memMiB ?? 0);
        return milli >= r.count * WHOLE ? r : { resource: r.resource, count: milliToGpus(milli) };
      }
      const count = shareGpus(r.count, p.shares!, pricingMemMiB(p.shares!, this.sharedGpuSizes()));
      return count === r.count ? r : { resource: r.resource, count };
    });
  }

  /** Memory sizes (MiB) of the shared GPUs registered on known nodes, ascending, distinct. */
  sharedGpuSizes(): readonly number[] {
    if (this.gpuSizes) return this.gpuSizes;
    const sizes = new Set<number>();
    for (const rec of this.nodes.values()) for (const g of rec.facts?.sharedGpus?.gpus ?? []) sizes.add(g.memMiB);
    this.gpuSizes = [...sizes].sort((a, b) => a - b);
    return this.gpuSizes;
  }

  private record(name: string): NodeRecord {
    let rec = this.nodes.get(name);
    if (!rec) {
      rec = {
        name,
        facts: null,
        used: {},
        usedCpuMilli: 0,
        usedMemMiB: 0,
        assumed: {},
        pods: new Set(),
        deviceLoad: new Map(),
        views: null,
      };
      this.nodes.set(name, rec);
    }
    return rec;
  }

  private account(p: PodRecord, sign: 1 | -1): void {
    if (p.hold && !p.terminal) this.load(sign > 0 ? this.record(p.hold.node) : this.nodes.get(p.hold.node), p.hold.uses, sign);
    if (!p.nodeName) return;
    const rec = sign > 0 ? this.record(p.nodeName) : this.nodes.get(p.nodeName);
    if (!rec) return;
    if (sign > 0) rec.pods.add(p.uid);
    else rec.pods.delete(p.uid);
    if (!p.terminal) {
      for (const r of p.requests) rec.used[r.resource] = (rec.used[r.resource] ?? 0) + sign * r.count;
      rec.usedCpuMilli += sign * p.cpuMilli;
      rec.usedMemMiB += sign * p.memMiB;
    }
    rec.views = null;
    if (sign < 0 && !rec.facts && rec.pods.size === 0 && this.assumedOn(rec.name) === 0) this.nodes.delete(rec.name);
  }

  /** Adds (sign 1) or removes (-1) GPU uses on the node's shared GPUs. */
  private load(rec: NodeRecord | undefined, uses: readonly DeviceUse[], sign: 1 | -1): void {
    if (!rec) return;
    for (const u of uses) {
      const l = rec.deviceLoad.get(u.uuid) ?? { memMiB: 0, cores: 0, slots: 0 };
      l.memMiB += sign * u.memMiB;
      l.cores += sign * u.cores;
      l.slots += sign;
      if (l.slots <= 0) rec.deviceLoad.delete(u.uuid);
      else rec.deviceLoad.set(u.uuid, l);
    }
    rec.views = null;
  }

  // ---- assume ledger -------------------------------------------------------------

  /**
   * Counts the pod as placed on `node` now, if its GPUs still fit there. The check and
   * the increment happen in one synchronous step, so concurrent binds cannot overcommit.
   */
  assume(
    uid: string,
    node: string,
    requests: readonly ResourceAmount[],
    place?: (devices: readonly GpuDevice[]) => { uses: readonly DeviceUse[] } | { misfit: string },
  ): AssumeResult & { uses?: readonly DeviceUse[] } {
    if (this.ledger.has(uid)) return { ok: false, reason: `pod ${uid} is already being bound to ${this.ledger.get(uid)!.node}` };
    const bound = this.pods.get(uid)?.nodeName;
    if (bound) return { ok: false, reason: `pod ${uid} is already bound to node ${bound}` };
    const rec = this.nodes.get(node);
    if (!rec?.facts) return { ok: false, reason: `node ${node} is not in sluice's cache (deleted, or not seen yet)` };
    for (const r of requests) {
      const free = this.freeOf(rec, r.resource);
      if (free < r.count) {
        return { ok: false, reason: `node ${node}: ${free} of ${rec.facts.allocatable[r.resource] ?? 0} ${r.resource} free, pod needs ${r.count}` };
      }
    }
    // Shared GPUs: the GPUs are chosen on the devices as they are now, in the same
    // synchronous step, so two binds never take the same memory, cores or slot. A pod whose
    // annotations already hold GPUs (a bind cut short by a restart) is placed without them.
    let uses: readonly DeviceUse[] | null = null;
    if (place) {
      const own = this.pods.get(uid)?.hold;
      const devices = this.devices(rec, own?.node === node ? own.uses : []);
      if (!devices)
        return {
          ok: false,
          reason: `node ${node} has no GPUs registered by HAMi's device plugin (${this.shareNames?.resource ?? 'shares'} cannot be placed there)`,
        };
      const placed = place(devices);
      if ('misfit' in placed) return { ok: false, reason: `node ${node}: ${placed.misfit}` };
      uses = placed.uses;
    }
    this.addAssumed({ uid, node, requests, uses, share: uses !== null, expiresAt: this.now() + this.assumeTtlMs });
    return uses ? { ok: true, uses } : { ok: true };
  }

  /** The node's shared GPUs with what is placed on them (less `minus`); null when the
   * node has no HAMi registration. */
  private devices(rec: NodeRecord, minus: readonly DeviceUse[] = []): GpuDevice[] | null {
    const shared = rec.facts?.sharedGpus;
    if (!shared) return null;
    return shared.gpus.map((g) => {
      const l = rec.deviceLoad.get(g.uuid);
      let usedMemMiB = l?.memMiB ?? 0;
      let usedCores = l?.cores ?? 0;
      let usedSlots = l?.slots ?? 0;
      for (const u of minus) {
        if (u.uuid !== g.uuid) continue;
        usedMemMiB -= u.memMiB;
        usedCores -= u.cores;
        usedSlots -= 1;
      }
      return { uuid: g.uuid, index: g.index, type: g.type, numa: g.numa, memMiB: g.memMiB, cores: g.cores, slots: g.slots, usedMemMiB, usedCores, usedSlots };
    });
  }

  /** Turns an assumption into a bound pod, as the watch would (snapshot mode, where
   * no watch exists). */
  confirmAssumed(uid: string, namespace: string, name: string): void {
    const a = this.ledger.get(uid);
    if (!a) return;
    const prev = this.pods.get(uid);
    this.dropAssumed(uid);
    if (prev) this.account(prev, -1);
    const rec: PodRecord = prev
      ? { ...prev, nodeName: a.node }
      : {
          uid,
          namespace,
          name,
          nodeName: a.node,
          terminal: false,
          succeeded: false,
          priority: 0,
          labels: {},
          requests: a.requests,
          cpuMilli: 0,
          memMiB: 0,
          created: new Date(this.now()).toISOString(),
          seenMs: this.now(),
          gates: [],
          annotations: {},
          nodeSelector: {},
          affinityTerms: null,
          started: new Date(this.now()).toISOString(),
          terminating: false,
          owner: null,
          shares: null,
          hold: null,
        };
    if (a.uses && !rec.hold) rec.hold = { node: a.node, uses: a.uses };
    this.pods.set(uid, rec);
    this.account(rec, +1);
    if (this.listeners.length) this.emit({ kind: 'pod', uid, before: prev, after: rec });
  }

  /** Removes a scheduling gate from the cached pod, as the watch would show it (snapshot
   * mode, where the queue manager releases into the in-memory copy). */
  ungate(uid: string, gate: string): boolean {
    const prev = this.pods.get(uid);
    if (!prev || !prev.gates.includes(gate)) return false;
    const next = { ...prev, gates: prev.gates.filter((g) => g !== gate) };
    this.pods.set(uid, next);
    if (this.listeners.length) this.emit({ kind: 'pod', uid, before: prev, after: next });
    return true;
  }

  /** Rolls an assumption back (the bind API call failed). */
  forget(uid: string): void {
    this.dropAssumed(uid);
  }

  /** Drops assumptions the watch never confirmed; returns how many expired. */
  expireAssumed(): number {
    const now = this.now();
    let n = 0;
    for (const a of [...this.ledger.values()]) {
      if (a.expiresAt <= now) {
        this.dropAssumed(a.uid);
        n++;
      }
    }
    return n;
  }

  get assumedCount(): number {
    return this.ledger.size;
  }

  private addAssumed(a: Assumed): void {
    this.ledger.set(a.uid, a);
    const rec = this.record(a.node);
    for (const r of a.requests) rec.assumed[r.resource] = (rec.assumed[r.resource] ?? 0) + r.count;
    if (a.uses) this.load(rec, a.uses, +1);
    rec.views = null;
    // The bind came: it counts as in flight by itself now, on the node it names.
    this.dropPick(a.uid);
    this.trackShareBind(a.uid);
  }

  // ---- share binds in flight (HAMi's node lock) ------------------------------------

  private readonly inFlight = new ShareBindsInFlight();

  /** Re-files the pod's share bind: in flight from the assume step until the device plugin
   * answers (bind phase 'allocating' while the pod holds GPUs on its node). */
  private trackShareBind(uid: string): void {
    const a = this.ledger.get(uid);
    const p = this.pods.get(uid);
    let node: string | null = null;
    if (a?.share) node = a.node;
    else if (p?.hold && !p.terminal && p.annotations[HAMI_BIND_PHASE] === 'allocating') node = p.hold.node;
    this.inFlight.setBind(uid, node);
  }

  /** Counts the share pod `uid` as in flight to `node` until its bind comes (or
   * BIND_PICK_TTL_MS); only for a pod of the cluster not bound yet. */
  pickForBind(uid: string, node: string): void {
    const p = this.pods.get(uid);
    const rec = this.nodes.get(node);
    if (!p || p.nodeName || p.terminal || this.ledger.has(uid) || !rec?.facts) return;
    this.inFlight.pick(uid, node, this.now() + BIND_PICK_TTL_MS);
  }

  private dropPick(uid: string): void {
    this.inFlight.dropPick(uid);
  }

  /** Share binds in flight to the node (taken in, the plugin not answered yet), and share
   * pods prioritize ranked it first for whose bind has not come; pod `except` not counted. */
  shareBindsInFlight(node: string, except = ''): number {
    if (!this.nodes.has(node)) return 0;
    return this.inFlight.count(node, this.now(), except);
  }

  private dropAssumedUses(uid: string): void {
    const a = this.ledger.get(uid);
    if (!a?.uses) return;
    this.load(this.nodes.get(a.node), a.uses, -1);
    this.ledger.set(uid, { ...a, uses: null });
  }

  private dropAssumed(uid: string): void {
    const a = this.ledger.get(uid);
    if (!a) return;
    this.ledger.delete(uid);
    this.trackShareBind(uid);
    const rec = this.nodes.get(a.node);
    if (!rec) return;
    for (const r of a.requests) rec.assumed[r.resource] = (rec.assumed[r.resource] ?? 0) - r.count;
    if (a.uses) this.load(rec, a.uses, -1);
    rec.views = null;
  }

  private assumedOn(node: string): number {
    const rec = this.nodes.get(node);
    if (!rec) return 0;
    let n = 0;
    for (const v of Object.values(rec.assumed)) n += v;
    return n;
  }

  // ---- reading -------------------------------------------------------------------

  private freeOf(rec: NodeRecord, resource: string): number {
    const alloc = rec.facts?.allocatable[resource] ?? 0;
    return Math.max(0, alloc - (rec.used[resource] ?? 0) - (rec.assumed[resource] ?? 0));
  }

  /** The node as the placement logic sees it for one resource; undefined if unknown. */
  nodeView(name: string, resource: string): NodeView | undefined {
    const rec = this.nodes.get(name);
    if (!rec?.facts) return undefined;
    // A plain object, not a Map: the key is the same configured resource string on every
    // call, which V8 looks up faster as a property.
    const views = (rec.views ??= Object.create(null) as Record<string, NodeView>);
    return (views[resource] ??= this.buildView(rec, rec.facts, resource));
  }

  /** A view from a Node object sent in the request (nodeCacheCapable false), with the
   * usage sluice knows of. */
  viewOfNode(node: V1Node, resource: string): NodeView {
    const facts = nodeFacts(node, this.resources, this.sharingFacts);
    const known = this.nodes.get(facts.name);
    const rec = known
      ? { ...known, facts }
      : {
          name: facts.name,
          facts,
          used: {},
          usedCpuMilli: 0,
          usedMemMiB: 0,
          assumed: {},
          pods: new Set<string>(),
          deviceLoad: new Map<string, DeviceLoad>(),
          views: null,
        };
    return this.buildView(rec, facts, resource);
  }

  /** The node as filter sees it for pod `uid` before placing it: without what the pod itself
   * holds there (a share bind cut short by a restart left its GPUs annotated on the pod; a
   * retried bind must not count them against the pod). */
  nodeViewFor(name: string, resource: string, uid: string): NodeView | undefined {
    const own = this.pods.get(uid)?.hold;
    if (!own || own.node !== name) return this.nodeView(name, resource);
    const rec = this.nodes.get(name);
    return rec?.facts ? this.buildView(rec, rec.facts, resource, own.uses) : undefined;
  }

  private buildView(rec: NodeRecord, facts: NodeFacts, resource: string, minus: readonly DeviceUse[] = []): NodeView {
    const capacity = facts.allocatable[resource] ?? 0;
    const free = Math.max(0, capacity - (rec.used[resource] ?? 0) - (rec.assumed[resource] ?? 0));
    const view: NodeView = {
      name: facts.name,
      product: facts.product,
      unusable: facts.unusable,
      gpus: capacity > 0 ? { capacity, freeWhole: free, partialFree: NO_PARTIALS } : undefined,
    };
    // GPUs HAMi's device plugin splits: the policies see each GPU's free share, fit sees
    // its memory, cores and slots (placement/shares.ts).
    const shared = facts.sharedGpus;
    if (shared && shared.resource === resource) {
      const devices = this.devices(rec, minus)!;
      view.gpus = devices.length > 0 ? slotsOfDevices(devices) : undefined;
      if (devices.length === 0 && shared.excluded.length > 0 && !view.unusable) view.unusable = `no usable GPU: ${shared.excluded.slice(0, 2).join('; ')}`;
    }
    // Free CPU and memory, when the node reports them: the fragmentation policy counts
    // GPUs that spent CPU or memory strand (the simulator scores with the same view).
    if (facts.cpuMilli > 0) view.cpuFreeMilli = facts.cpuMilli - rec.usedCpuMilli;
    if (facts.memMiB > 0) view.memFreeMiB = facts.memMiB - rec.usedMemMiB;
    return view;
  }

  /** HAMi's node lock on the node as the informer last saw it (undefined: none). */
  hamiLock(name: string): string | undefined {
    return this.nodes.get(name)?.facts?.hamiLock;
  }

  /** Why the node's HAMi registration was ignored (malformed), or null. */
  registrationProblem(name: string): string | null {
    return this.nodes.get(name)?.facts?.registrationProblem ?? null;
  }

  /** Labels of a known node (node selectors and affinity are matched against them). */
  nodeLabels(name: string): Readonly<Record<string, string>> | undefined {
    return this.nodes.get(name)?.facts?.labels;
  }

  /** Names of every node the cache knows (with facts). */
  nodeNames(): string[] {
    const out: string[] = [];
    for (const rec of this.nodes.values()) if (rec.facts) out.push(rec.name);
    return out;
  }

  hasNode(name: string): boolean {
    return !!this.nodes.get(name)?.facts;
  }

  pod(uid: string): PodRecord | undefined {
    return this.pods.get(uid);
  }

  podsOnNode(name: string): PodRecord[] {
    const rec = this.nodes.get(name);
    if (!rec) return [];
    return [...rec.pods].map((uid) => this.pods.get(uid)!).filter(Boolean);
  }

  /** Every pod in the cache (read-only view; the admin API's queue usage walks it). */
  allPods(): IterableIterator<Readonly<PodRecord>> {
    return this.pods.values();
  }

  /** The recent mix of GPU ask shapes (GPUs, CPU, memory, models), each with its scarcity
   * on the known nodes (placement/scarcity.ts), for the fragmentation policy. The same
   * array until a new pod is seen or a node's class changes. */
  sizeMix(): SizeMix {
    const from = this.recent.mix();
    const classes = (this.classes ??= nodeClasses(this.classFigures()));
    const w = this.mixWeighed;
    if (w && w.from === from && w.classes === classes) return w.out;
    const out = withScarcity(from, classes);
    this.mixWeighed = { from, classes, out };
    return out;
  }

  /** What an empty node of each known node can take: all its managed GPUs, product, CPU, memory. */
  private *classFigures(): Iterable<Omit<NodeClass, 'nodes'>> {
    for (const rec of this.nodes.values()) if (rec.facts) yield nodeClassFigures(rec.facts, this.resources);
  }

  /** GPU inventory per node: what /api/v1/nodes and the metrics report. */
  inventory(): Array<{
    name: string;
    resource: string;
    product: string;
    memoryMiB: number;
    total: number;
    used: number;
    assumed: number;
    free: number;
    unusable: string | null;
    /** Shared GPUs (HAMi's registration) with what is placed on each; absent otherwise. */
    gpus?: GpuDevice[];
    /** GPUs left out of the registration, each with why. */
    excluded?: string[];
  }> {
    const out = [];
    for (const rec of this.nodes.values()) {
      if (!rec.facts) continue;
      for (const resource of this.resources) {
        const total = rec.facts.allocatable[resource] ?? 0;
        if (total === 0) continue;
        out.push({
          name: rec.name,
          resource,
          product: rec.facts.product,
          memoryMiB: rec.facts.memoryMiB,
          total,
          used: rec.used[resource] ?? 0,
          assumed: rec.assumed[resource] ?? 0,
          free: this.freeOf(rec, resource),
          unusable: rec.facts.unusable,
          ...(rec.facts.sharedGpus?.resource === resource ? { gpus: this.devices(rec)!, excluded: rec.facts.sharedGpus.excluded } : {}),
        });
      }
    }
    return out;
  }

  get nodeCount(): number {
    let n = 0;
    for (const rec of this.nodes.values()) if (rec.facts) n++;
    return n;
  }

  get podCount(): number {
    return this.pods.size;
  }
}
