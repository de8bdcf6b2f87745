// The policies the replay compares, each a decision pass with evaluate()'s signature, so
// that the replay and the ETA forecast run them alike. sluice's is evaluate() itself; the
// two baselines use the same quota ledger and capacity model (quota.ts, capacity.ts) and
// differ only in order and in what a job that cannot go does to the jobs behind it.
import { evaluate, type EvaluationInput } from '../../queue/evaluate.js';
import type { DecisionPass } from '../../queue/forecast.js';
import type { Unit } from '../../queue/units.js';

export const POLICIES = ['sluice', 'fifo', 'strict'] as const;
export type PolicyName = (typeof POLICIES)[number];

export const POLICY_LABELS: Record<PolicyName, string> = {
  sluice: 'sluice (fair share, priority, backfill with guard)',
  fifo: 'FIFO (arrival order across queues, jobs that cannot go are skipped)',
  strict: 'strict priority, no backfill (Kueue StrictFIFO)',
};

/**
 * FIFO: one order for every queue:
 * 1. earlier submission first;
 * 2. then by key.
 * A job goes when its quota and a node allow; one that cannot is skipped (no guard, no
 * fair share, no priority).
 */
export const fifoOrder = (a: Unit, b: Unit): number => a.submittedMs - b.submittedMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * Strict priority (Kueue StrictFIFO, per queue):
 * 1. higher priority first;
 * 2. then earlier submission;
 * 3. then by key.
 * The first job of a queue that cannot go blocks every later job of that queue (no
 * backfill); other queues go on.
 */
export const strictOrder = (a: Unit, b: Unit): number => b.priority - a.priority || fifoOrder(a, b);

function sequential(order: (a: Unit, b: Unit) => number, headBlocksQueue: boolean): DecisionPass {
  return (input: EvaluationInput) => {
    const releases: Unit[] = [];
    const placements = new Map<Unit, readonly string[]>();
    const blocked = new Set<string>();
    for (const u of [...input.units].sort(order)) {
      if (blocked.has(u.queue)) continue;
      const ok =
        input.ledger.check(u) === null &&
        (() => {
          const placed = input.capacity.place(u.pods, u.qos);
          if (placed.ok) placements.set(u, placed.nodes);
          return placed.ok;
        })();
      if (!ok) {
        if (headBlocksQueue) blocked.add(u.queue);
        continue;
      }
      releases.push(u);
      for (const p of u.pods) input.ledger.add({ queue: u.queue, user: u.user, qos: u.qos, requests: p.gpus ?? p.requests, product: null, models: p.models });
    }
    return { releases, placements };
  };
}

export const PASSES: Record<PolicyName, DecisionPass> = {
  sluice: evaluate,
  fifo: sequential(fifoOrder, false),
  strict: sequential(strictOrder, true),
};
