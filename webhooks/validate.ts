// The validating webhook's decisions. Pure: the pod, the policy, the cluster facts and
// (for CREATE) the queue lookup in, a verdict out. Every deny carries an HTTP-style
// code and one sentence a person can act on.
//
// CREATE of an in-scope GPU pod, checked in this order:
//   1. the pod spec: shorthand annotation, whole GPU counts, requests = limits, QoS label,
//      job type, gang size (422); a bare pod's sluice.io/user names its creator (403);
//      no spec.nodeName (403)
//   2. the queue: it exists (404), is open (403); store unreadable -> webhooks.onStoreDown (503 or allow)
//   3. the job is not larger than the queue's per-job maximum (403)
//   4. the job could ever fit: not larger than the queue's quota for its QoS, not a pod
//      larger than the largest node with a matching GPU (403)
//   5. a declared sluice.io/expected-duration is well-formed (422, in step 1) and within
//      the queue's maxDuration (403)
// A job merely over its queue's current free quota is allowed: it waits in the queue.
// UPDATE: only sluice's service account removes the gate or changes queue/qos/user labels
// or the user-verified annotation (403).
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { parseModelList } from '../placement/gpu-model.js';
import { podGpuRequests, podShareAsks, PodRequestError, type ContainerShare } from '../cluster/pod-request.js';
import { gpusToMilli, milliToGpus, pricingMemMiB, shareGpus } from '../placement/shares.js';
import { shorthandResources } from './mutate.js';
import { parseQuantity } from '../cluster/quantity.js';
import { ANNOTATION_EXPECTED_DURATION, DURATION_FORMAT, formatDuration, parseDuration } from '../queue/duration.js';
import { applicableLimits, type QueueLookup } from '../store/queue-directory.js';
import {
  ANN_GPU_MODEL,
  ANN_GPUS,
  ANN_USER_VERIFIED,
  GATE_QUEUE,
  isQos,
  LABEL_GANG_SIZE,
  LABEL_QOS,
  LABEL_QUEUE,
  LABEL_USER,
  labelSafe,
  QOS_CLASSES,
  type QosClass,
} from './labels.js';
import { controllerOf, jobTypeOf, podAnnotations, podLabels, queueOf, shorthandOf, wholeCount } from './pod-facts.js';
import type { ClusterFacts, WebhookPolicy } from './policy.js';

export type Verdict = { allowed: true; warnings?: string[] } | { allowed: false; code: number; message: string };

export const ALLOW: Verdict = Object.freeze({ allowed: true });
const deny = (code: number, message: string): Verdict => ({ allowed: false, code, message });

/** What a GPU job asks, as the queue checks need it. */
export interface JobAsk {
  queue: string;
  qos: QosClass;
  /** Per pod, per managed resource, non-zero only. */
  perPod: Array<{ resource: string; count: number }>;
  /** Per container, the GPU shares asked (sharing on and the pod asks the share
   * resource): quota counts the share resource as fractions of a GPU. */
  shares?: ContainerShare[] | null;
  /** Pods in the gang (sluice.io/gang-size, default 1). */
  gangSize: number;
  models: string[];
  /** sluice.io/expected-duration in seconds, when declared. */
  expectedSeconds?: number | null;
}

/**
 * Step 1: a deny, the job to check against its queue, or null for a pod that asks no
 * managed GPU resource (nothing more to check).
 */
export function checkPodSpec(
  pod: V1Pod,
  nsLabels: Readonly<Record<string, string>> | undefined,
  username: string,
  policy: WebhookPolicy,
): Verdict | JobAsk | null {
  const sh = shorthandOf(pod);
  if (sh.kind === 'bad') return deny(422, sh.message);
  if (sh.kind === 'ok') {
    // The mutating webhook makes these agree; a mismatch means it was skipped (it fails open).
    const c = pod.spec!.containers[sh.container]!;
    if (sh.share && !policy.sharing)
      return deny(422, `annotation ${ANN_GPUS} asks a share of a GPU but GPU sharing is off in sluice (config sharing.enabled); ask whole GPUs such as "1"`);
    for (const [r, n] of shorthandResources(sh, policy)) {
      const have = wholeCount(c.resources?.limits?.[r] ?? 0);
      if (have !== n) {
        return deny(
          422,
          `annotation ${ANN_GPUS} asks ${n} ${r} but container ${c.name} has ${Number.isNaN(have) ? 'an invalid amount' : have}; sluice's mutating webhook did not run, create the pod again`,
        );
      }
    }
  }
  const labels = podLabels(pod);
  const spec = pod.spec!;
  for (const resource of policy.gpuResources) {
    for (const list of [spec.containers, spec.initContainers]) {
      for (const c of (list ?? []) as V1Container[]) {
        const l = c.resources?.limits?.[resource];
        const q = c.resources?.requests?.[resource];
        for (const [what, v] of [
          ['limits', l],
          ['requests', q],
        ] as const) {
          if (v !== undefined && Number.isNaN(wholeCount(v))) {
            return deny(422, `container ${c.name} asks ${what} "${String(v)}" ${resource}; GPU counts must be whole numbers such as "1" or "2"`);
          }
        }
        if (l !== undefined && q !== undefined && parseQuantity(l) !== parseQuantity(q)) {
          return deny(422, `container ${c.name} asks ${String(q)} ${resource} in requests but ${String(l)} in limits; set them equal`);
        }
      }
    }
  }
  // Counted the way kube-scheduler counts (sidecars add up, init containers peak).
  let perPod: JobAsk['perPod'];
  let shares: ContainerShare[] | null = null;
  try {
    perPod = podGpuRequests(pod, policy.gpuResources);
    const sharing = policy.sharing;
    if (sharing && perPod.some((r) => r.resource === sharing.resource)) shares = podShareAsks(pod, sharing).filter((x): x is ContainerShare => x !== null);
  } catch (e) {
    if (e instanceof PodRequestError) return deny(422, e.message);
    throw e;
  }
  if (perPod.length === 0) return null;
  // A pod that names its node bypasses the scheduler, the extender and the queue.
  // (Static and mirror pods, made by a kubelet, never get here: see handler.ts.)
  if (spec.nodeName) return deny(403, `pod sets spec.nodeName to ${spec.nodeName}; remove spec.nodeName; sluice places GPU pods`);

  const qos = labels[LABEL_QOS] ?? 'guaranteed';
  if (!isQos(qos)) return deny(422, `label ${LABEL_QOS} is "${qos}"; use one of ${QOS_CLASSES.join(', ')}`);
  const type = jobTypeOf(pod);
  if (type !== undefined && policy.jobTypes.size > 0 && !policy.jobTypes.has(type)) {
    return deny(422, `job type "${type}" is not configured; use one of ${[...policy.jobTypes.keys()].join(', ')} or drop the sluice.io/job-type label`);
  }
  // Defence in depth for when the mutating webhook was skipped (failurePolicy Ignore): a
  // bare pod may not claim another user. Controller-made pods carry their template's label.
  const claimed = labels[LABEL_USER];
  if (claimed !== undefined && username !== policy.serviceAccount && controllerOf(pod) === undefined && claimed !== labelSafe(username)) {
    return deny(403, `label ${LABEL_USER} is "${claimed}" but the pod is created by ${username || '(unknown)'}; remove the label, sluice sets it`);
  }
  // A template cannot vouch for its own user label (see mutate.ts: such labels are unverified).
  if (
    claimed !== undefined &&
    controllerOf(pod) !== undefined &&
    podAnnotations(pod)[ANN_USER_VERIFIED] === 'true' &&
    username !== policy.serviceAccount &&
    claimed !== labelSafe(username)
  ) {
    return deny(
      403,
      `annotation ${ANN_USER_VERIFIED} is "true" but label ${LABEL_USER} "${claimed}" comes from the pod template, not from ${username || '(unknown)'}; remove the annotation, sluice sets it`,
    );
  }
  const rawGang = labels[LABEL_GANG_SIZE] ?? podAnnotations(pod)[LABEL_GANG_SIZE];
  const gangSize = rawGang === undefined ? 1 : wholeCount(rawGang);
  if (!(gangSize >= 1)) return deny(422, `${LABEL_GANG_SIZE} is "${rawGang}"; it must be a whole number of pods, at least 1`);
  const rawDuration = podAnnotations(pod)[ANNOTATION_EXPECTED_DURATION];
  const expectedSeconds = rawDuration === undefined ? null : parseDuration(rawDuration);
  if (rawDuration !== undefined && expectedSeconds === null) {
    return deny(422, `annotation ${ANNOTATION_EXPECTED_DURATION} is "${rawDuration}"; write ${DURATION_FORMAT}`);
  }
  return { queue: queueOf(pod, nsLabels), qos, perPod, shares, gangSize, models: parseModelList(podAnnotations(pod)[ANN_GPU_MODEL]), expectedSeconds };
}

export const isJobAsk = (v: Verdict | JobAsk | null): v is JobAsk => v !== null && 'perPod' in v;

/** Steps 2-4. */
export function checkQueue(ask: JobAsk, lookup: QueueLookup, policy: WebhookPolicy, facts: ClusterFacts): Verdict {
  const q = ask.queue;
  if (lookup.status === 'unavailable') {
    const why = `sluice cannot read queue ${q} (${lookup.reason})`;
    return policy.onStoreDown === 'deny'
      ? deny(503, `${why}; retry in a minute, or ask a sluice admin to check its Postgres`)
      : { allowed: true, warnings: [`${why}: admitted without quota checks; the queue manager still holds the pod until it fits`] };
  }
  if (lookup.status === 'missing') {
    return deny(404, `queue ${q} does not exist; set label ${LABEL_QUEUE} to an existing queue or ask a sluice admin to create ${q}`);
  }
  const queue = lookup.queue;
  if (!queue.open) return deny(403, `queue ${q} is closed to new jobs; submit to another queue or ask a sluice admin to reopen it`);
  const cap = queue.maxDurationSeconds ?? null;
  if (cap !== null && ask.expectedSeconds != null && ask.expectedSeconds > cap) {
    return deny(
      403,
      `annotation ${ANNOTATION_EXPECTED_DURATION} declares ${formatDuration(ask.expectedSeconds)} (${ask.expectedSeconds} s) but queue ${q} allows at most ${formatDuration(cap)} (${cap} s); declare at most ${formatDuration(cap)} or submit to another queue`,
    );
  }

  for (const { resource, count } of ask.perPod) {
    // GPU shares count as fractions of a GPU, priced as the queue manager prices a pod not
    // placed yet (ClusterCache.gpuEquivalents): 4 pods of 0.25 GPU ask 1.
    const each =
      ask.shares && resource === policy.sharing?.resource ? shareGpus(count, ask.shares, pricingMemMiB(ask.shares, facts.sharedGpuSizes?.() ?? [])) : count;
    const job = milliToGpus(gpusToMilli(each) * ask.gangSize);
    const who = ask.gangSize > 1 ? `job asks ${job} ${resource} (${ask.gangSize} pods of ${each})` : `pod asks ${job} ${resource}`;
    const rows = applicableLimits(queue.limits, resource, ask.models);
    const modelNote = ask.models.length > 0 ? ` for GPU model ${ask.models.join(',')}` : '';
    if (rows.length === 0) {
      return deny(403, `${who} but queue ${q} has no ${resource} quota${modelNote}; ask a sluice admin to add one`);
    }
    // Several rows may apply (a model row and an any-model row): the most permissive counts.
    const perJob = rows.some((r) => r.perJobMax === 0) ? 0 : Math.max(...rows.map((r) => r.perJobMax));
    if (perJob > 0 && job > perJob) {
      return deny(403, `${who} but queue ${q} allows at most ${perJob} per job${modelNote} (${milliToGpus(gpusToMilli(job) - perJob * 1000)} too many)`);
    }
    // Guaranteed jobs of a queue in a cohort may borrow idle quota, so only
    // cohort-less queues have a hard guaranteed ceiling.
    const ceiling =
      ask.qos === 'best-effort' ? Math.max(...rows.map((r) => r.bestEffortCap)) : queue.cohort === null ? Math.max(...rows.map((r) => r.guaranteed)) : Infinity;
    if (job > ceiling) {
      const what = ask.qos === 'best-effort' ? 'best-effort cap' : 'guaranteed quota';
      return deny(
        403,
        `${who} but queue ${q}'s ${what} is ${ceiling}${modelNote} (${milliToGpus(gpusToMilli(job) - ceiling * 1000)} over), so it could never run; ask for fewer GPUs or a larger quota`,
      );
    }
    const largest = facts.largestNode(resource, ask.models);
    if (largest === 0 && ask.models.length > 0) {
      const present = facts.products(resource).join(', ') || 'none';
      return deny(403, `no node has a GPU model matching ${ask.models.join(',')} (present: ${present}); change annotation ${ANN_GPU_MODEL}`);
    }
    if (largest !== null && count > largest) {
      return deny(
        403,
        `pod asks ${count} ${resource} but the largest node with a matching GPU has ${largest} (${count - largest} too many); split the job into pods of at most ${largest}`,
      );
    }
  }
  return ALLOW;
}

/**
 * A GPU share no registered GPU could ever hold (memory or cores above the largest GPU of
 * the cluster's HAMi nodes): denied with the numbers and the largest GPU. Allowed when
 * sharing is off, the pod asks no share, or no node has shared GPUs (nothing to conclude).
 */
export function checkShares(pod: V1Pod, policy: WebhookPolicy, facts: ClusterFacts): Verdict {
  if (!policy.sharing || !facts.largestSharedGpu) return ALLOW;
  let asks: ReturnType<typeof podShareAsks>;
  try {
    asks = podShareAsks(pod, policy.sharing);
  } catch (e) {
    if (e instanceof PodRequestError) return deny(422, e.message);
    throw e;
  }
  const largest = facts.largestSharedGpu();
  if (!largest) return ALLOW;
  const gpu = `the largest GPU is ${largest.memMiB} MiB with ${largest.cores} cores (GPU ${largest.index} of node ${largest.node})`;
  for (const a of asks) {
    if (!a) continue;
    if (a.memMiB > largest.memMiB)
      return deny(403, `pod asks ${a.memMiB} MiB of GPU memory (${policy.sharing.memory}) but ${gpu}; ask at most ${largest.memMiB}`);
    if (a.cores > largest.cores) return deny(403, `pod asks ${a.cores} GPU cores (${policy.sharing.cores}) but ${gpu}`);
  }
  return ALLOW;
}

const PROTECTED_LABELS = [LABEL_QUEUE, LABEL_QOS, LABEL_USER] as const;

/** UPDATE: the gate and the queue/qos/user labels belong to sluice. */
export function checkUpdate(pod: V1Pod, oldPod: V1Pod, username: string, policy: WebhookPolicy): Verdict {
  if (username === policy.serviceAccount) return ALLOW;
  const hadGate = (oldPod.spec?.schedulingGates ?? []).some((g) => g?.name === GATE_QUEUE);
  const hasGate = (pod.spec?.schedulingGates ?? []).some((g) => g?.name === GATE_QUEUE);
  if (hadGate && !hasGate) {
    return deny(
      403,
      `only sluice may remove the scheduling gate ${GATE_QUEUE} (user ${username || '(unknown)'} tried); the pod starts when its queue has room`,
    );
  }
  const before = podLabels(oldPod);
  const after = podLabels(pod);
  for (const k of PROTECTED_LABELS) {
    if (before[k] !== after[k]) {
      return deny(
        403,
        `only sluice may change label ${k} (from ${show(before[k])} to ${show(after[k])}); delete the pod and create it again with the value you want`,
      );
    }
  }
  const annBefore = podAnnotations(oldPod)[ANN_USER_VERIFIED];
  const annAfter = podAnnotations(pod)[ANN_USER_VERIFIED];
  if (annBefore !== annAfter) {
    return deny(
      403,
      `only sluice may change annotation ${ANN_USER_VERIFIED} (from ${show(annBefore)} to ${show(annAfter)}); delete the pod and create it again`,
    );
  }
  return ALLOW;
}

const show = (v: string | undefined): string => (v === undefined ? 'unset' : `"${v}"`);
