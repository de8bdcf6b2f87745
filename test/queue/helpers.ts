// Builders for the queue manager's pure tests: pods shaped as the mutating webhook leaves
// them (labels, gate), a cache to hold them, queue specs, and hand-made Units.
import type { V1Affinity, V1Node, V1Pod } from '@kubernetes/client-node';
import { ClusterCache } from '../../cluster/cache.js';
import type { QueueLimit, QueueSpec } from '../../store/queue-directory.js';
import type { Unit, UnitPod } from '../../queue/units.js';
import { evaluate, type Evaluation, type Waiting } from '../../queue/evaluate.js';
import { buildState, type QueueState } from '../../queue/state.js';
import { gpuPod } from '../helpers/k8s.js';

export const GPU = 'nvidia.com/gpu';
export const T0 = Date.parse('2024-01-01T00:00:00Z');

export interface QueuedPodOpts {
  queue?: string;
  qos?: 'guaranteed' | 'best-effort';
  job?: string;
  gang?: number | string;
  user?: string;
  gpus?: number;
  /** Creation time, ms. */
  created?: number;
  priority?: number;
  /** sluice.io/gpu-model annotation. */
  model?: string;
  /** Still gated (waiting); false = released. */
  gated?: boolean;
  node?: string;
  uid?: string;
  namespace?: string;
  phase?: string;
  nodeSelector?: Record<string, string>;
  affinity?: V1Affinity;
}

let seq = 0;
/** A pod as the webhook leaves it: queue labels, and the sluice.io/queue gate while it waits. */
export function queuedPod(name: string, o: QueuedPodOpts = {}): V1Pod {
  const labels: Record<string, string> = {
    'sluice.io/queue': o.queue ?? 'team-a',
    'sluice.io/qos': o.qos ?? 'guaranteed',
    'sluice.io/job': o.job ?? name,
    'sluice.io/user': o.user ?? 'alice',
  };
  if (o.gang !== undefined) labels['sluice.io/gang-size'] = String(o.gang);
  const annotations: Record<string, string> = {};
  if (o.model) annotations['sluice.io/gpu-model'] = o.model;
  const p = gpuPod(name, {
    gpus: o.gpus ?? 1,
    labels,
    annotations,
    uid: o.uid ?? `u-${name}-${++seq}`,
    ...(o.node ? { node: o.node } : {}),
    ...(o.phase ? { phase: o.phase } : {}),
  });
  p.metadata!.namespace = o.namespace ?? 'team-a';
  p.metadata!.creationTimestamp = new Date(o.created ?? T0) as unknown as Date;
  const gated = o.gated ?? !o.node;
  if (gated) p.spec!.schedulingGates = [{ name: 'sluice.io/queue' }];
  if (o.priority !== undefined) p.spec!.priority = o.priority;
  if (o.nodeSelector) p.spec!.nodeSelector = o.nodeSelector;
  if (o.affinity) p.spec!.affinity = o.affinity;
  return p;
}

export function newCache(nodes: V1Node[] = [], pods: V1Pod[] = []): ClusterCache {
  const c = new ClusterCache({ resources: [GPU], assumeTtlMs: 30_000, recentPodWindow: 100 });
  c.replaceAll(nodes, pods);
  return c;
}

export function limit(o: Partial<QueueLimit> = {}): QueueLimit {
  return { resource: GPU, model: '', guaranteed: 0, bestEffortCap: 0, perJobMax: 0, perUserMax: 0, ...o };
}

export function queueSpec(name: string, limits: QueueLimit[], o: Partial<QueueSpec> = {}): QueueSpec {
  return { name, parent: null, cohort: null, open: true, weight: 1, limits, ...o };
}

export const queues = (...specs: QueueSpec[]): Map<string, QueueSpec> => new Map(specs.map((s) => [s.name, s]));

export function unitPodOf(name: string, gpus: number, o: Partial<UnitPod> = {}): UnitPod {
  return {
    uid: `uid-${name}`,
    name,
    requests: gpus > 0 ? [{ resource: GPU, count: gpus }] : [],
    models: [],
    nodeSelector: {},
    affinityTerms: null,
    gateIndex: 0,
    ...o,
  };
}

/** A hand-made unit of `pods` pods of `gpus` GPUs each. */
export function unit(key: string, o: Partial<Unit> & { gpus?: number; podCount?: number } = {}): Unit {
  const podCount = o.podCount ?? 1;
  const gpus = o.gpus ?? 1;
  const models = o.models ?? [];
  const pods = o.pods ?? Array.from({ length: podCount }, (_, i) => unitPodOf(`${key}-${i}`, gpus, { models }));
  const need = o.need ?? [{ resource: GPU, count: pods.reduce((s, p) => s + (p.requests[0]?.count ?? 0), 0) }];
  const { gpus: _g, podCount: _p, ...rest } = o;
  return {
    key,
    namespace: 'team-a',
    job: key,
    queue: 'team-a',
    qos: 'guaranteed',
    user: 'alice',
    priority: 0,
    submittedMs: T0,
    seenMs: 0,
    gangSize: podCount,
    podsSeen: podCount,
    inFlight: false,
    problem: null,
    ...rest,
    pods,
    need,
    models,
  };
}

/** Deterministic PRNG (mulberry32): the simulator's. */
export { seededRandom as prng } from '../../bench/simulate/engine.js';

/** One evaluation pass over the cache, as the manager runs it. */
export function pass(
  cache: ClusterCache,
  qs: ReadonlyMap<string, QueueSpec> | 'unlimited',
  nowMs: number,
  o: { guardMs?: number; weights?: ReadonlyMap<string, number>; releasing?: ReadonlySet<string> } = {},
): { state: QueueState; ev: Evaluation } {
  const state = buildState(cache, qs, o.releasing ?? new Set());
  const weights = o.weights ?? new Map(qs === 'unlimited' ? [] : [...qs.values()].map((q) => [q.name, q.weight] as [string, number]));
  const ev = evaluate({ units: state.units, ledger: state.ledger, capacity: state.capacity, weights, nowMs, backfillGuardMs: o.guardMs ?? 600_000 });
  return { state, ev };
}

/** The keys of the released units, in release order. */
export const keys = (ev: Evaluation): string[] => ev.releases.map((u) => u.key);

/** The waiting entry of a unit key, wherever it waits. */
export function waitOf(ev: Evaluation, key: string): Waiting | undefined {
  for (const list of ev.waiting.values()) for (const w of list) if (w.unit.key === key) return w;
  return undefined;
}

// ---- GPU shares (HAMi's device plugin) ---------------------------------------------------

export const SHARE_NAMES = { resource: GPU, memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' };

/** A cache with GPU sharing on (config sharing.enabled), as the queue manager runs with it. */
export function newShareCache(nodes: V1Node[] = [], pods: V1Pod[] = []): ClusterCache {
  const c = new ClusterCache({ resources: [GPU], assumeTtlMs: 30_000, recentPodWindow: 100, sharing: { names: SHARE_NAMES, handshakeTimeoutMs: 60_000 } });
  c.replaceAll(nodes, pods);
  return c;
}

export interface SharePodOpts extends QueuedPodOpts {
  /** nvidia.com/gpumem (MiB). */
  memMiB?: number;
  /** nvidia.com/gpumem-percentage. */
  percent?: number;
  /** nvidia.com/gpucores. */
  cores?: number;
  /** Bound and allocated on this GPU of `node` (test/helpers/hami-agent.ts hamiNode names
   * GPU i of node n "GPU-n-i"), with this much memory. */
  onGpu?: { index: number; memMiB: number };
}

/** A queued pod asking one GPU share, as the webhook leaves it; bound with HAMi's device
 * list when `node` and `onGpu` are given (bind phase success, as after the plugin's Allocate). */
export function queuedShare(name: string, o: SharePodOpts = {}): V1Pod {
  const p = queuedPod(name, { ...o, gpus: o.gpus ?? 1 });
  const limits: Record<string, string> = { [GPU]: String(o.gpus ?? 1) };
  if (o.memMiB !== undefined) limits[SHARE_NAMES.memory] = String(o.memMiB);
  if (o.percent !== undefined) limits[SHARE_NAMES.memoryPercent] = String(o.percent);
  if (o.cores !== undefined) limits[SHARE_NAMES.cores] = String(o.cores);
  p.spec!.containers[0]!.resources = { requests: { cpu: '1', [GPU]: String(o.gpus ?? 1) }, limits };
  if (o.node && o.onGpu) {
    p.metadata!.annotations = {
      ...p.metadata!.annotations,
      'hami.io/vgpu-node': o.node,
      'hami.io/bind-phase': 'success',
      'hami.io/vgpu-devices-allocated': `GPU-${o.node}-${o.onGpu.index},NVIDIA,${o.onGpu.memMiB},${o.cores ?? 0}:;`,
    };
  }
  return p;
}
