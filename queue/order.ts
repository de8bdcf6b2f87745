// The queue manager's ordering rules, each a doc-comment list and code that is exactly
// that list (the model is Kueue's pkg/scheduler/preemption ordering).
import type { Unit } from './units.js';

/**
 * Release order of the jobs within one queue:
 * 1. higher pod priority first;
 * 2. earlier submission first (FIFO: the creation time of the job's oldest pod);
 * 3. creation times are whole seconds: within one, the pod sluice saw first;
 * 4. then by key (namespace/job[/pod]), so the order is total.
 */
export function compareUnits(a: Unit, b: Unit): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.submittedMs !== b.submittedMs) return a.submittedMs - b.submittedMs;
  if (a.seenMs !== b.seenMs) return a.seenMs - b.seenMs;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export interface QueueTurn {
  name: string;
  /** GPUs the queue holds now (both QoS, every resource), including releases of this pass. */
  held: number;
  weight: number;
  /** The queue's next job to consider. */
  head: Unit;
}

/**
 * Which queue offers its next job first (fair share across queues):
 * 1. the queue furthest below its weighted share: the lowest held / weight. With U GPUs
 *    held by the queues that have work and W the sum of their weights, queue q's share is
 *    U * weight_q / W; held_q / weight_q is lowest exactly for the queue with the lowest
 *    held_q / share_q;
 * 2. then the queue whose next job is older (FIFO across queues);
 * 3. then by queue name.
 * Held GPUs grow with every release of the pass, so queues take turns in proportion to
 * their weights.
 */
export function compareQueues(a: QueueTurn, b: QueueTurn): number {
  const sa = a.held / a.weight;
  const sb = b.held / b.weight;
  if (sa !== sb) return sa - sb;
  if (a.head.submittedMs !== b.head.submittedMs) return a.head.submittedMs - b.head.submittedMs;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
