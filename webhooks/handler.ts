// The webhooks at the edge: reads the request, asks the pure decisions (mutate.ts,
// validate.ts), reads the queue directory (cached; no database round trip in the common
// case) and the workload that owns the pod (workloads/, cached per object), logs one line
// per decision, records it in the audit (never for dryRun) and counts it. Nothing here
// throws for a request it cannot understand: such a request gets a well-formed answer
// saying why.
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AuditSink } from '../store/audit.js';
import { cutText, MAX_MESSAGE_CHARS } from '../store/pg-text.js';
import type { QueueDirectory } from '../store/queue-directory.js';
import { encodePatch, patched, readPod, reviewResponse, type AdmissionRequest, type AdmissionResponse, type AdmissionReviewResponse } from './admission.js';
import { mutatePod } from './mutate.js';
import { inScope } from './pod-facts.js';
import type { ClusterFacts, WebhookPolicy } from './policy.js';
import { checkPodSpec, checkQueue, checkShares, checkUpdate, isJobAsk, type Verdict } from './validate.js';
import { templateAsksGpu } from '../workloads/kind.js';
import { NO_WORKLOAD, resolveWorkload, type ObjectReader, type Resolution } from '../workloads/resolve.js';

export interface AdmissionHandlerOptions {
  policy: WebhookPolicy;
  facts: ClusterFacts;
  queues: QueueDirectory;
  audit: AuditSink;
  log: Logger;
  metrics: Metrics;
  /** Where a pod gated now stands in its queue (queue/preview.ts); absent = no warning. */
  queuePreview?: (pod: V1Pod) => string | null;
  /** Reads the workloads that own pods (job frameworks); absent = off: a job is the pod's controller. */
  workloads?: ObjectReader | null;
}

type Webhook = 'mutate' | 'validate';

interface Outcome {
  response: AdmissionResponse;
  /** allowed | patched | denied | out_of_scope | unreadable | store_down */
  outcome: string;
  reason: string;
  /** Audit and log at info: sluice acted on the pod (in scope). */
  record: boolean;
}

type Child<T extends { labels(...v: string[]): unknown }> = ReturnType<T['labels']>;

export class AdmissionHandler {
  // Metric children resolved once, not per request (label lookups hash and allocate).
  private readonly latency: Record<Webhook, Child<Metrics['webhookLatency']>>;
  private readonly counters = new Map<string, Child<Metrics['webhookRequests']>>();

  constructor(private readonly o: AdmissionHandlerOptions) {
    this.latency = { mutate: o.metrics.webhookLatency.labels('mutate'), validate: o.metrics.webhookLatency.labels('validate') };
  }

  private count(webhook: Webhook, outcome: string): void {
    const key = webhook + outcome;
    let c = this.counters.get(key);
    if (!c) this.counters.set(key, (c = this.o.metrics.webhookRequests.labels(webhook, outcome)));
    c.inc();
  }

  async mutate(req: AdmissionRequest): Promise<AdmissionReviewResponse> {
    return this.run('mutate', req, () => this.decideMutate(req));
  }

  async validate(req: AdmissionRequest): Promise<AdmissionReviewResponse> {
    return this.run('validate', req, () => this.decideValidate(req));
  }

  private async run(webhook: Webhook, req: AdmissionRequest, decide: () => Outcome | Promise<Outcome>): Promise<AdmissionReviewResponse> {
    const start = performance.now();
    // A reason or warning may quote what the pod says (a 100 KB annotation): sent back, logged and audited cut.
    const out = cutOutcome(await decide());
    this.latency[webhook].observe((performance.now() - start) / 1000);
    this.count(webhook, out.outcome);
    // Out-of-scope requests (most pods of a cluster) log at debug: skip building the line.
    if (!out.record && !this.o.log.isLevelEnabled('debug')) return reviewResponse(out.response);
    const user = typeof req.userInfo?.username === 'string' ? req.userInfo.username : '';
    const pod = podName(req);
    const fields = {
      webhook,
      uid: req.uid,
      operation: req.operation,
      namespace: req.namespace,
      pod,
      user,
      allowed: out.response.allowed,
      code: out.response.status?.code ?? 200,
      outcome: out.outcome,
      dryRun: req.dryRun === true,
    };
    const msg = out.reason.startsWith(out.outcome) ? `${webhook} ${out.reason}` : `${webhook} ${out.outcome}: ${out.reason}`;
    if (out.record) this.o.log.info(fields, msg);
    else this.o.log.debug(fields, msg);
    // A dry run must have no side effects: no audit row.
    if (out.record && req.dryRun !== true) {
      this.o.audit.recordAdmission({
        uid: req.uid,
        operation: `${req.operation ?? ''}${webhook === 'mutate' ? ' (mutate)' : ''}`,
        namespace: str(req.namespace),
        pod,
        user,
        allowed: out.response.allowed,
        code: out.response.status?.code ?? 200,
        reason: out.reason,
        dryRun: false,
      });
    }
    return reviewResponse(out.response);
  }

  /** The namespace's labels; one not yet seen by the informer is read from the apiserver. */
  private namespaceLabels(req: AdmissionRequest): Readonly<Record<string, string>> | undefined | Promise<Readonly<Record<string, string>> | undefined> {
    const ns = str(req.namespace);
    const known = this.o.facts.namespaceLabels(ns);
    if (known !== undefined || ns === '' || !this.o.facts.lookupNamespace) return known;
    return this.o.facts.lookupNamespace(ns);
  }

  private async decideMutate(req: AdmissionRequest): Promise<Outcome> {
    const skip = notOurs(req);
    if (skip) return allowUntouched(req, skip);
    if (req.operation !== 'CREATE' || isStatus(req)) return allowUntouched(req, `${String(req.operation)} needs no mutation`);
    const pod = readPod(req.object);
    if (typeof pod === 'string') return { ...allowUntouched(req, `${pod}; left unchanged`), outcome: 'unreadable' };
    if (isKubeletPod(pod, req)) return allowUntouched(req, KUBELET_POD);
    const nsLabels = await this.namespaceLabels(req);
    const found = await this.workloadOf(pod, req);
    const workload = found.status === 'found' ? found.workload : null;
    if (!inScope(pod, nsLabels, workload?.labels)) return allowUntouched(req, 'not in a sluice-managed namespace and no sluice.io/queue label');
    const m = mutatePod({ pod, username: str(req.userInfo?.username), nsLabels, policy: this.o.policy, facts: this.o.facts, workload });
    if (found.status === 'unreadable')
      m.warnings.push(`sluice cannot tell this pod's job and gang: ${found.reason}; the pod is queued as a job of its own, with no gang`);
    const warnings = m.warnings.length > 0 ? { warnings: m.warnings } : {};
    if (m.ops.length === 0) {
      return {
        response: { uid: req.uid, allowed: true, ...warnings },
        outcome: 'allowed',
        reason: m.warnings[0] ?? (m.gpu ? 'already complete' : 'asks no GPU'),
        record: m.gpu,
      };
    }
    const response: AdmissionResponse = { uid: req.uid, allowed: true, patchType: 'JSONPatch', patch: encodePatch(m.ops), ...warnings };
    if (m.changes.includes('gate') && this.o.queuePreview) {
      const warning = this.o.queuePreview(patched(pod, m.ops));
      if (warning) response.warnings = [...(response.warnings ?? []), warning];
    }
    return {
      response,
      outcome: 'patched',
      reason: `patched ${m.changes.join(', ')}${m.warnings.length > 0 ? `; ${m.warnings.join('; ')}` : ''}`,
      record: true,
    };
  }

  /** The GPU pod's workload; none for pods that ask no GPU (they are never queued). */
  private workloadOf(pod: V1Pod, req: AdmissionRequest): Resolution | Promise<Resolution> {
    const reader = this.o.workloads;
    if (!reader || !templateAsksGpu(pod, this.o.policy.gpuResources)) return NO_WORKLOAD;
    return resolveWorkload(pod, str(req.namespace), reader, this.o.policy.gpuResources);
  }

  private async decideValidate(req: AdmissionRequest): Promise<Outcome> {
    const skip = notOurs(req);
    if (skip) return allowUntouched(req, skip);
    const pod = readPod(req.object);
    if (typeof pod === 'string') return verdictOutcome(req, { allowed: false, code: 400, message: `${pod}; sluice cannot check this pod` }, 'unreadable');
    if (req.operation === 'UPDATE') {
      const old = readPod(req.oldObject, 'request.oldObject');
      if (typeof old === 'string') return verdictOutcome(req, { allowed: false, code: 400, message: `${old}; sluice cannot check this update` }, 'unreadable');
      const v = checkUpdate(pod, old, str(req.userInfo?.username), this.o.policy);
      // Updates of pods sluice does not manage are not worth an audit row, nor are the
      // frequent status updates of its own pods unless denied.
      const ours = v.allowed === false || (isOurs(old) && !isStatus(req));
      return { ...verdictOutcome(req, v), record: ours };
    }
    if (req.operation !== 'CREATE' || isStatus(req)) return allowUntouched(req, `${String(req.operation)} is not checked`);
    if (isKubeletPod(pod, req)) return allowUntouched(req, KUBELET_POD);
    const nsLabels = await this.namespaceLabels(req);
    if (!inScope(pod, nsLabels)) return allowUntouched(req, 'not in a sluice-managed namespace and no sluice.io/queue label');
    const ask = checkPodSpec(pod, nsLabels, str(req.userInfo?.username), this.o.policy);
    if (ask === null) return { ...allowUntouched(req, 'asks no GPU'), record: false };
    if (!isJobAsk(ask)) return verdictOutcome(req, ask);
    const shares = checkShares(pod, this.o.policy, this.o.facts);
    if (!shares.allowed) return verdictOutcome(req, shares);
    const lookup = await this.o.queues.lookup(ask.queue);
    const v = checkQueue(ask, lookup, this.o.policy, this.o.facts);
    if (lookup.status === 'unavailable') {
      this.o.metrics.webhookStoreDown.inc({ policy: this.o.policy.onStoreDown });
      this.o.log.warn(
        { queue: ask.queue, reason: lookup.reason, policy: this.o.policy.onStoreDown },
        `queue store unavailable: ${this.o.policy.onStoreDown === 'deny' ? 'denying' : 'admitting without quota checks'} (webhooks.onStoreDown)`,
      );
      return { ...verdictOutcome(req, v), outcome: 'store_down' };
    }
    return verdictOutcome(req, v);
  }
}

function verdictOutcome(req: AdmissionRequest, v: Verdict, outcome?: string): Outcome {
  if (v.allowed) {
    const response: AdmissionResponse = { uid: req.uid, allowed: true };
    if (v.warnings) response.warnings = v.warnings;
    return { response, outcome: outcome ?? 'allowed', reason: v.warnings?.[0] ?? 'within policy', record: true };
  }
  return {
    response: { uid: req.uid, allowed: false, status: { code: v.code, message: v.message } },
    outcome: outcome ?? 'denied',
    reason: v.message,
    record: true,
  };
}

function allowUntouched(req: AdmissionRequest, reason: string): Outcome {
  return { response: { uid: req.uid, allowed: true }, outcome: 'out_of_scope', reason, record: false };
}

/**
 * Why a request is none of sluice's business, or null when it is about a pod or its
 * status subresource (an UPDATE of pods/status can change labels too, so it gets the same
 * tamper checks).
 */
function notOurs(req: AdmissionRequest): string | null {
  const resource = req.resource?.resource;
  if (resource !== undefined && resource !== 'pods') return `resource ${String(resource)} is not pods`;
  if (typeof req.subResource === 'string' && req.subResource !== '' && req.subResource !== 'status') return `subresource ${req.subResource} is not checked`;
  return null;
}

const isStatus = (req: AdmissionRequest): boolean => req.subResource === 'status';

const KUBELET_POD = 'static or mirror pod made by a kubelet';

/**
 * Static pods' mirror pods are made by a kubelet (user system:node:NAME) and already run
 * on their node: they carry spec.nodeName and cannot be gated, queued or placed, so
 * sluice leaves their CREATE alone (UPDATEs, a kubelet's status updates included, still get
 * the tamper checks). The kubernetes.io/config.mirror annotation alone proves
 * nothing (any user may write it), so only the requesting user counts.
 */
function isKubeletPod(_pod: V1Pod, req: AdmissionRequest): boolean {
  const user = req.userInfo?.username;
  return typeof user === 'string' && user.startsWith('system:node:');
}

function isOurs(pod: V1Pod): boolean {
  const labels = pod.metadata?.labels;
  return (
    (labels !== undefined && labels !== null && Object.keys(labels).some((k) => k.startsWith('sluice.io/'))) ||
    (pod.spec?.schedulingGates ?? []).some((g) => g?.name?.startsWith('sluice.io/'))
  );
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function podName(req: AdmissionRequest): string {
  if (typeof req.name === 'string' && req.name !== '') return req.name;
  const md = (req.object as { metadata?: { name?: unknown; generateName?: unknown } } | null | undefined)?.metadata;
  return str(md?.name) || str(md?.generateName);
}

/** The outcome with its reason, status message and warnings cut to MAX_MESSAGE_CHARS (cutText says so in them). */
function cutOutcome(out: Outcome): Outcome {
  const r = out.response;
  const long = (x: string | undefined): boolean => x !== undefined && x.length > MAX_MESSAGE_CHARS;
  if (!long(out.reason) && !long(r.status?.message) && !(r.warnings ?? []).some(long)) return out;
  return {
    ...out,
    reason: cutText(out.reason),
    response: {
      ...r,
      ...(r.status ? { status: { ...r.status, ...(r.status.message !== undefined ? { message: cutText(r.status.message) } : {}) } } : {}),
      ...(r.warnings ? { warnings: r.warnings.map((w) => cutText(w)) } : {}),
    },
  };
}
