// From pods to what the queue manager orders and releases. Pure: reads PodRecords.
//
// A job is the pods of one namespace sharing sluice.io/job (the webhook sets it from the
// owning controller), with gang size sluice.io/gang-size (default 1). What is released
// at once is a *unit*:
// - gang size 1: each gated pod is a unit of its own (a Job with parallelism 8 and one
//   GPU per pod starts pod by pod as room appears);
// - gang size g > 1: the job's gated pods form one unit, released whole, and only once g
//   pods exist ("gang: 2 of 4 pods seen" until then). A gang with pods already released
//   is in flight (a restart in the middle of its release, or a member re-created by its
//   controller): its gated pods up to the gang size are released at once, never left half
//   started.
// - Pods above a gang whose g members are all released are elastic members (a RayCluster's
//   autoscaled workers above minReplicas): each is a unit of its own, checked against
//   quota and room like a gang-size-1 pod.
// - A gang whose other members already Succeeded needs only the rest: a member that
//   failed and was re-created completes it, so it waits for quota and room, not for pods
//   that will never come. Succeeded members count modulo the gang size, so the next wave
//   of a Job whose completions exceed its parallelism is again a whole gang.
import type { PodRecord } from '../cluster/cache.js';
import type { ContainerShare, ResourceAmount } from '../cluster/pod-request.js';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';
import { parseModelList } from '../placement/gpu-model.js';
import type { SelectorTerm } from '../placement/node-selector.js';
import { ANNOTATION_GPU_MODEL } from '../scheduler/pod-ask.js';
import { GATE_QUEUE, LABEL_GANG_SIZE, LABEL_JOB, LABEL_QOS, LABEL_QUEUE, LABEL_USER, type QosClass } from '../webhooks/labels.js';

export interface UnitPod {
  uid: string;
  name: string;
  /** Devices the pod asks of each resource (kube-scheduler's count: for shared GPUs, slots). */
  requests: readonly ResourceAmount[];
  /** What the pod counts against quota: GPUs, shares as fractions of a GPU
   * (ClusterCache.gpuEquivalents); absent = `requests`. */
  gpus?: readonly ResourceAmount[];
  /** Per container asking shared GPUs, its memory and cores (HAMi's device plugin): the
   * capacity check fits these on the GPUs of nodes that register them; absent = none. */
  shares?: readonly ContainerShare[];
  models: readonly string[];
  nodeSelector: Readonly<Record<string, string>>;
  affinityTerms: readonly SelectorTerm[] | null;
  /** Index of the sluice.io/queue gate in spec.schedulingGates (for the JSON patch's test). */
  gateIndex: number;
}

export interface Unit {
  /** Stable identity: "ns/job" for a gang, "ns/job/pod" for a gang-size-1 pod. */
  key: string;
  namespace: string;
  /** The sluice.io/job value (job records are kept per job). */
  job: string;
  queue: string;
  qos: QosClass;
  user: string;
  /** Highest pod priority of the unit. */
  priority: number;
  /** Creation time (ms) of the unit's oldest pod: its place in FIFO order. */
  submittedMs: number;
  /** When sluice first saw the unit's oldest pod (ms): FIFO within one creation second. */
  seenMs: number;
  gangSize: number;
  /** Live (non-terminal) pods of the job, gated or not. */
  podsSeen: number;
  /** Gated pods to release together. */
  pods: UnitPod[];
  /** A gang some of whose pods are already released: release the rest at once. */
  inFlight: boolean;
  /** Why the unit cannot be considered at all (gang incomplete, labels disagree), or null. */
  problem: { waitingFor: 'gang' | 'invalid'; reason: string } | null;
  /** Total GPUs per resource over the unit's pods, against quota: GPU shares as fractions. */
  need: ResourceAmount[];
  /** Accepted GPU models (union over the pods; empty = any). */
  models: readonly string[];
}

/** A pod the queue manager holds (gated by sluice) or has released (no gate, not bound). */
export const isGated = (p: Readonly<PodRecord>): boolean => p.gates.includes(GATE_QUEUE);

/** Pods sluice manages: they carry sluice.io/queue (set by the mutating webhook). */
export const isQueued = (p: Readonly<PodRecord>): boolean => p.labels[LABEL_QUEUE] !== undefined;

export function jobOf(p: Readonly<PodRecord>): string {
  return p.labels[LABEL_JOB] || `pod-${p.name}`;
}

export function jobKey(p: Readonly<PodRecord>): string {
  return `${p.namespace}/${jobOf(p)}`;
}

export function qosOf(p: Readonly<PodRecord>): QosClass {
  return p.labels[LABEL_QOS] === 'best-effort' ? 'best-effort' : 'guaranteed';
}

/** sluice.io/gang-size (label, else annotation): 1 when absent, null when not a whole number >= 1. */
export function gangSizeOf(p: Readonly<PodRecord>): number | null {
  const raw = p.labels[LABEL_GANG_SIZE] ?? p.annotations[LABEL_GANG_SIZE];
  if (raw === undefined) return 1;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 ? n : null;
}

function createdMs(p: Readonly<PodRecord>): number {
  const t = Date.parse(p.created);
  return Number.isFinite(t) ? t : 0;
}

/** What a pod counts against quota: GPUs, shares as fractions (ClusterCache.gpuEquivalents). */
export type GpuEquivalents = (p: Readonly<PodRecord>) => readonly ResourceAmount[];
const asRequested: GpuEquivalents = (p) => p.requests;

/** What the quota and capacity checks need of one pod. */
export function unitPod(p: Readonly<PodRecord>, equivalents: GpuEquivalents = asRequested): UnitPod {
  const shares = p.shares?.filter((x): x is ContainerShare => x !== null);
  return {
    uid: p.uid,
    name: p.name,
    requests: p.requests,
    gpus: equivalents(p),
    ...(shares && shares.length > 0 ? { shares } : {}),
    models: parseModelList(p.annotations[ANNOTATION_GPU_MODEL]),
    nodeSelector: p.nodeSelector,
    affinityTerms: p.affinityTerms,
    gateIndex: p.gates.indexOf(GATE_QUEUE),
  };
}

/** The pods' GPUs against quota, per resource (summed in milli: fractions stay exact). */
export function sumNeed(pods: readonly UnitPod[]): ResourceAmount[] {
  const by = new Map<string, number>();
  for (const p of pods) for (const r of p.gpus ?? p.requests) by.set(r.resource, (by.get(r.resource) ?? 0) + gpusToMilli(r.count));
  return [...by].map(([resource, m]) => ({ resource, count: milliToGpus(m) }));
}

/**
 * Groups the live queued pods into the units waiting for release. Pods released or bound
 * are not units, but they make a gang "in flight" and count in podsSeen.
 */
export function waitingUnits(
  pods: Iterable<Readonly<PodRecord>>,
  gated: (p: Readonly<PodRecord>) => boolean = isGated,
  equivalents: GpuEquivalents = asRequested,
): Unit[] {
  const jobs = new Map<string, Array<Readonly<PodRecord>>>();
  const succeeded = new Map<string, number>();
  for (const p of pods) {
    if (!isQueued(p)) continue;
    if (p.terminal) {
      if (p.succeeded) succeeded.set(jobKey(p), (succeeded.get(jobKey(p)) ?? 0) + 1);
      continue;
    }
    const k = jobKey(p);
    const list = jobs.get(k);
    if (list) list.push(p);
    else jobs.set(k, [p]);
  }
  const units: Unit[] = [];
  for (const [key, members] of jobs) {
    const waiting = members.filter(gated);
    if (waiting.length === 0) continue;
    waiting.sort((a, b) => createdMs(a) - createdMs(b) || a.seenMs - b.seenMs || a.name.localeCompare(b.name));
    const sizes = new Set(members.map(gangSizeOf));
    const first = waiting[0]!;
    const base = {
      namespace: first.namespace,
      job: jobOf(first),
      queue: first.labels[LABEL_QUEUE]!,
      qos: qosOf(first),
      user: first.labels[LABEL_USER] ?? '',
      podsSeen: members.length,
    };
    if (sizes.size !== 1 || sizes.has(null)) {
      const shown = [...members.map((m) => m.labels[LABEL_GANG_SIZE] ?? m.annotations[LABEL_GANG_SIZE] ?? '1')];
      const reason = `pods of job ${key} disagree on ${LABEL_GANG_SIZE} (${[...new Set(shown)].join(', ')}) or give no whole number; delete the job and create it again with one value`;
      units.push(makeUnit(equivalents, key, base, 1, waiting, false, { waitingFor: 'invalid', reason }));
      continue;
    }
    const gang = [...sizes][0]!;
    if (gang === 1) {
      for (const p of waiting) units.push(makeUnit(equivalents, `${key}/${p.name}`, base, 1, [p], false, null));
      continue;
    }
    const released = members.length - waiting.length;
    const finished = (succeeded.get(key) ?? 0) % gang;
    if (released > 0) {
      const missing = Math.max(0, gang - released);
      if (missing > 0) units.push(makeUnit(equivalents, key, base, gang, waiting.slice(0, missing), true, null));
      for (const p of waiting.slice(missing)) units.push(makeUnit(equivalents, `${key}/${p.name}`, base, 1, [p], false, null));
    } else if (finished > 0 && waiting.length <= gang - finished) {
      units.push(makeUnit(equivalents, key, base, gang, waiting, false, null));
    } else if (waiting.length < gang) {
      const reason = `gang: ${waiting.length} of ${gang} pods seen; the job starts when all ${gang} exist`;
      units.push(makeUnit(equivalents, key, base, gang, waiting, false, { waitingFor: 'gang', reason }));
    } else {
      units.push(makeUnit(equivalents, key, base, gang, waiting.slice(0, gang), false, null));
      const extra = waiting.slice(gang);
      if (extra.length > 0) {
        const reason = `job ${key} has ${members.length} pods but ${LABEL_GANG_SIZE} is ${gang}; the extra pods wait until the gang's first ${gang} are released`;
        units.push(makeUnit(equivalents, `${key}/extra`, base, gang, extra, false, { waitingFor: 'gang', reason }));
      }
    }
  }
  return units;
}

function makeUnit(
  equivalents: GpuEquivalents,
  key: string,
  base: Pick<Unit, 'namespace' | 'job' | 'queue' | 'qos' | 'user' | 'podsSeen'>,
  gangSize: number,
  members: ReadonlyArray<Readonly<PodRecord>>,
  inFlight: boolean,
  problem: Unit['problem'],
): Unit {
  const pods = members.map((m) => unitPod(m, equivalents));
  const models = [...new Set(pods.flatMap((p) => p.models))];
  return {
    key,
    ...base,
    priority: Math.max(...members.map((m) => m.priority)),
    submittedMs: Math.min(...members.map(createdMs)),
    seenMs: Math.min(...members.map((m) => m.seenMs)),
    gangSize,
    pods,
    inFlight,
    problem,
    need: sumNeed(pods),
    models,
  };
}
