// What a queue holds right now, from the cluster cache: GPUs of its bound, non-terminal
// pods, split by QoS (pods without sluice.io/qos count as guaranteed, the webhook's
// default) and by the GPU model of the node they run on. Pure: no I/O.
import type { PodRecord } from '../cluster/cache.js';
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

export function queueUsage(queue: string, pods: Iterable<Readonly<PodRecord>>, productOf: (node: string) => string): QueueUsage {
  let count = 0;
  const rows = new Map<string, UsageRow>();
  for (const p of pods) {
    if (p.labels[LABEL_QUEUE] !== queue || !p.nodeName || p.terminal) continue;
    count++;
    const bestEffort = p.labels[LABEL_QOS] === 'best-effort';
    const model = productOf(p.nodeName);
    for (const r of p.requests) {
      if (r.count <= 0) continue;
      const key = `${r.resource}|${model}`;
      const row = rows.get(key) ?? { resource: r.resource, model, guaranteed: 0, bestEffort: 0 };
      if (bestEffort) row.bestEffort += r.count;
      else row.guaranteed += r.count;
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
  return { queue, pods: count, totals: [...totals.values()], byModel };
}
