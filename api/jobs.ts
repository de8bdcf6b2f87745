// The admin API's job routes: what waits in a queue and why, in release order, and one
// job's record. Live jobs come from the queue manager's last evaluation (every replica
// evaluates); jobs no longer in the cluster come from their Postgres record.
import type { FastifyInstance } from 'fastify';
import { gpusToMilli, milliToGpus } from '../placement/shares.js';
import { basisText, type JobEta } from '../queue/eta-service.js';
import type { ClusterCache } from '../cluster/cache.js';
import type { QueueManager } from '../queue/manager.js';
import { isQueued, jobOf } from '../queue/units.js';
import { getJob } from '../store/jobs.js';
import type { Store } from '../store/store.js';
import { QUEUE_NAME_PATTERN } from './schemas.js';

export class JobsApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const waitingJob = {
  type: 'object',
  properties: {
    position: { type: 'integer' },
    namespace: { type: 'string' },
    name: { type: 'string' },
    user: { type: 'string' },
    qos: { type: 'string' },
    gpus: { type: 'number', description: 'GPUs the job needs against quota; GPU shares as fractions (4 pods of a quarter GPU: 1)' },
    resource: { type: 'string' },
    model: { type: 'string' },
    gangSize: { type: 'integer' },
    podsSeen: { type: 'integer' },
    waitingFor: {
      type: 'string',
      description: 'quota, user_quota, capacity, gang, order, queue_missing, invalid, or release_queue (released as soon as Redis takes the order)',
    },
    reason: { type: 'string' },
    submittedAt: { type: ['string', 'null'] },
    estimatedStartTime: { type: ['string', 'null'], description: 'expected start (docs/eta.md); null when not known' },
  },
} as const;

const etaOut = {
  type: ['object', 'null'],
  description: 'How the estimated start was made (docs/eta.md); null when no estimate was made for this job',
  properties: {
    earliest: { type: ['string', 'null'] },
    latest: { type: ['string', 'null'], description: 'null when the longest-duration run did not reach the start' },
    computedAt: { type: 'string' },
    unknownReason: { type: ['string', 'null'] },
    basis: {
      type: 'object',
      properties: {
        declared: { type: 'integer', description: 'jobs ahead or running whose run time is declared (sluice.io/expected-duration)' },
        learned: { type: 'integer', description: 'jobs ahead or running whose run time is learned from finished jobs like them' },
        learnedFrom: { type: 'integer', description: 'finished jobs behind the learned run times' },
        unknown: { type: 'integer', description: 'jobs of unknown run time (taken as never ending)' },
        summary: { type: 'string' },
      },
    },
    expectedDuration: {
      type: 'object',
      properties: {
        basis: { type: 'string', description: 'annotation, history or unknown' },
        seconds: { type: ['number', 'null'] },
        samples: { type: 'integer' },
      },
    },
  },
} as const;

const runningJob = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    user: { type: 'string' },
    qos: { type: 'string' },
    gpus: { type: 'number', description: 'GPUs its live pods hold against quota; GPU shares as fractions' },
    resource: { type: 'string' },
    state: { type: 'string' },
    releasedAt: { type: ['string', 'null'] },
  },
} as const;

const queueJobsOut = {
  type: 'object',
  properties: {
    queue: { type: 'string' },
    evaluatedAt: { type: 'string' },
    waiting: { type: 'array', items: waitingJob },
    running: { type: 'array', items: runningJob },
  },
} as const;

const jobOut = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    queue: { type: 'string' },
    qos: { type: 'string' },
    user: { type: 'string' },
    resource: { type: 'string' },
    model: { type: 'string' },
    gangSize: { type: 'integer' },
    gpus: {
      type: 'number',
      description:
        'GPUs its live pods hold or ask against quota (a finished job: what its record kept); GPU shares as fractions (a pod of a quarter GPU: 0.25)',
    },
    state: { type: 'string' },
    waitingFor: { type: 'string' },
    reason: { type: 'string' },
    submittedAt: { type: ['string', 'null'], description: 'creation time of the oldest pod; null when no pod has one (a snapshot without creationTimestamp)' },
    releasedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
    position: { type: ['integer', 'null'] },
    estimatedStartTime: { type: ['string', 'null'], description: 'expected start of a waiting job (docs/eta.md); null when not known or not waiting' },
    estimatedStart: etaOut,
    preemptedBy: { type: ['string', 'null'], description: 'the guaranteed pod that took the GPUs back, when preempted' },
    preemptedAt: { type: ['string', 'null'] },
    pods: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, node: { type: 'string' }, gated: { type: 'boolean' }, terminal: { type: 'boolean' } } },
    },
  },
} as const;

function etaView(e: JobEta | undefined): Record<string, unknown> | null {
  if (!e) return null;
  return {
    earliest: isoMs(e.earliestMs),
    latest: isoMs(e.latestMs),
    computedAt: new Date(e.computedAtMs).toISOString(),
    unknownReason: e.unknownReason,
    basis: { declared: e.basis.declared, learned: e.basis.learned, learnedFrom: e.basis.learnedFrom, unknown: e.basis.unknown, summary: basisText(e.basis) },
    expectedDuration: e.basis.duration,
  };
}
const POD_JOB_HINT = "a job is named by its pods' label sluice.io/job, else pod-<pod name>; a queued pod's own name finds its job too";

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
/** A job's submission time; null when none of its pods has a creationTimestamp (Infinity or 0 then). */
const isoMs = (ms: number | null | undefined): string | null =>
  ms !== null && ms !== undefined && Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : null;

/** The job a queued pod belongs to (jobs are named by sluice.io/job, else pod-<pod name>): lets
 * `describe job NS/POD` find the job of the pod a user knows. O(pods), admin API only. */
function jobOfPod(cache: ClusterCache, namespace: string, name: string): string | undefined {
  for (const p of cache.allPods()) if (p.namespace === namespace && p.name === name && isQueued(p)) return jobOf(p);
  return undefined;
}

/** GPUs a job's live pods count against quota: GPU shares as fractions (0.25 each for a
 * quarter GPU), as the queue's usage counts them. */
function quotaGpus(cache: ClusterCache, pods: ReadonlyArray<{ uid: string; terminal: boolean }>): number {
  let m = 0;
  for (const p of pods) {
    const rec = p.terminal ? undefined : cache.pod(p.uid);
    if (rec) for (const r of cache.gpuEquivalents(rec)) m += gpusToMilli(r.count);
  }
  return milliToGpus(m);
}

export function jobRoutes(
  app: FastifyInstance,
  opts: { manager: QueueManager | null; store: Store | null; cache: ClusterCache },
  errors: (...codes: number[]) => Record<number, { $ref: string }>,
): void {
  const snapshot = () => {
    if (!opts.manager) throw new JobsApiError(503, 'the queue manager is off (queue.enabled: false); no jobs are held');
    const s = opts.manager.current();
    if (!s) throw new JobsApiError(503, 'the queue manager has not evaluated yet (cluster cache or queue definitions not loaded); retry in a few seconds');
    return s;
  };

  app.get<{ Params: { name: string } }>(
    '/api/v1/queues/:name/jobs',
    {
      schema: {
        summary: "A queue's jobs: waiting ones in release order with the reason each waits, and running ones",
        tags: ['jobs'],
        params: { type: 'object', properties: { name: { type: 'string', pattern: QUEUE_NAME_PATTERN, maxLength: 63 } }, required: ['name'] },
        response: { 200: queueJobsOut, ...errors(400, 401, 404, 503) },
      },
    },
    async (req) => {
      const s = snapshot();
      const name = req.params.name;
      const waiting = s.waiting.get(name) ?? [];
      if (!s.queues.has(name) && waiting.length === 0 && opts.store) {
        throw new JobsApiError(404, `queue ${name} does not exist; list queues with GET /api/v1/queues`);
      }
      const running = [];
      for (const { view: j, state } of opts.manager!.jobsOf(name)) {
        if (state !== 'running' && state !== 'released') continue;
        const rec = opts.manager!.jobRecord(j.namespace, j.job);
        running.push({
          namespace: j.namespace,
          name: j.job,
          user: j.user,
          qos: j.qos,
          gpus: quotaGpus(opts.cache, j.pods),
          resource: j.gpus[0]?.resource ?? '',
          state,
          releasedAt: iso(rec?.releasedAt),
        });
      }
      running.sort((a, b) => (a.releasedAt ?? '').localeCompare(b.releasedAt ?? '') || a.name.localeCompare(b.name));
      return {
        queue: name,
        evaluatedAt: new Date(s.evaluatedAtMs).toISOString(),
        waiting: waiting.map((w) => ({
          position: w.position,
          namespace: w.unit.namespace,
          name: w.unit.job,
          user: w.unit.user,
          qos: w.unit.qos,
          gpus: milliToGpus(w.unit.need.reduce((a, n) => a + gpusToMilli(n.count), 0)),
          resource: w.unit.need[0]?.resource ?? '',
          model: w.unit.models.join(','),
          gangSize: w.unit.gangSize,
          podsSeen: w.unit.podsSeen,
          waitingFor: w.waitingFor,
          reason: w.reason,
          submittedAt: isoMs(w.unit.submittedMs),
          estimatedStartTime: isoMs(opts.manager!.eta?.forJob(w.unit.namespace, w.unit.job)?.estimatedStartMs),
        })),
        running,
      };
    },
  );

  /** Who preempted a live job, from its record (null when not preempted, or no store). */
  const preemption = async (namespace: string, name: string): Promise<{ preempted: boolean; preemptedBy: string | null; preemptedAt: string | null }> => {
    if (!opts.store) return { preempted: false, preemptedBy: null, preemptedAt: null };
    const stored = await getJob(opts.store.pool, namespace, name).catch(() => null);
    return { preempted: stored?.state === 'preempted', preemptedBy: stored?.preemptedBy ?? null, preemptedAt: iso(stored?.preemptedAt) };
  };

  app.get<{ Params: { namespace: string; name: string } }>(
    '/api/v1/jobs/:namespace/:name',
    {
      schema: {
        summary: 'One job: state, why it waits, its pods (live) or its record (finished)',
        tags: ['jobs'],
        params: {
          type: 'object',
          properties: { namespace: { type: 'string', maxLength: 63, minLength: 1 }, name: { type: 'string', maxLength: 253, minLength: 1 } },
          required: ['namespace', 'name'],
        },
        response: { 200: jobOut, ...errors(400, 401, 404, 503) },
      },
    },
    async (req) => {
      const { namespace } = req.params;
      let name = req.params.name;
      // Postgres text cannot hold U+0000, and no Kubernetes object is named with it.
      if (namespace.includes('\u0000') || name.includes('\u0000')) {
        throw new JobsApiError(400, 'the namespace or job name contains the character U+0000 (%00), which no Kubernetes name holds; check the URL');
      }
      const s = opts.manager?.current();
      let found = opts.manager?.job(namespace, name);
      if (!found && opts.manager) {
        const job = jobOfPod(opts.cache, namespace, name);
        if (job !== undefined) {
          name = job;
          found = opts.manager.job(namespace, name);
        }
      }
      if (s && found) {
        const live = found.view;
        const rec = opts.manager!.jobRecord(namespace, name);
        const { preempted, ...preemptedBy } = await preemption(namespace, name);
        const state = found.state;
        const w = (s.waiting.get(live.queue) ?? []).find((x) => x.unit.namespace === namespace && x.unit.job === name);
        return {
          namespace,
          name,
          queue: live.queue,
          qos: live.qos,
          user: live.user,
          resource: live.gpus[0]?.resource ?? '',
          model: live.models.join(','),
          gangSize: w?.unit.gangSize ?? rec?.gangSize ?? live.pods.length,
          gpus: milliToGpus(live.gpus.reduce((a, g) => a + gpusToMilli(g.count), 0)), // GPU-equivalents: shares as fractions
          // Victims still terminating: their record says preempted, which is what happened.
          state: preempted && state !== 'queued' ? 'preempted' : state,
          // A release decided but not yet taken by Redis: the record says why it still waits.
          waitingFor: w?.waitingFor ?? (state === 'queued' ? rec?.waitingFor : '') ?? '',
          reason: w?.reason ?? (state === 'queued' ? rec?.reason : '') ?? '',
          submittedAt: isoMs(live.submittedMs),
          releasedAt: iso(rec?.releasedAt),
          finishedAt: iso(rec?.finishedAt),
          position: w?.position ?? null,
          estimatedStartTime: state === 'queued' ? isoMs(opts.manager!.eta?.forJob(namespace, name)?.estimatedStartMs) : null,
          estimatedStart: state === 'queued' ? etaView(opts.manager!.eta?.forJob(namespace, name)) : null,
          ...preemptedBy,
          pods: live.pods.map((p) => ({ name: p.name, node: p.node, gated: p.gated, terminal: p.terminal })),
        };
      }
      if (!opts.store)
        throw new JobsApiError(404, `job ${namespace}/${name} is not in the cluster, and no store keeps history (store.url is empty); ${POD_JOB_HINT}`);
      const stored = await getJob(opts.store.pool, namespace, name);
      if (!stored)
        throw new JobsApiError(
          404,
          `job ${namespace}/${name} is not known: not in the cluster and no record in Postgres (records are kept queue.historyDays days); ${POD_JOB_HINT}`,
        );
      return {
        namespace,
        name,
        queue: stored.queue,
        qos: stored.qos,
        user: stored.user,
        resource: stored.resource,
        model: stored.model,
        gangSize: stored.gangSize,
        gpus: stored.gpus,
        state: stored.state,
        waitingFor: stored.waitingFor,
        reason: stored.reason,
        submittedAt: stored.submittedAt.toISOString(),
        releasedAt: iso(stored.releasedAt),
        finishedAt: iso(stored.finishedAt),
        position: null,
        estimatedStartTime: null,
        estimatedStart: null,
        preemptedBy: stored.preemptedBy,
        preemptedAt: iso(stored.preemptedAt),
        pods: [],
      };
    },
  );
}
