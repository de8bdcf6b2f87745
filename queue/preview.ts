// The warning kubectl prints when the mutating webhook gates a pod: where it stands in
// its queue, from the queue manager's last evaluation. No I/O and one quota and one
// placement check, so admission stays within its latency budget:
//   "fits now: will be released at once (queue team-a)"
//   "queued in team-a: 14 of 16 guaranteed nvidia.com/gpu in use, job needs 4, position 3 of 5;
//    expected start in about 40 min (from 12 finished jobs like the ones ahead)"
// The ETA is a what-if on the ETA service's last input, within its small admission budget;
// when that is not enough (or there is no ETA service) the warning says "ETA not yet known".
import type { V1Pod } from '@kubernetes/client-node';
import { podGpuRequests, PodRequestError, type ResourceAmount } from '../cluster/pod-request.js';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';
import { parseModelList } from '../placement/gpu-model.js';
import { ANNOTATION_GPU_MODEL } from '../scheduler/pod-ask.js';
import { LABEL_GANG_SIZE, LABEL_JOB, LABEL_QOS, LABEL_QUEUE, LABEL_USER } from '../webhooks/labels.js';
import { ANNOTATION_EXPECTED_DURATION } from './duration.js';
import { etaPhrase, type EtaService } from './eta-service.js';
import type { Snapshot } from './manager.js';
import { compareUnits } from './order.js';
import type { Unit } from './units.js';

/** `gpusOf`: what the pod counts against quota (GPU shares as fractions of a GPU,
 * ClusterCache.gpuEquivalents); absent = its requests. */
export function submitWarning(
  s: Snapshot | null,
  pod: V1Pod,
  resources: readonly string[],
  nowMs: number,
  eta: EtaService | null = null,
  gpusOf?: (pod: V1Pod) => readonly ResourceAmount[],
): string | null {
  const labels = pod.metadata?.labels ?? {};
  const queue = labels[LABEL_QUEUE];
  if (!queue) return null;
  if (!s) return `queued in ${queue}: the queue manager has not evaluated yet; the pod is released when its queue has room`;
  let perPod;
  try {
    perPod = podGpuRequests(pod, resources);
  } catch (e) {
    if (e instanceof PodRequestError) return null;
    throw e;
  }
  const gpus = gpusOf?.(pod) ?? perPod;
  const rawGang = Number(labels[LABEL_GANG_SIZE] ?? pod.metadata?.annotations?.[LABEL_GANG_SIZE] ?? 1);
  const gangSize = Number.isInteger(rawGang) && rawGang >= 1 ? rawGang : 1;
  const models = parseModelList(pod.metadata?.annotations?.[ANNOTATION_GPU_MODEL]);
  const ns = pod.metadata?.namespace ?? '';
  const job = labels[LABEL_JOB] ?? '';
  const probe: Unit = {
    key: `${ns}/${job}`,
    namespace: ns,
    job,
    queue,
    qos: labels[LABEL_QOS] === 'best-effort' ? 'best-effort' : 'guaranteed',
    user: labels[LABEL_USER] ?? '',
    priority: pod.spec?.priority ?? 0,
    submittedMs: nowMs,
    seenMs: nowMs,
    gangSize,
    podsSeen: 0,
    pods: [
      {
        uid: '',
        name: pod.metadata?.name ?? job,
        requests: perPod,
        gpus,
        models,
        nodeSelector: pod.spec?.nodeSelector ?? {},
        affinityTerms: pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? null,
        gateIndex: 0,
      },
    ],
    inFlight: false,
    problem: null,
    need: gpus.map((r) => ({ resource: r.resource, count: milliToGpus(gpusToMilli(r.count) * gangSize) })),
    models,
  };
  const eta_ = (): string => {
    if (!eta) return '';
    const kind = pod.metadata?.ownerReferences?.find((o) => o.controller)?.kind ?? 'Pod';
    return etaPhrase(eta.whatIf({ ...probe, key: `${probe.key}#submitted` }, pod.metadata?.annotations?.[ANNOTATION_EXPECTED_DURATION], kind), nowMs);
  };
  // A gang's earlier pods wait as the gang's own unit: this pod joins it (and its place in
  // the queue, which its oldest pod holds), it is not a job ahead of it.
  const all = s.waiting.get(queue) ?? [];
  const own = gangSize > 1 ? all.find((w) => w.unit.key === probe.key) : undefined;
  if (own) {
    probe.submittedMs = Math.min(probe.submittedMs, own.unit.submittedMs);
    probe.seenMs = Math.min(probe.seenMs, own.unit.seenMs);
  }
  const waiting = own ? all.filter((w) => w !== own) : all;
  const ahead = waiting.filter((w) => compareUnits(w.unit, probe) < 0).length;
  const position = `position ${ahead + 1} of ${waiting.length + 1}`;
  const quota = s.ledger.check(probe);
  // A queue the manager does not know: validation answers for it (denied, or the store is down).
  if (quota?.waitingFor === 'queue_missing') return null;
  if (quota) return `queued in ${queue}: ${quota.reason.replace(/^queue [^:]+: /, '')}, ${position}${eta_()}`;
  if (gangSize > 1) return `queued in ${queue}: a gang of ${gangSize}; released when all ${gangSize} pods exist and fit, ${position}`;
  if (ahead === 0 && s.capacity.wouldPlace(probe.pods, probe.qos)) {
    return s.releasesBlocked ? `fits now, but ${s.releasesBlocked} (queue ${queue})` : `fits now: will be released at once (queue ${queue})`;
  }
  return `queued in ${queue}: no node has room for it now, ${position}${eta_()}`;
}
