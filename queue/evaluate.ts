// One pass of the queue manager over every waiting job. Pure: given the waiting units, the
// quota ledger (what queues hold now) and the capacity model (what nodes have free now),
// decide which units go and why each other one waits.
//
// The pass, in order:
// 0. Jobs that have waited longer than the backfill guard (queue.backfillGuardSeconds)
//    come first, oldest first, whatever their queue.
// 1. Then queues take turns by fair share (order.ts compareQueues); within a queue jobs come
//    in priority-then-FIFO order (compareUnits).
// 2. A job goes when its quota allows (quota.ts), and every one of its pods can be placed
//    on real nodes (capacity.ts). Its GPUs then count as held and placed for the rest of
//    the pass.
// 3. Backfill: a job that cannot go does not stop later jobs that can. But a job that has
//    waited longer than the backfill guard reserves what it waits for, when it could ever
//    get it: later jobs that would take the same quota (same queue, resource and QoS), or
//    GPUs on a node it could use (same resource, overlapping models; for a guaranteed job
//    only guaranteed ones, since best-effort GPUs are reclaimable) wait behind it. So
//    nothing starves: once a job is old enough, what frees up is kept for it.
// 4. A gang already in flight (some pods released) goes at once, without checks.
import { modelMatches } from '../placement/gpu-model.js';
import type { CapacityModel } from './capacity.js';
import { compareQueues, compareUnits, type QueueTurn } from './order.js';
import type { QuotaLedger } from './quota.js';
import type { Unit } from './units.js';

export type WaitingFor = 'gang' | 'invalid' | 'queue_missing' | 'quota' | 'user_quota' | 'order' | 'capacity';

export interface Waiting {
  unit: Unit;
  /** 1-based place among the queue's waiting jobs, in release order. */
  position: number;
  waitingFor: WaitingFor;
  reason: string;
}

export interface Evaluation {
  releases: Unit[];
  /** Per released unit, the node each of its pods is modelled to land on ('' when unknown). */
  placements: Map<Unit, readonly string[]>;
  /** Per queue, its waiting jobs in release order. */
  waiting: Map<string, Waiting[]>;
}

export interface EvaluationInput {
  units: readonly Unit[];
  ledger: QuotaLedger;
  capacity: CapacityModel;
  weights: ReadonlyMap<string, number>;
  nowMs: number;
  backfillGuardMs: number;
}

interface Reservation {
  unit: Unit;
  kind: 'capacity' | 'quota';
  /** capacity: the nodes the starving job could ever use. */
  eligible: Set<string> | null;
  /** Reservations with one key hold back the same jobs: only the oldest is kept. */
  key: string;
}

/** Adds a reservation unless an older one already holds back the same jobs. */
function reserve(held: Reservation[], r: Reservation): void {
  if (!held.some((h) => h.key === r.key)) held.push(r);
}

const resourcesOf = (u: Unit): string =>
  u.need
    .map((n) => n.resource)
    .sort()
    .join(',');

export function evaluate(input: EvaluationInput): Evaluation {
  const { ledger, capacity } = input;
  const byQueue = new Map<string, Unit[]>();
  for (const u of input.units) {
    const list = byQueue.get(u.queue);
    if (list) list.push(u);
    else byQueue.set(u.queue, [u]);
  }
  for (const list of byQueue.values()) list.sort(compareUnits);

  const next = new Map<string, number>();
  const releases: Unit[] = [];
  const placements = new Map<Unit, readonly string[]>();
  const verdicts = new Map<Unit, { waitingFor: WaitingFor; reason: string }>();
  const reservations: Reservation[] = [];

  const decided = new Set<Unit>();
  const settle = (u: Unit): void => {
    decided.add(u);
    const wait = decide(u, input, reservations);
    if (wait) {
      verdicts.set(u, wait);
      return;
    }
    releases.push(u);
    for (const p of u.pods) ledger.add({ queue: u.queue, user: u.user, qos: u.qos, requests: p.gpus ?? p.requests, product: null, models: p.models });
  };

  const starving = input.units.filter((u) => input.nowMs - u.submittedMs > input.backfillGuardMs);
  starving.sort((a, b) => a.submittedMs - b.submittedMs || compareUnits(a, b));
  for (const u of starving) settle(u);

  for (;;) {
    let turn: QueueTurn | null = null;
    for (const [name, list] of byQueue) {
      let i = next.get(name) ?? 0;
      while (i < list.length && decided.has(list[i]!)) i++;
      next.set(name, i);
      if (i >= list.length) continue;
      const t: QueueTurn = { name, held: ledger.held(name), weight: input.weights.get(name) ?? 1, head: list[i]! };
      if (!turn || compareQueues(t, turn) < 0) turn = t;
    }
    if (!turn) break;
    next.set(turn.name, (next.get(turn.name) ?? 0) + 1);
    settle(turn.head);
  }

  const waiting = new Map<string, Waiting[]>();
  for (const [name, list] of byQueue) {
    const w: Waiting[] = [];
    for (const u of list) {
      const v = verdicts.get(u);
      if (v) w.push({ unit: u, position: w.length + 1, ...v });
    }
    waiting.set(name, w);
  }
  return { releases, placements, waiting };

  function decide(u: Unit, inp: EvaluationInput, held: Reservation[]): { waitingFor: WaitingFor; reason: string } | null {
    if (u.problem) return u.problem;
    if (u.inFlight) {
      const p = capacity.place(u.pods, u.qos); // counts its GPUs if they fit; it goes regardless
      placements.set(u, p.ok ? p.nodes : u.pods.map(() => ''));
      return null;
    }
    const starving = inp.nowMs - u.submittedMs > inp.backfillGuardMs;
    const quota = ledger.check(u);
    if (quota) {
      if (starving && quota.waitingFor === 'quota' && ledger.couldEverFit(u))
        reserve(held, { unit: u, kind: 'quota', eligible: null, key: `quota|${u.queue}|${u.qos}|${resourcesOf(u)}` });
      return quota;
    }
    const quotaBlocker = held.find((r) => r.kind === 'quota' && holdsBack(r, u));
    if (quotaBlocker) return behind(quotaBlocker, u, inp.nowMs);
    const placed = capacity.place(u.pods, u.qos);
    if (!placed.ok) {
      if (starving && placed.resolvable) {
        reserve(held, {
          unit: u,
          kind: 'capacity',
          eligible: capacity.eligibleNodes(u.pods, u.qos),
          key: `capacity|${resourcesOf(u)}|${u.models.join(',')}|${capacity.shapesKey(u.pods, u.qos)}`,
        });
      }
      return { waitingFor: 'capacity', reason: placed.reason };
    }
    // Backfill only where it cannot delay a starving job: not onto a node it could use.
    const capacityBlocker = held.find((r) => r.kind === 'capacity' && holdsBack(r, u) && placed.nodes.some((n) => r.eligible!.has(n)));
    if (capacityBlocker) {
      placed.undo();
      return behind(capacityBlocker, u, inp.nowMs);
    }
    placements.set(u, placed.nodes);
    return null;
  }
}

function behind(blocker: Reservation, u: Unit, nowMs: number): { waitingFor: WaitingFor; reason: string } {
  const waited = Math.round((nowMs - blocker.unit.submittedMs) / 1000);
  const what = blocker.kind === 'quota' ? `queue ${u.queue}'s quota` : 'the GPUs it needs';
  return {
    waitingFor: 'order',
    reason: `waits behind ${blocker.unit.namespace}/${blocker.unit.job}, which has waited ${waited} s (longer than the backfill guard) and holds ${what}`,
  };
}

/** Would releasing `u` take what the starving reservation `r` waits for? */
function holdsBack(r: Reservation, u: Unit): boolean {
  const shares = u.need.some((n) => r.unit.need.some((m) => m.resource === n.resource));
  if (!shares) return false;
  if (r.kind === 'quota') return r.unit.queue === u.queue && r.unit.qos === u.qos;
  if (r.unit.qos === 'guaranteed' && u.qos === 'best-effort') return false;
  return modelsOverlap(r.unit.models, u.models);
}

function modelsOverlap(a: readonly string[], b: readonly string[]): boolean {
  if (a.length === 0 || b.length === 0) return true;
  return a.some((x) => b.some((y) => modelMatches(x, y) || modelMatches(y, x)));
}
