// The queue manager's picture of the moment, built from the cluster cache: the waiting
// units, what each queue holds (quota ledger), what nodes have free (capacity model) and
// each job's state for its record. Pure: reads the cache, writes nothing.
import type { ClusterCache, PodRecord } from '../cluster/cache.js';
import { parseModelList } from '../placement/gpu-model.js';
import { ANNOTATION_GPU_MODEL } from '../scheduler/pod-ask.js';
import type { QueueSpec } from '../store/queue-directory.js';
import { LABEL_QUEUE, LABEL_USER } from '../webhooks/labels.js';
import { CapacityModel, type CapacityNode } from './capacity.js';
import { QuotaLedger } from './quota.js';
import { gangSizeOf, isGated, isQueued, jobKey, jobOf, qosOf, unitPod, waitingUnits, type Unit } from './units.js';

export interface JobView {
  key: string;
  namespace: string;
  job: string;
  queue: string;
  qos: 'guaranteed' | 'best-effort';
  user: string;
  priority: number;
  /** sluice.io/gang-size as declared (1 when absent or unreadable). */
  gangSize: number;
  pods: Array<{ uid: string; name: string; node: string; gated: boolean; terminal: boolean }>;
  gpus: Array<{ resource: string; count: number }>;
  models: string[];
  submittedMs: number;
}

export interface QueueState {
  units: Unit[];
  ledger: QuotaLedger;
  capacity: CapacityModel;
  jobs: Map<string, JobView>;
}

/**
 * `releasing`: pods whose release is decided (enqueued) but whose gate the watch still
 * shows; they count as released, never as waiting.
 */
export function buildState(cache: ClusterCache, queues: ReadonlyMap<string, QueueSpec> | 'unlimited', releasing: ReadonlySet<string>): QueueState {
  const gated = (p: Readonly<PodRecord>): boolean => isGated(p) && !releasing.has(p.uid);
  const ledger = queues === 'unlimited' ? new QuotaLedger(new Map(), true) : new QuotaLedger(queues);
  const bestEffortOn = new Map<string, Record<string, number>>();
  const releasedUnbound: Array<Readonly<PodRecord>> = [];
  const jobs = new Map<string, JobView>();
  const queuedPods: Array<Readonly<PodRecord>> = [];

  for (const p of cache.allPods()) {
    if (!isQueued(p)) continue;
    queuedPods.push(p);
    const k = jobKey(p);
    let j = jobs.get(k);
    if (!j) {
      j = {
        key: k,
        namespace: p.namespace,
        job: jobOf(p),
        queue: p.labels[LABEL_QUEUE]!,
        qos: qosOf(p),
        user: p.labels[LABEL_USER] ?? '',
        priority: p.priority,
        gangSize: gangSizeOf(p) ?? 1,
        pods: [],
        gpus: [],
        models: parseModelList(p.annotations[ANNOTATION_GPU_MODEL]),
        submittedMs: Number.POSITIVE_INFINITY,
      };
      jobs.set(k, j);
    }
    j.pods.push({ uid: p.uid, name: p.name, node: p.nodeName, gated: gated(p), terminal: p.terminal });
    j.priority = Math.max(j.priority, p.priority);
    const t = Date.parse(p.created);
    if (Number.isFinite(t)) j.submittedMs = Math.min(j.submittedMs, t);
    if (!p.terminal) {
      for (const r of p.requests) {
        const g = j.gpus.find((x) => x.resource === r.resource);
        if (g) g.count += r.count;
        else j.gpus.push({ resource: r.resource, count: r.count });
      }
    }
    if (p.terminal || gated(p)) continue;
    // Held: bound, or released and not yet bound.
    const qos = qosOf(p);
    const product = p.nodeName ? (cache.nodeView(p.nodeName, p.requests[0]?.resource ?? cache.resources[0]!)?.product ?? '') : null;
    ledger.add({ queue: p.labels[LABEL_QUEUE]!, user: p.labels[LABEL_USER] ?? '', qos, requests: p.requests, product, models: parseModelList(p.annotations[ANNOTATION_GPU_MODEL]) });
    if (!p.nodeName) releasedUnbound.push(p);
    else if (qos === 'best-effort') {
      const held = bestEffortOn.get(p.nodeName) ?? {};
      for (const r of p.requests) held[r.resource] = (held[r.resource] ?? 0) + r.count;
      bestEffortOn.set(p.nodeName, held);
    }
  }

  const nodes = new Map<string, CapacityNode>();
  for (const n of cache.inventory()) {
    let c = nodes.get(n.name);
    if (!c) {
      c = { name: n.name, product: n.product, unusable: n.unusable, labels: cache.nodeLabels(n.name) ?? {}, capacity: {}, free: {}, bestEffort: {} };
      nodes.set(n.name, c);
    }
    c.capacity[n.resource] = n.total;
    c.free[n.resource] = n.free;
    c.bestEffort[n.resource] = Math.min(bestEffortOn.get(n.name)?.[n.resource] ?? 0, n.total - n.free);
  }
  const capacity = new CapacityModel(nodes.values());
  // Released pods not yet bound will take GPUs somewhere: count them before anyone else.
  for (const p of releasedUnbound) capacity.place([unitPod(p)], qosOf(p));

  return { units: waitingUnits(queuedPods, gated), ledger, capacity, jobs };
}
