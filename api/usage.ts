// What a queue holds right now, from the cluster cache: GPUs of its bound, non-terminal
// pods, split by QoS (pods without sluice.io/qos count as guaranteed, the webhook's
// default) and by the GPU model of the node they run on. GPU shares count as fractions of
// a GPU, as quota counts them (ClusterCache.gpuEquivalents): four 0.25 pods use 1, five
// use 1.25. Pure: no I/O.
import type { PodRecord } from '../cluster/cache.js';
import type { ResourceAmount } from '../cluster/pod-request.js';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';
import { LABEL_QOS, LABEL_QUEUE } from '../webhooks/labels.js';

export interface UsageRow {
  resource: string;
  /** GPU product of the node (nvidia.com/gpu.product), '' when unlabelled. */
  model: string;
  guaranteed: number;
  bestEffort: number;
}

export interface QueueUsage {
  queue: string;
  /** Bound, non-terminal pods of the queue (with or without GPUs). */
  pods: number;
  /** Per resource, all models together. */
  totals: Array<{ resource: string; guaranteed: number; bestEffort: number }>;
  byModel: UsageRow[];
}

/** `amounts`: what a pod counts (GPU shares as fractions of a GPU); its requests by default. */
export function queueUsage(
  queue: string,
  pods: Iterable<Readonly<PodRecord>>,
  productOf: (node: string) => string,
  amounts: (p: Readonly<PodRecord>) => readonly ResourceAmount[] = (p) => p.requests,
): QueueUsage {
  let count = 0;
  const rows = new Map<string, UsageRow>();
  for (const p of pods) {
    if (p.labels[LABEL_QUEUE] !== queue || !p.nodeName || p.terminal) continue;
    count++;
    const bestEffort = p.labels[LABEL_QOS] === 'best-effort';
    const model = productOf(p.nodeName);
    for (const r of amounts(p)) {
      if (r.count <= 0) continue;
      const key = `${r.resource}|${model}`;
      const row = rows.get(key) ?? { resource: r.resource, model, guaranteed: 0, bestEffort: 0 };
      // Summed in milli-GPU: fractions stay exact (0.1 + 0.2 is 0.3).
      if (bestEffort) row.bestEffort += gpusToMilli(r.count);
      else row.guaranteed += gpusToMilli(r.count);
      rows.set(key, row);
    }
  }
  const byModel = [...rows.values()].sort((a, b) => a.resource.localeCompare(b.resource) || a.model.localeCompare(b.model));
  const totals = new Map<string, { resource: string; guaranteed: number; bestEffort: number }>();
  for (const r of byModel) {
    const t = totals.get(r.resource) ?? { resource: r.resource, guaranteed: 0, bestEffort: 0 };
    t.guaranteed += r.guaranteed;
    t.bestEffort += r.bestEffort;
    totals.set(r.resource, t);
  }
  const asGpus = <T extends { guaranteed: number; bestEffort: number }>(x: T): T => ({
    ...x,
    guaranteed: milliToGpus(x.guaranteed),
    bestEffort: milliToGpus(x.bestEffort),
  });
  return { queue, pods: count, totals: [...totals.values()].map(asGpus), byModel: byModel.map(asGpus) };
}
