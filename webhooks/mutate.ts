// The mutating webhook's decision: AdmissionRequest + policy + cluster facts -> RFC 6902
// operations. Pure. Idempotent by construction: every step compares with what the pod
// already has and emits nothing when it matches, so running on its own output yields [].
//
// Steps, for CREATE of an in-scope pod (README "Admission webhooks"):
//   1. resources: sluice.io/gpus shorthand; requests = limits for managed resources
//   2. labels sluice.io/queue, qos, user (+ annotations with the raw name and user-verified), job,
//      gang-size; queue, qos, job and gang come from the owning workload when the pod has none
//      (workloads/resolve.ts)
//   (pods asking no managed resource stop here: they are left untouched)
//   3. toleration for the GPU taint
//   4. priorityClassName + priority + preemptionPolicy from the QoS label, with the values of
//      the cluster's PriorityClass; a class the cluster lacks: left alone, with a warning
//   5. required node affinity: GPU model (aliases resolved to present products) and job-type pool
//   6. scheduling gate sluice.io/queue when queueing is on and spec.nodeName is unset
import type { V1Affinity, V1Container, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod, V1Toleration } from '@kubernetes/client-node';
import { LABEL_GPU_PRODUCT } from '../cluster/node-facts.js';
import { modelAccepted, parseModelList } from '../placement/gpu-model.js';
import { parseQuantity } from '../cluster/quantity.js';
import type { PatchOp } from './admission.js';
import {
  ANN_GPU_MODEL,
  ANN_USER,
  ANN_USER_VERIFIED,
  escapePointer,
  GATE_QUEUE,
  isLabelValue,
  isQos,
  LABEL_GANG_SIZE,
  LABEL_JOB,
  LABEL_QOS,
  LABEL_QUEUE,
  LABEL_USER,
  labelSafe,
} from './labels.js';
import { controllerOf, derivedJob, jobTypeOf, podAnnotations, podLabels, queueOf, shorthandOf, type Shorthand } from './pod-facts.js';
import type { ClusterFacts, Toleration, WebhookPolicy } from './policy.js';
import type { Workload } from '../workloads/resolve.js';

export interface MutateInput {
  pod: V1Pod;
  username: string;
  nsLabels: Readonly<Record<string, string>> | undefined;
  policy: WebhookPolicy;
  facts: ClusterFacts;
  /** The workload that owns the pod (its job, gang, labels); null/absent: none known. */
  workload?: Workload | null;
}

export interface Mutation {
  ops: PatchOp[];
  /** Short names of what changed, for the log line and the audit record. */
  changes: string[];
  /** True when the pod asks a managed GPU resource (after the shorthand). */
  gpu: boolean;
  /** For the AdmissionReview's warnings (kubectl prints them). */
  warnings: string[];
}

export function mutatePod(input: MutateInput): Mutation {
  const { pod, policy } = input;
  const ops: PatchOp[] = [];
  const changes: string[] = [];
  const warnings: string[] = [];
  const gpu = mutateResources(pod, policy, ops, changes);
  if (!gpu) return { ops, changes, gpu, warnings };
  const qos = mutateLabels(input, ops, changes);
  const spec = pod.spec!;

  // 3. toleration
  const tol = policy.gpuToleration;
  if (tol && !(spec.tolerations ?? []).some((t) => tolerates(t, tol))) {
    const value: V1Toleration =
      tol.operator === 'Equal'
        ? { key: tol.key, operator: 'Equal', value: tol.value ?? '', effect: tol.effect }
        : { key: tol.key, operator: 'Exists', effect: tol.effect };
    ops.push(spec.tolerations ? { op: 'add', path: '/spec/tolerations/-', value } : { op: 'add', path: '/spec/tolerations', value: [value] });
    changes.push('toleration');
  }

  // 4. priority class, with the class's priority and preemptionPolicy: the Priority
  // admission plugin resolved both from the old class before webhooks run, the scheduler
  // reads the spec fields, and a reinvoked Priority plugin rejects values that disagree
  // with the class.
  // A class the cluster lacks would make the apiserver reject the pod: leave the priority
  // as it is and say how to create the class.
  const configured = isQos(qos) ? policy.priorityClasses[qos] : undefined;
  const live = configured ? input.facts.priorityClass?.(configured.name) : undefined;
  if (configured && live === null) {
    warnings.push(
      `PriorityClass ${configured.name} (sluice.io/qos=${qos}) does not exist, so sluice left this pod's priority as it was; ` +
        `ask a cluster admin to create it: kubectl create priorityclass ${configured.name} --value=${configured.value} --preemption-policy=${configured.preemptionPolicy}`,
    );
  } else if (configured) {
    const pc = { name: configured.name, value: live?.value ?? configured.value, preemptionPolicy: live?.preemptionPolicy ?? configured.preemptionPolicy };
    if (spec.priorityClassName !== pc.name) {
      ops.push({ op: 'add', path: '/spec/priorityClassName', value: pc.name });
      changes.push('priorityClassName');
    }
    if (spec.priority !== pc.value) {
      ops.push({ op: 'add', path: '/spec/priority', value: pc.value });
      changes.push('priority');
    }
    if (spec.preemptionPolicy !== pc.preemptionPolicy) {
      ops.push({ op: 'add', path: '/spec/preemptionPolicy', value: pc.preemptionPolicy });
      changes.push('preemptionPolicy');
    }
  }

  // 5. node affinity
  const wanted = wantedExpressions(pod, input.policy, input.facts);
  if (wanted.length > 0) {
    const affinity = withRequiredExpressions(spec.affinity, wanted);
    if (affinity) {
      ops.push({ op: 'add', path: '/spec/affinity', value: affinity });
      changes.push('affinity');
    }
  }

  // 6. scheduling gate; never on a pod that names its node (the apiserver refuses
  // spec.nodeName while gates remain; validation denies such managed GPU pods)
  if (policy.queueing && !spec.nodeName) {
    const gates = spec.schedulingGates;
    if (!gates?.some((g) => g.name === GATE_QUEUE)) {
      ops.push(
        gates
          ? { op: 'add', path: '/spec/schedulingGates/-', value: { name: GATE_QUEUE } }
          : { op: 'add', path: '/spec/schedulingGates', value: [{ name: GATE_QUEUE }] },
      );
      changes.push('gate');
    }
  }
  return { ops, changes, gpu, warnings };
}

/** The resources and amounts the sluice.io/gpus shorthand stands for: a GPU count of the
 * first managed resource; a share asks one GPU of the shared resource (HAMi's names) with
 * that percentage of its memory and cores, or that much memory. */
export function shorthandResources(sh: Extract<Shorthand, { kind: 'ok' }>, policy: WebhookPolicy): Array<[string, number]> {
  if (!sh.share || !policy.sharing) return [[policy.gpuResources[0]!, sh.gpus]];
  const n = policy.sharing;
  if ('percent' in sh.share)
    return [
      [n.resource, 1],
      [n.memoryPercent, sh.share.percent],
      [n.cores, sh.share.percent],
    ];
  return [
    [n.resource, 1],
    [n.memory, sh.share.memMiB],
  ];
}

/** Step 1. Returns whether the pod asks a managed GPU resource afterwards. */
function mutateResources(pod: V1Pod, policy: WebhookPolicy, ops: PatchOp[], changes: string[]): boolean {
  const spec = pod.spec!;
  const sh = shorthandOf(pod);
  let gpu = false;
  for (const [field, list] of [
    ['containers', spec.containers],
    ['initContainers', spec.initContainers],
  ] as const) {
    if (!list) continue;
    for (let i = 0; i < list.length; i++) {
      const c = list[i] as V1Container;
      const limits = c.resources?.limits ?? {};
      const requests = c.resources?.requests ?? {};
      let newLimits: Record<string, string> | null = null;
      let newRequests: Record<string, string> | null = null;
      const set = (r: string, v: string, which: 'l' | 'r'): void => {
        if (which === 'l') (newLimits ??= { ...(limits as Record<string, string>) })[r] = v;
        else (newRequests ??= { ...(requests as Record<string, string>) })[r] = v;
      };
      if (sh.kind === 'ok' && field === 'containers' && i === sh.container) {
        for (const [r, n] of shorthandResources(sh, policy)) {
          const v = String(n);
          if (parseQuantity(limits[r]) !== n) set(r, v, 'l');
          if (parseQuantity(requests[r]) !== n) set(r, v, 'r');
        }
      }
      for (const r of policy.gpuResources) {
        const l = newLimits?.[r] ?? limits[r];
        const q = newRequests?.[r] ?? requests[r];
        if (l !== undefined && (q === undefined || parseQuantity(q) !== parseQuantity(l))) set(r, String(l), 'r');
        else if (l === undefined && q !== undefined) set(r, String(q), 'l');
        const v = newLimits?.[r] ?? l ?? q;
        if (v !== undefined) {
          const n = parseQuantity(v);
          if (n > 0 || Number.isNaN(n)) gpu = true; // a malformed count is validation's to deny
        }
      }
      if (newLimits || newRequests) {
        const value = { ...(c.resources ?? {}), limits: newLimits ?? limits, requests: newRequests ?? requests };
        ops.push({ op: 'add', path: `/spec/${field}/${i}/resources`, value });
        changes.push(`resources:${c.name}`);
      }
    }
  }
  return gpu;
}

/** Step 2. Returns the pod's QoS label value after the patch. */
function mutateLabels(input: MutateInput, ops: PatchOp[], changes: string[]): string {
  const { pod, nsLabels, username } = input;
  const wl = input.workload ?? null;
  const labels = podLabels(pod);
  const addLabels: Array<[string, string]> = [];
  const addAnns: Array<[string, string]> = [];

  if (labels[LABEL_QUEUE] === undefined) addLabels.push([LABEL_QUEUE, queueOf(pod, nsLabels, wl?.labels)]);
  const qos = labels[LABEL_QOS] ?? wl?.labels[LABEL_QOS] ?? 'guaranteed';
  if (labels[LABEL_QOS] === undefined) addLabels.push([LABEL_QOS, qos]);
  // The requester is the user, except for pods a controller makes: there the requester is
  // the controller, and a user label from the pod template is kept.
  // The kept label is marked unverified (sluice.io/user-verified "false"); one that names
  // the requester itself (e.g. sluice's own patch, reinvoked) is the requester's.
  const keepTemplateUser = controllerOf(pod) !== undefined && labels[LABEL_USER] !== undefined && labels[LABEL_USER] !== labelSafe(username);
  const anns = podAnnotations(pod);
  if (keepTemplateUser) {
    if (anns[ANN_USER_VERIFIED] !== 'false') addAnns.push([ANN_USER_VERIFIED, 'false']);
  } else if (username !== '') {
    const safe = labelSafe(username);
    if (labels[LABEL_USER] !== safe) addLabels.push([LABEL_USER, safe]);
    if (anns[ANN_USER] !== username) addAnns.push([ANN_USER, username]);
    if (anns[ANN_USER_VERIFIED] !== 'true') addAnns.push([ANN_USER_VERIFIED, 'true']);
  }
  if (labels[LABEL_JOB] === undefined) {
    const job = wl?.job ?? derivedJob(pod);
    if (job !== undefined) addLabels.push([LABEL_JOB, job]);
  }
  // An explicit sluice.io/gang-size on the pod wins (validation checks whichever is written).
  // A workload's value that cannot be a label value goes in as an annotation, for validation to deny.
  if (wl?.gangSize !== undefined && labels[LABEL_GANG_SIZE] === undefined && anns[LABEL_GANG_SIZE] === undefined) {
    (isLabelValue(wl.gangSize) ? addLabels : addAnns).push([LABEL_GANG_SIZE, wl.gangSize]);
  }
  pushMapOps(ops, '/metadata/labels', pod.metadata?.labels, addLabels, pod.metadata === undefined);
  pushMapOps(ops, '/metadata/annotations', pod.metadata?.annotations, addAnns, pod.metadata === undefined && addLabels.length === 0);
  for (const [k] of addLabels) changes.push(`label:${k}`);
  for (const [k] of addAnns) changes.push(`annotation:${k}`);
  return qos;
}

function pushMapOps(ops: PatchOp[], path: string, existing: Record<string, string> | undefined, add: Array<[string, string]>, needMetadata: boolean): void {
  if (add.length === 0) return;
  if (needMetadata) ops.push({ op: 'add', path: '/metadata', value: {} });
  if (!existing) {
    ops.push({ op: 'add', path, value: Object.fromEntries(add) });
    return;
  }
  for (const [k, v] of add) ops.push({ op: 'add', path: `${path}/${escapePointer(k)}`, value: v });
}

/** Whether a pod toleration already tolerates the GPU taint (same rules as the scheduler). */
export function tolerates(t: V1Toleration, taint: Toleration): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.operator === 'Exists') return !t.key || t.key === taint.key;
  return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
}

/** Step 5's node-selector requirements: GPU model and job-type pool. */
function wantedExpressions(pod: V1Pod, policy: WebhookPolicy, facts: ClusterFacts): V1NodeSelectorRequirement[] {
  const out: V1NodeSelectorRequirement[] = [];
  const models = parseModelList(podAnnotations(pod)[ANN_GPU_MODEL]);
  if (models.length > 0) {
    const matched = new Set<string>();
    for (const r of policy.gpuResources) for (const p of facts.products(r)) if (modelAccepted(p, models)) matched.add(p);
    // No present product matches: keep the names as written, so a node with exactly
    // that product can still take the pod (validation tells the user meanwhile).
    const values = matched.size > 0 ? [...matched].sort() : [...new Set(models)].sort();
    out.push({ key: LABEL_GPU_PRODUCT, operator: 'In', values });
  }
  const type = jobTypeOf(pod);
  const pool = type === undefined ? undefined : policy.jobTypes.get(type);
  if (pool) for (const [key, value] of pool) out.push({ key, operator: 'In', values: [value] });
  return out;
}

const sameRequirement = (a: V1NodeSelectorRequirement, b: V1NodeSelectorRequirement): boolean =>
  a.key === b.key && a.operator === b.operator && (a.values ?? []).length === (b.values ?? []).length && (a.values ?? []).every((v, i) => v === b.values![i]);

/**
 * The affinity with every wanted requirement in every required node-selector term
 * (terms are ORed, requirements within a term ANDed, so each term must carry them);
 * null when nothing changes.
 */
export function withRequiredExpressions(affinity: V1Affinity | undefined, wanted: readonly V1NodeSelectorRequirement[]): V1Affinity | null {
  const req = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms: V1NodeSelectorTerm[] = Array.isArray(req?.nodeSelectorTerms) && req.nodeSelectorTerms.length > 0 ? req.nodeSelectorTerms : [{}];
  let changed = !req || !Array.isArray(req.nodeSelectorTerms) || req.nodeSelectorTerms.length === 0;
  const next = terms.map((t) => {
    const have = Array.isArray(t.matchExpressions) ? t.matchExpressions : [];
    const missing = wanted.filter((w) => !have.some((h) => sameRequirement(h, w)));
    if (missing.length === 0) return t;
    changed = true;
    return { ...t, matchExpressions: [...have, ...missing] };
  });
  if (!changed) return null;
  return {
    ...(affinity ?? {}),
    nodeAffinity: {
      ...(affinity?.nodeAffinity ?? {}),
      requiredDuringSchedulingIgnoredDuringExecution: { ...(req ?? {}), nodeSelectorTerms: next },
    },
  };
}
