// The extender's preempt verb: kube-scheduler has found that evicting pods would let a pod
// fit and sends its candidate victims per node; sluice answers with the victims it allows.
// Steps:
//   1. the preemptor: a best-effort pod, a pod of no queue, or one whose queue would go
//      over its guaranteed quota preempts nothing (empty answer: no node stays a candidate)
//      and the preemptor must exist: the informer's copy by UID, else the pod read from
//      the apiserver, with the same UID (as bind checks it); a made-up pod preempts nothing
//   2. per node, the victims by placement/victims.ts (best-effort pods only; those running
//      past their time first; the fewest GPUs taken back, GPU shares counted as their
//      fractions of a GPU; gangs whole), and only the best node is returned, so the
//      preemption that happens is the one sluice records
//   3. log and count; the record (Postgres, job state, Events) waits in memory until
//      kube-scheduler acts on it: a victim deleted (pending-preemptions.ts).
// Nothing here changes the cluster cache: the victims keep counting as using their GPUs
// until the watch shows them gone, so a bind before that is refused (no overcommit).
import type { V1Pod } from '@kubernetes/client-node';
import type { ClusterCache, PodRecord } from '../cluster/cache.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { modelMatches } from '../placement/gpu-model.js';
import { podRecord } from '../cluster/pod-record.js';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';
import { chooseVictims, type NodeCandidates, type VictimCandidate } from '../placement/victims.js';
import { ANNOTATION_EXPECTED_DURATION, timeLimitSeconds } from '../queue/duration.js';
import { applicableLimits, type QueueDirectory, type QueueSpec } from '../store/queue-directory.js';
import type { PreemptedPod, PreemptionRecord, PreemptionSink } from '../store/preemptions.js';
import { LABEL_GANG_SIZE, LABEL_JOB, LABEL_QOS, LABEL_QUEUE, LABEL_USER, labelSafe } from '../webhooks/labels.js';
import { errorText, podName } from './extender.js';
import { PendingPreemptions } from './pending-preemptions.js';
import { podAsk } from './pod-ask.js';
import type { ExtenderPreemptionArgs, ExtenderPreemptionResult, MetaVictims } from './wire.js';

export interface PreempterOptions {
  cache: ClusterCache;
  /** Reads a pod from the apiserver (a preemptor the informer has not delivered yet); without it, only the cache is asked. */
  readPod?: (namespace: string, name: string) => Promise<V1Pod>;
  queues: QueueDirectory;
  sinks: readonly PreemptionSink[];
  log: Logger;
  metrics: Metrics;
  /** The clock that says which best-effort pods have run past their time (tests set it). */
  now?: () => number;
}

/** Why nothing (or something) was preempted: the `reason` label of sluice_preemptions_total. */
export type PreemptOutcome =
  | 'preempted'
  | 'best_effort_preemptor'
  | 'no_queue'
  | 'unknown_queue'
  | 'over_quota'
  | 'no_gpu'
  | 'several_resources'
  | 'no_victims'
  | 'unknown_preemptor';

export interface PreemptDecision {
  result: ExtenderPreemptionResult;
  outcome: PreemptOutcome;
  /** In words, for the log. */
  reason: string;
  record: PreemptionRecord | null;
}

export class Preempter {
  private readonly pending = new PendingPreemptions();

  constructor(private readonly o: PreempterOptions) {
    o.cache.onChange((c) => {
      const r = this.pending.carriedOut(c);
      if (r) for (const s of this.o.sinks) s.recordPreemption(r);
    });
  }

  /** Decides, then logs, counts and records; throws PodRequestError on a malformed pod. */
  async preempt(args: ExtenderPreemptionArgs): Promise<ExtenderPreemptionResult> {
    const d = await this.decide(args);
    const queue = args.Pod.metadata?.labels?.[LABEL_QUEUE] ?? '';
    this.o.metrics.preemptions.inc({ queue, reason: d.outcome });
    const pod = podName(args.Pod);
    if (d.record) {
      const r = d.record;
      this.o.metrics.preemptedGpus.inc(r.gpusFreed);
      this.o.log.info(
        {
          verb: 'preempt',
          pod,
          queue,
          node: r.node,
          victims: r.victims.map((v) => `${v.namespace}/${v.pod}`),
          gpusFreed: r.gpusFreed,
          gpusTakenBack: r.gpusTakenBack,
          reason: d.reason,
        },
        'preemption: best-effort pods give their GPUs back',
      );
      const dropped = this.pending.add(r);
      if (dropped > 0) this.o.log.info({ dropped }, 'preemptions kube-scheduler never carried out were dropped unrecorded');
    } else {
      this.o.log.info({ verb: 'preempt', pod, queue, outcome: d.outcome, reason: d.reason }, 'preempt: no victims');
    }
    return d.result;
  }

  async decide(args: ExtenderPreemptionArgs): Promise<PreemptDecision> {
    const pod = args.Pod;
    const proposals = proposedVictims(args);
    const none = (outcome: PreemptOutcome, reason: string): PreemptDecision => ({ result: { NodeNameToMetaVictims: {} }, outcome, reason, record: null });
    const asks = podAsk(pod, this.o.cache.resources, this.o.cache.shareNames).asks;
    if (asks.length === 0) return none('no_gpu', 'the pod asks no GPU resource sluice manages');
    if (asks.length > 1)
      return none('several_resources', `the pod asks ${asks.map((a) => a.resource).join(' and ')}; sluice preempts only for pods asking one GPU resource`);
    const ask = asks[0]!;
    const labels = pod.metadata?.labels ?? {};
    if (labels[LABEL_QOS] === 'best-effort') return none('best_effort_preemptor', 'a best-effort pod preempts nothing');
    const queue = labels[LABEL_QUEUE];
    if (!queue) return none('no_queue', `the pod has no ${LABEL_QUEUE} label: only guaranteed pods of a sluice queue preempt`);
    if (proposals.size === 0) return none('no_victims', 'kube-scheduler sent no candidate node');
    const notInCluster = await this.unknownPreemptor(pod);
    if (notInCluster) return none('unknown_preemptor', notInCluster);
    // Quota counts GPU shares as fractions of a GPU (ClusterCache.gpuEquivalents).
    const self =
      this.o.cache.pod(pod.metadata?.uid ?? '') ?? podRecord(pod, pod.metadata?.uid ?? '', this.o.cache.resources, 0, this.o.cache.shareNames ?? undefined);
    const count = this.o.cache.gpuEquivalents(self).find((r) => r.resource === ask.resource)?.count ?? ask.count;
    const quota = await this.withinQuota(queue, ask.resource, count, ask.models, pod.metadata?.uid ?? '');
    if (quota.ok === false) return none(quota.outcome, quota.reason);

    const priority = pod.spec?.priority ?? 0;
    // The victims' queues are read first: from here on nothing awaits, so the nodes and pods
    // judged are the cache's as they are now.
    const overdue = await this.overdueTest([...proposals.keys()].flatMap((n) => this.o.cache.podsOnNode(n)));
    const gangs = new GangTotals(this.o.cache, ask.resource);
    const nodes: NodeCandidates[] = [];
    const unknown: string[] = [];
    for (const [name, proposed] of proposals) {
      const view = this.o.cache.nodeView(name, ask.resource);
      if (!view) {
        unknown.push(name);
        continue;
      }
      const pods = this.o.cache
        .podsOnNode(name)
        .filter((p) => !p.terminal)
        .map((p) => candidate(this.o.cache, p, name, ask.resource, gangs, overdue(p)));
      nodes.push({ view, pods, proposed: proposed.uids });
    }
    const choice = chooseVictims({ ask, priority }, nodes);
    const best = choice.kept[0];
    const dropped = [...choice.dropped.map((d) => d.reason), ...unknown.map((n) => `node ${n} is not in sluice's cache (deleted, or not seen yet)`)];
    if (!best) return none('no_victims', dropped.slice(0, 3).join('; ') || 'no node has best-effort victims');

    const victims: PreemptedPod[] = best.uids.map((uid) => victimOf(this.o.cache, this.o.cache.pod(uid)!, ask.resource));
    const job = labels[LABEL_JOB] ?? '';
    const preemptor = { namespace: pod.metadata?.namespace ?? '', pod: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '', job, queue };
    const record: PreemptionRecord = {
      at: new Date(),
      preemptor,
      node: best.node,
      resource: ask.resource,
      gpusFreed: best.freed,
      gpusTakenBack: best.takenBack,
      reason: `preempted by ${preemptor.namespace}/${preemptor.pod}, guaranteed in queue ${queue}`,
      victims,
    };
    const meta: MetaVictims = { Pods: best.uids.map((UID) => ({ UID })), NumPDBViolations: proposals.get(best.node)?.pdbViolations ?? 0 };
    return {
      result: { NodeNameToMetaVictims: { [best.node]: meta } },
      outcome: 'preempted',
      reason: `${best.uids.length} best-effort pod(s) on ${best.node} free ${best.freed} ${ask.resource}${quota.note ? `; ${quota.note}` : ''}`,
      record,
    };
  }

  /**
   * Which best-effort pods have run past their time (queue/duration.ts timeLimitSeconds:
   * the declared expected duration, at most the queue's maxDuration). Each queue is read
   * once; a queue that cannot be read caps nothing (its pods' own declarations still count).
   */
  private async overdueTest(pods: ReadonlyArray<Readonly<PodRecord>>): Promise<(p: Readonly<PodRecord>) => boolean> {
    const maxOf = new Map<string, number | null>();
    for (const p of pods) {
      const q = p.labels[LABEL_QUEUE];
      if (p.labels[LABEL_QOS] !== 'best-effort' || q === undefined || maxOf.has(q)) continue;
      const lookup = await this.o.queues.lookup(q);
      maxOf.set(q, lookup.status === 'found' ? (lookup.queue.maxDurationSeconds ?? null) : null);
    }
    const nowMs = (this.o.now ?? Date.now)();
    return (p) => {
      if (p.labels[LABEL_QOS] !== 'best-effort') return false;
      const limit = timeLimitSeconds(p.annotations[ANNOTATION_EXPECTED_DURATION], maxOf.get(p.labels[LABEL_QUEUE] ?? '') ?? null);
      const started = Date.parse(p.started);
      // An unknown start is not evidence of overrunning.
      return limit !== null && Number.isFinite(started) && nowMs - started > limit * 1000;
    };
  }

  /** Why the preemptor is not a pod of the cluster (null when it is): by UID in the cache, else read by name. */
  private async unknownPreemptor(pod: V1Pod): Promise<string | null> {
    const { namespace = '', name = '', uid = '' } = pod.metadata ?? {};
    const named = `${namespace}/${name}`;
    const known = uid ? this.o.cache.pod(uid) : undefined;
    if (known)
      return known.namespace === namespace && known.name === name
        ? null
        : `pod ${uid} is ${known.namespace}/${known.name}, not ${named}: the preemptor must be the pod kube-scheduler names`;
    if (!this.o.readPod) return `pod ${named} (UID ${uid || 'none'}) is not in sluice's cache: only a pod of the cluster preempts`;
    let real: V1Pod;
    try {
      real = await this.o.readPod(namespace, name);
    } catch (e) {
      return `cannot read the preemptor ${named} from the apiserver (${errorText(e)}): only a pod of the cluster preempts`;
    }
    return real.metadata?.uid === uid
      ? null
      : `pod ${named} has UID ${real.metadata?.uid ?? '(none)'} at the apiserver, not ${uid || '(none)'}: the preemptor is not a pod of the cluster`;
  }

  /**
   * Whether the queue's guaranteed quota has room for the pod: GPUs of its bound guaranteed
   * pods (the preemptor is not bound, so it is never counted twice) plus the pod's own,
   * against the most permissive row that applies (as admission reads rows). Only the
   * queue's own guaranteed GPUs count: borrowing within a cohort never preempts. When the
   * queue cannot be read (Postgres down, nothing cached) preemption goes ahead: its victims
   * are best-effort pods, which never had a claim on the GPUs.
   */
  private async withinQuota(
    queue: string,
    resource: string,
    count: number,
    models: readonly string[],
    selfUid: string,
  ): Promise<{ ok: true; note?: string } | { ok: false; outcome: PreemptOutcome; reason: string }> {
    const lookup = await this.o.queues.lookup(queue);
    if (lookup.status === 'unavailable') {
      this.o.log.warn(
        { queue, reason: lookup.reason },
        `preempt: queue ${queue} cannot be read (${lookup.reason}); preempting best-effort pods without a quota check`,
      );
      return { ok: true, note: `quota of queue ${queue} not checked (${lookup.reason})` };
    }
    if (lookup.status === 'missing') return { ok: false, outcome: 'unknown_queue', reason: `queue ${queue} does not exist` };
    const rows = applicableLimits(lookup.queue.limits, resource, models);
    if (rows.length === 0) return { ok: false, outcome: 'over_quota', reason: `queue ${queue} has no ${resource} quota` };
    const used = guaranteedUse(this.o.cache, lookup.queue, resource, selfUid);
    let best = { used: 0, guaranteed: -1, model: '' };
    for (const r of rows) {
      const u = used(r.model);
      if (r.guaranteed - u > best.guaranteed - best.used) best = { used: u, guaranteed: r.guaranteed, model: r.model };
    }
    if (gpusToMilli(best.used) + gpusToMilli(count) > best.guaranteed * 1000) {
      const m = best.model ? ` ${best.model}` : '';
      return {
        ok: false,
        outcome: 'over_quota',
        reason: `queue ${queue} uses ${best.used} of its ${best.guaranteed} guaranteed${m} ${resource}; ${count} more would exceed it`,
      };
    }
    return { ok: true };
  }
}

/** GPUs of bound, running guaranteed pods of the queue on nodes whose product matches a row
 * model ('' = all); GPU shares as fractions of a GPU, as quota counts them. */
function guaranteedUse(cache: ClusterCache, queue: QueueSpec, resource: string, selfUid: string): (model: string) => number {
  const byProduct = new Map<string, number>();
  for (const p of cache.allPods()) {
    if (p.labels[LABEL_QUEUE] !== queue.name || !p.nodeName || p.terminal || p.uid === selfUid || p.labels[LABEL_QOS] === 'best-effort') continue;
    const m = gpusToMilli(gpusOf(cache, p, resource));
    if (m === 0) continue;
    const product = cache.nodeView(p.nodeName, resource)?.product ?? '';
    byProduct.set(product, (byProduct.get(product) ?? 0) + m);
  }
  return (model) => {
    let sum = 0;
    for (const [product, m] of byProduct) if (model === '' || modelMatches(product, model)) sum += m;
    return milliToGpus(sum);
  };
}

/** kube-scheduler's proposal per node: victim UIDs and its PDB count. Full victim pods
 * (nodeCacheCapable false) are reduced to UIDs: sluice judges pods from its own cache. */
function proposedVictims(args: ExtenderPreemptionArgs): Map<string, { uids: string[]; pdbViolations: number }> {
  const out = new Map<string, { uids: string[]; pdbViolations: number }>();
  for (const [node, v] of Object.entries(args.NodeNameToMetaVictims ?? {})) {
    out.set(node, { uids: (v?.Pods ?? []).map((p) => p?.UID ?? '').filter(Boolean), pdbViolations: v?.NumPDBViolations ?? 0 });
  }
  for (const [node, v] of Object.entries(args.NodeNameToVictims ?? {})) {
    if (out.has(node)) continue;
    out.set(node, { uids: (v?.Pods ?? []).map((p: V1Pod) => p?.metadata?.uid ?? '').filter(Boolean), pdbViolations: v?.NumPDBViolations ?? 0 });
  }
  return out;
}

/** GPUs of each gang (namespace/job with gang size > 1) over all its bound, running pods. */
class GangTotals {
  private totals: Map<string, number> | null = null;

  constructor(
    private readonly cache: ClusterCache,
    private readonly resource: string,
  ) {}

  of(key: string): number {
    if (!this.totals) {
      this.totals = new Map();
      for (const p of this.cache.allPods()) {
        const k = gangKey(p);
        if (!k || !p.nodeName || p.terminal) continue;
        this.totals.set(k, (this.totals.get(k) ?? 0) + gpusToMilli(gpusOf(this.cache, p, this.resource)));
      }
    }
    return milliToGpus(this.totals.get(key) ?? 0);
  }
}

function gangKey(p: Readonly<PodRecord>): string | null {
  const job = p.labels[LABEL_JOB];
  return job && gangSize(p) > 1 ? `${p.namespace}/${job}` : null;
}

function gangSize(p: Readonly<PodRecord>): number {
  const raw = p.labels[LABEL_GANG_SIZE] ?? p.annotations[LABEL_GANG_SIZE];
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** Devices of the resource the pod asks (a GPU share is 1). */
const devicesOf = (p: Readonly<PodRecord>, resource: string): number => p.requests.find((r) => r.resource === resource)?.count ?? 0;
/** GPUs of the resource the pod counts, GPU shares as fractions (ClusterCache.gpuEquivalents). */
const gpusOf = (cache: ClusterCache, p: Readonly<PodRecord>, resource: string): number =>
  cache.gpuEquivalents(p).find((r) => r.resource === resource)?.count ?? 0;

function candidate(cache: ClusterCache, p: Readonly<PodRecord>, node: string, resource: string, gangs: GangTotals, overdue: boolean): VictimCandidate {
  const qos = p.labels[LABEL_QOS] === 'best-effort' ? 'best-effort' : p.labels[LABEL_QUEUE] !== undefined ? 'guaranteed' : 'unmanaged';
  const key = gangKey(p);
  const started = Date.parse(p.started);
  return {
    uid: p.uid,
    qos,
    gpus: devicesOf(p, resource),
    equivalents: gpusOf(cache, p, resource),
    ...(p.hold?.node === node ? { uses: p.hold.uses } : {}),
    priority: p.priority,
    // Unknown start: counted as the oldest, the most work to lose.
    startedAt: Number.isNaN(started) ? 0 : started,
    terminating: p.terminating,
    gang: key ? { key, gpus: gangs.of(key) } : null,
    overdue,
  };
}

function victimOf(cache: ClusterCache, p: Readonly<PodRecord>, resource: string): PreemptedPod {
  const share = gpusOf(cache, p, resource);
  const job = p.labels[LABEL_JOB] ?? (p.owner ? labelSafe(`${p.owner.kind.toLowerCase()}-${p.owner.name}`) : labelSafe(`pod-${p.name}`));
  return {
    namespace: p.namespace,
    pod: p.name,
    uid: p.uid,
    job,
    queue: p.labels[LABEL_QUEUE] ?? '',
    user: p.labels[LABEL_USER] ?? '',
    gpus: devicesOf(p, resource),
    ...(share !== devicesOf(p, resource) ? { share } : {}),
    gangSize: gangSize(p),
    owner: p.owner,
  };
}
