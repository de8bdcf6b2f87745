// What the console's pages show, computed from the same sources as the admin API: the
// cluster cache (nodes as placement/ sees them, the recent pod mix), the queue manager's
// last evaluation, queueUsage() and the quota rows' rule (queue/quota.ts). Pure: no I/O, no
// second model of the cluster.
import type { ClusterCache } from '../cluster/cache.js';
import { queueUsage } from '../api/usage.js';
import { fragmentation } from '../placement/policies.js';
import { WHOLE, type SizeMix } from '../placement/types.js';
import type { Snapshot } from '../queue/manager.js';
import { rowHolds } from '../queue/quota.js';

/** One node and one GPU resource as a row of GPU cells. */
export interface NodeRow {
  /** `${node}|${resource}`: rows are keyed by it in the browser. */
  id: string;
  name: string;
  resource: string;
  model: string;
  /** Per GPU, milli in use: 0 free, 1000 whole, between: shared (that full). Whole GPUs first. */
  cells: number[];
  /** Why the node's GPUs cannot be used; '' when healthy. */
  unhealthy: string;
  /** Expected free GPUs a pod drawn from the recent mix could not use (FGD's measure), 1 decimal. */
  stranded: number;
}

export interface ClusterTotals {
  nodes: number;
  gpus: number;
  whole: number;
  shared: number;
  free: number;
  unhealthy: number;
  stranded: number;
}

export interface ClusterView {
  rows: NodeRow[];
  totals: ClusterTotals;
  byModel: Array<{ model: string; resource: string } & ClusterTotals>;
  /** The recent pod mix the stranded figures are measured against. */
  mix: Array<{ gpus: number; share: number; weight: number; models: readonly string[] }>;
}

/**
 * The mix as observed, without the scarcity weights of the fragmentation policy: then
 * fragmentation() / 1000 is in GPUs, the expected free GPUs the next pod cannot use.
 */
export function observedMix(mix: SizeMix): SizeMix {
  return mix.map((e) => ({
    count: e.count,
    milli: e.milli,
    weight: e.weight,
    ...(e.cpuMilli ? { cpuMilli: e.cpuMilli } : {}),
    ...(e.memMiB ? { memMiB: e.memMiB } : {}),
    ...(e.models ? { models: e.models } : {}),
  }));
}

/** The row of one node and resource, or null when the node has none of it. */
export function nodeRow(cache: ClusterCache, name: string, resource: string, mix: SizeMix): NodeRow | null {
  const view = cache.nodeView(name, resource);
  const g = view?.gpus;
  if (!view || !g || g.capacity === 0) return null;
  const cells: number[] = [];
  const wholeUsed = Math.max(0, g.capacity - g.freeWhole - g.partialFree.length);
  for (let i = 0; i < wholeUsed; i++) cells.push(WHOLE);
  for (const f of g.partialFree) cells.push(WHOLE - f);
  for (let i = 0; i < g.freeWhole; i++) cells.push(0);
  const stranded = view.unusable || mix.length === 0 ? 0 : Math.round(fragmentation(g, mix, view) / 100) / 10;
  return { id: `${name}|${resource}`, name, resource, model: view.product, cells, unhealthy: view.unusable ?? '', stranded };
}

const zero = (): ClusterTotals => ({ nodes: 0, gpus: 0, whole: 0, shared: 0, free: 0, unhealthy: 0, stranded: 0 });

function add(t: ClusterTotals, r: NodeRow): void {
  t.nodes++;
  t.gpus += r.cells.length;
  t.stranded += r.stranded;
  if (r.unhealthy) {
    t.unhealthy += r.cells.length;
    return;
  }
  for (const c of r.cells) {
    if (c === 0) t.free++;
    else if (c >= WHOLE) t.whole++;
    else t.shared++;
  }
}

// One collator for every comparison: localeCompare with options builds one per call.
const byName = new Intl.Collator('en', { numeric: true }).compare;

export function clusterView(cache: ClusterCache): ClusterView {
  const mix = observedMix(cache.sizeMix());
  const rows: NodeRow[] = [];
  for (const name of cache.nodeNames()) {
    for (const resource of cache.resources) {
      const row = nodeRow(cache, name, resource, mix);
      if (row) rows.push(row);
    }
  }
  rows.sort((a, b) => byName(a.model, b.model) || byName(a.resource, b.resource) || byName(a.name, b.name));
  const totals = zero();
  const groups = new Map<string, { model: string; resource: string } & ClusterTotals>();
  for (const r of rows) {
    add(totals, r);
    const key = `${r.model}|${r.resource}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { model: r.model, resource: r.resource, ...zero() }));
    add(g, r);
  }
  const round = (t: ClusterTotals): void => void (t.stranded = Math.round(t.stranded * 10) / 10);
  round(totals);
  for (const g of groups.values()) round(g);
  return {
    rows,
    totals,
    byModel: [...groups.values()],
    mix: mix.map((e) => ({ gpus: e.count, share: e.milli / WHOLE, weight: Math.round(e.weight * 1000) / 1000, models: e.models ?? [] })),
  };
}

/** One line of a queue: a quota row (resource and model, as the queue defines it), or GPUs
 * held on a model no row of the queue covers. */
export interface QueueLine {
  resource: string;
  /** The row's model ('' = any model), or the product held on outside every row. */
  model: string;
  /** False: GPUs held on a model no quota row covers (quota and cap 0). */
  quota: boolean;
  guaranteedQuota: number;
  guaranteedHeld: number;
  /** Guaranteed GPUs held beyond this row's quota: lent by the queue's cohort. */
  borrowed: number;
  bestEffortCap: number;
  bestEffortHeld: number;
  /** What the line counts, per GPU product of the nodes (both QoS): one entry for a model row,
   * each product held on for an any-model row. */
  heldOn: Array<{ model: string; gpus: number }>;
}

export interface QueueRow {
  name: string;
  cohort: string | null;
  weight: number;
  open: boolean;
  /** GPUs held, both QoS, every resource: what fair share compares. */
  held: number;
  /** held / weight, and the queue's place when queues take turns (1 = offered first). */
  standing: number;
  turn: number;
  /** held x weight / (sum of weights): the share its weight gives it of what all queues hold. */
  fairShare: number;
  waiting: number;
  /** Per resource and GPU model. */
  resources: QueueLine[];
}

/**
 * Per queue and GPU model: each quota row (as GET /api/v1/queues/:name/usage lists it in
 * `limits`) against what the queue holds by the rows' own rule (queue/quota.ts rowHolds:
 * a model row counts pods on nodes of that model, an any-model row all of them) from the
 * bound pods (queueUsage, that endpoint's `byModel`); GPUs held on a model no row covers
 * get a line without quota. Borrowing, the best-effort cap, fair-share standing and waiting
 * jobs (the manager's last pass) alongside.
 */
export function queuesView(cache: ClusterCache, snap: Pick<Snapshot, 'queues' | 'waiting'>): QueueRow[] {
  const products = new Map(cache.inventory().map((n) => [n.name, n.product]));
  const names = new Set([...snap.queues.keys(), ...snap.waiting.keys()]);
  const rows: QueueRow[] = [];
  for (const name of names) {
    const spec = snap.queues.get(name);
    const usage = queueUsage(
      name,
      cache.allPods(),
      (node) => products.get(node) ?? '',
      (p) => cache.gpuEquivalents(p),
    );
    const held = usage.totals.reduce((a, t) => a + t.guaranteed + t.bestEffort, 0);
    const weight = spec?.weight ?? 1;
    const limits = [...(spec?.limits ?? [])].sort(
      (a, b) => byName(a.resource, b.resource) || (a.model === '' ? -1 : b.model === '' ? 1 : byName(a.model, b.model)),
    );
    const lines: QueueLine[] = limits.map((l) => {
      const counted = usage.byModel.filter((u) => rowHolds(l, u.resource, u.model, []));
      const guaranteedHeld = counted.reduce((a, u) => a + u.guaranteed, 0);
      return {
        resource: l.resource,
        model: l.model,
        quota: true,
        guaranteedQuota: l.guaranteed,
        guaranteedHeld,
        borrowed: spec?.cohort ? Math.max(0, guaranteedHeld - l.guaranteed) : 0,
        bestEffortCap: l.bestEffortCap,
        bestEffortHeld: counted.reduce((a, u) => a + u.bestEffort, 0),
        heldOn: counted.map((u) => ({ model: u.model, gpus: u.guaranteed + u.bestEffort })),
      };
    });
    for (const u of usage.byModel) {
      if (limits.some((l) => rowHolds(l, u.resource, u.model, []))) continue;
      lines.push({
        resource: u.resource,
        model: u.model,
        quota: false,
        guaranteedQuota: 0,
        guaranteedHeld: u.guaranteed,
        borrowed: 0,
        bestEffortCap: 0,
        bestEffortHeld: u.bestEffort,
        heldOn: [{ model: u.model, gpus: u.guaranteed + u.bestEffort }],
      });
    }
    rows.push({
      name,
      cohort: spec?.cohort ?? null,
      weight,
      open: spec?.open ?? false,
      held,
      standing: held / weight,
      turn: 0,
      fairShare: 0,
      waiting: snap.waiting.get(name)?.length ?? 0,
      resources: lines,
    });
  }
  // The order of queue/order.ts compareQueues (held / weight, then name; the head job's
  // age breaks ties there, which a table of queues has no single value for).
  rows.sort((a, b) => a.standing - b.standing || a.name.localeCompare(b.name));
  const totalHeld = rows.reduce((a, r) => a + r.held, 0);
  const totalWeight = rows.reduce((a, r) => a + r.weight, 0);
  rows.forEach((r, i) => {
    r.turn = i + 1;
    r.standing = Math.round(r.standing * 100) / 100;
    r.fairShare = totalWeight > 0 ? Math.round(((totalHeld * r.weight) / totalWeight) * 10) / 10 : 0;
  });
  return rows;
}
