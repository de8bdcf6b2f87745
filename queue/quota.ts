// Quota accounting for the queue manager. Pure: fed with what pods hold, asked whether a
// unit may go.
//
// What counts as held: every live pod of a queue that is not gated — bound pods, and pods
// already released but not yet bound (a released pod cannot be gated again, so it holds
// its quota until it binds, finishes or is deleted).
//
// Rows (queue_limits): a pod counts against each row of its queue with the same resource
// whose model is '' (any) or matches the GPU product of the pod's node (or, before it is
// bound, one of the models the pod accepts; every row when it accepts any model).
//
// A unit may go when, for every resource it asks:
// 1. guaranteed QoS: some applicable row has room: held guaranteed + need <= guaranteed;
//    or the queue is in a cohort and the cohort's rows of that resource and model have
//    room together (borrowing idle guaranteed quota of the cohort's other queues);
// 2. best-effort QoS: some applicable row has room under its bestEffortCap (best-effort
//    never uses guaranteed quota);
// 3. either QoS: the user's GPUs in the queue (both QoS) + need stay within perUserMax of
//    some applicable row (0 = no cap).
// GPU shares (HAMi's device plugin) count as fractions of a GPU, their GPU-equivalents
// (ClusterCache.gpuEquivalents): four pods of 0.25 GPU hold 1 GPU of quota.
// "Some row" is the most permissive reading, the one admission applies too.
import type { ResourceAmount } from '../cluster/pod-request.js';
import { modelMatches } from '../placement/gpu-model.js';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';
import { WHOLE } from '../placement/types.js';
import { applicableLimits, type QueueLimit, type QueueSpec } from '../store/queue-directory.js';
import type { QosClass } from '../webhooks/labels.js';
import type { Unit } from './units.js';

export interface Holding {
  queue: string;
  user: string;
  qos: QosClass;
  /** GPUs per resource; GPU shares as fractions of a GPU (ClusterCache.gpuEquivalents). */
  requests: readonly ResourceAmount[];
  /** GPU product of the node the pod is bound to; null before it is bound. */
  product: string | null;
  models: readonly string[];
}

export type QuotaWait = { waitingFor: 'quota' | 'user_quota' | 'queue_missing'; reason: string };

interface RowUse {
  row: QueueLimit;
  guaranteed: number;
  bestEffort: number;
  byUser: Map<string, number>;
}

export interface QueueGpus {
  resource: string;
  used: number;
  bestEffortUsed: number;
  guaranteed: number;
  bestEffortCap: number;
}

/** Whether a pod's GPUs of `resource` count against a quota row (the rule at the top of this
 * file): bound pods by their node's product, released ones by the models they accept. */
export function rowHolds(row: QueueLimit, resource: string, product: string | null, models: readonly string[]): boolean {
  if (row.resource !== resource) return false;
  if (row.model === '') return true;
  if (product !== null) return product !== '' && modelMatches(product, row.model);
  // Released, not bound, any model accepted: it may land on any model's node, so it counts
  // against every row (the same rows admission and check() apply to it).
  if (models.length === 0) return true;
  return models.some((m) => modelMatches(row.model, m) || modelMatches(m, row.model));
}

export class QuotaLedger {
  // Every amount inside is milli-GPU (placement/shares.ts): GPU shares count as fractions
  // of a GPU (4 x 0.25 = 1), and sums of fractions stay exact. Quota rows are whole GPUs.
  private readonly rows = new Map<string, RowUse[]>();
  private readonly totals = new Map<string, number>();
  private readonly perResource = new Map<string, Map<string, { used: number; bestEffortUsed: number }>>();

  /** `unlimited`: no store is configured, so no quota is known: only capacity decides. */
  constructor(
    private readonly queues: ReadonlyMap<string, QueueSpec>,
    private readonly unlimited = false,
  ) {
    for (const [name, q] of queues) {
      this.rows.set(
        name,
        q.limits.map((row) => ({ row, guaranteed: 0, bestEffort: 0, byUser: new Map() })),
      );
    }
  }

  /** Counts what a pod holds; `requests` in GPUs, GPU shares as fractions (ClusterCache.gpuEquivalents). */
  add(h: Holding): void {
    let total = 0;
    for (const r of h.requests) {
      const m = gpusToMilli(r.count);
      total += m;
      const pr = this.perResource.get(h.queue) ?? new Map<string, { used: number; bestEffortUsed: number }>();
      this.perResource.set(h.queue, pr);
      const t = pr.get(r.resource) ?? { used: 0, bestEffortUsed: 0 };
      if (h.qos === 'best-effort') t.bestEffortUsed += m;
      else t.used += m;
      pr.set(r.resource, t);
      for (const u of this.rows.get(h.queue) ?? []) {
        if (!rowHolds(u.row, r.resource, h.product, h.models)) continue;
        if (h.qos === 'best-effort') u.bestEffort += m;
        else u.guaranteed += m;
        u.byUser.set(h.user, (u.byUser.get(h.user) ?? 0) + m);
      }
    }
    this.totals.set(h.queue, (this.totals.get(h.queue) ?? 0) + total);
  }

  /** GPUs the queue holds, both QoS, all resources: what fair share compares. */
  held(queue: string): number {
    return milliToGpus(this.totals.get(queue) ?? 0);
  }

  /** null when the unit's quota allows it to go, else why not. */
  check(unit: Pick<Unit, 'queue' | 'qos' | 'user' | 'need' | 'models'>): QuotaWait | null {
    if (this.unlimited) return null;
    const spec = this.queues.get(unit.queue);
    if (!spec) {
      return {
        waitingFor: 'queue_missing',
        reason: `queue ${unit.queue} does not exist (deleted while the job waited); ask a sluice admin to create it again, or delete the job and submit it to another queue`,
      };
    }
    const uses = this.rows.get(unit.queue) ?? [];
    for (const { resource, count } of unit.need) {
      const applicable = new Set(applicableLimits(spec.limits, resource, unit.models));
      const rows = uses.filter((u) => applicable.has(u.row));
      if (rows.length === 0) {
        return { waitingFor: 'quota', reason: `queue ${unit.queue} has no ${resource} quota${modelNote(unit.models)}; ask a sluice admin to add one` };
      }
      const need = gpusToMilli(count);
      const wait = unit.qos === 'best-effort' ? this.bestEffortWait(unit.queue, resource, need, rows) : this.guaranteedWait(spec, resource, need, rows);
      if (wait) return wait;
      const userWait = this.userWait(unit.queue, unit.user, resource, need, rows);
      if (userWait) return userWait;
    }
    return null;
  }

  /**
   * Could the unit's quota ever allow it, with nothing else held? A job that waits on
   * quota it can never get must not hold back others (backfill guard).
   */
  couldEverFit(unit: Pick<Unit, 'queue' | 'qos' | 'need' | 'models'>): boolean {
    if (this.unlimited) return true;
    const spec = this.queues.get(unit.queue);
    if (!spec) return false;
    return unit.need.every(({ resource, count }) => {
      const rows = applicableLimits(spec.limits, resource, unit.models);
      const need = gpusToMilli(count);
      if (unit.qos === 'best-effort') return rows.some((r) => need <= r.bestEffortCap * WHOLE);
      return rows.some((r) => need <= r.guaranteed * WHOLE || (spec.cohort !== null && need <= this.cohortTotal(spec.cohort, r)));
    });
  }

  /** Guaranteed milli of this row's resource and model over the cohort. */
  private cohortTotal(cohort: string, row: QueueLimit): number {
    let total = 0;
    for (const q of this.queues.values()) {
      if (q.cohort !== cohort) continue;
      for (const l of q.limits) if (l.resource === row.resource && l.model === row.model) total += l.guaranteed * WHOLE;
    }
    return total;
  }

  private guaranteedWait(spec: QueueSpec, resource: string, need: number, rows: RowUse[]): QuotaWait | null {
    if (rows.some((u) => u.guaranteed + need <= u.row.guaranteed * WHOLE)) return null;
    if (spec.cohort !== null && rows.some((u) => this.cohortRoom(spec.cohort!, u.row) >= need)) return null;
    const best = rows.reduce((a, b) => (b.row.guaranteed * WHOLE - b.guaranteed > a.row.guaranteed * WHOLE - a.guaranteed ? b : a));
    const cohort = spec.cohort !== null ? ` (cohort ${spec.cohort} has no idle quota to lend)` : '';
    return {
      waitingFor: 'quota',
      reason: `queue ${spec.name}: ${milliToGpus(best.guaranteed)} of ${best.row.guaranteed} guaranteed ${resource}${rowModel(best.row)} in use, job needs ${milliToGpus(need)}${cohort}`,
    };
  }

  /** Guaranteed milli of this row's resource and model left unused across the cohort. */
  private cohortRoom(cohort: string, row: QueueLimit): number {
    let room = 0;
    for (const [name, q] of this.queues) {
      if (q.cohort !== cohort) continue;
      for (const u of this.rows.get(name) ?? []) {
        if (u.row.resource === row.resource && u.row.model === row.model) room += u.row.guaranteed * WHOLE - u.guaranteed;
      }
    }
    return room;
  }

  private bestEffortWait(queue: string, resource: string, need: number, rows: RowUse[]): QuotaWait | null {
    if (rows.some((u) => u.bestEffort + need <= u.row.bestEffortCap * WHOLE)) return null;
    const best = rows.reduce((a, b) => (b.row.bestEffortCap * WHOLE - b.bestEffort > a.row.bestEffortCap * WHOLE - a.bestEffort ? b : a));
    return {
      waitingFor: 'quota',
      reason: `queue ${queue}: ${milliToGpus(best.bestEffort)} of ${best.row.bestEffortCap} best-effort ${resource}${rowModel(best.row)} in use (bestEffortCap), job needs ${milliToGpus(need)}`,
    };
  }

  private userWait(queue: string, user: string, resource: string, need: number, rows: RowUse[]): QuotaWait | null {
    if (rows.some((u) => u.row.perUserMax === 0)) return null;
    const held = (u: RowUse): number => u.byUser.get(user) ?? 0;
    if (rows.some((u) => held(u) + need <= u.row.perUserMax * WHOLE)) return null;
    const best = rows.reduce((a, b) => (b.row.perUserMax * WHOLE - held(b) > a.row.perUserMax * WHOLE - held(a) ? b : a));
    return {
      waitingFor: 'user_quota',
      reason: `user ${user || '(unknown)'} holds ${milliToGpus(held(best))} of at most ${best.row.perUserMax} ${resource}${rowModel(best.row)} in queue ${queue} (perUserMax), job needs ${milliToGpus(need)}`,
    };
  }

  /** Per resource: held (GPUs, shares as fractions such as 1.25) and quota, for metrics and the API. */
  gpus(queue: string): QueueGpus[] {
    const spec = this.queues.get(queue);
    const out = new Map<string, QueueGpus>();
    for (const l of spec?.limits ?? []) {
      const g = out.get(l.resource) ?? { resource: l.resource, used: 0, bestEffortUsed: 0, guaranteed: 0, bestEffortCap: 0 };
      // Rows of one resource overlap ('' and model rows); the most permissive is the ceiling.
      g.guaranteed = Math.max(g.guaranteed, l.guaranteed);
      g.bestEffortCap = Math.max(g.bestEffortCap, l.bestEffortCap);
      out.set(l.resource, g);
    }
    for (const [resource, t] of this.perResource.get(queue) ?? []) {
      const g = out.get(resource) ?? { resource, used: 0, bestEffortUsed: 0, guaranteed: 0, bestEffortCap: 0 };
      g.used = milliToGpus(t.used);
      g.bestEffortUsed = milliToGpus(t.bestEffortUsed);
      out.set(resource, g);
    }
    return [...out.values()];
  }
}

const rowModel = (row: QueueLimit): string => (row.model ? ` (model ${row.model})` : '');
const modelNote = (models: readonly string[]): string => (models.length > 0 ? ` for GPU model ${models.join(',')}` : '');
