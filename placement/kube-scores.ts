// kube-scheduler's own node scores that are added to an extender's (v1.28, default
// profile), for the trace simulator's --extender-scores. Integer arithmetic as in
// pkg/scheduler/framework/plugins/noderesources:
//   NodeResourcesFit, LeastAllocated (least_allocated.go), resources cpu and memory at
//     weight 1: per resource ((allocatable - requested) * 100) / allocatable (0 when
//     requested > allocatable, integer division), then the weighted mean (integer);
//   NodeResourcesBalancedAllocation (balanced_allocation.go): fractions requested /
//     allocatable capped at 1, std = |f_cpu - f_mem| / 2, score int((1 - std) * 100).
// "requested" is what the node's pods ask plus the incoming pod.
// The extender's 0..10 answer enters as score x weight x (100 / 10) (schedule_one.go,
// prioritizeNodes: MaxNodeScore / MaxExtenderPriority), each plugin at its own weight.
export const MAX_NODE_SCORE = 100;
export const MAX_EXTENDER_PRIORITY = 10;

export interface HostLoad {
  allocCpuMilli: number;
  allocMemMiB: number;
  /** Requested including the incoming pod. */
  reqCpuMilli: number;
  reqMemMiB: number;
}

const least = (req: number, alloc: number): number => (alloc === 0 || req > alloc ? 0 : Math.trunc(((alloc - req) * MAX_NODE_SCORE) / alloc));

export function leastAllocatedScore(h: HostLoad): number {
  return Math.trunc((least(h.reqCpuMilli, h.allocCpuMilli) + least(h.reqMemMiB, h.allocMemMiB)) / 2);
}

export function balancedAllocationScore(h: HostLoad): number {
  const fractions: number[] = [];
  if (h.allocCpuMilli > 0) fractions.push(Math.min(1, h.reqCpuMilli / h.allocCpuMilli));
  if (h.allocMemMiB > 0) fractions.push(Math.min(1, h.reqMemMiB / h.allocMemMiB));
  const std = fractions.length === 2 ? Math.abs((fractions[0]! - fractions[1]!) / 2) : 0;
  return Math.trunc((1 - std) * MAX_NODE_SCORE);
}

/** kube-scheduler's total for a node: its default resource plugins (weight 1 each) plus
 * the extender's 0..10 score at the extender's weight. */
export function kubeSchedulerTotal(h: HostLoad, extenderScore: number, extenderWeight: number): number {
  return leastAllocatedScore(h) + balancedAllocationScore(h) + extenderScore * extenderWeight * (MAX_NODE_SCORE / MAX_EXTENDER_PRIORITY);
}
