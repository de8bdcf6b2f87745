// HTTP face of the extender: POST /scheduler/{filter,prioritize,preempt,bind}. Bodies are
// validated by the route schemas (400 with the schema error on bad input); decisions
// come from Extender (filter, prioritize, bind) and Preempter (preempt.ts). No verb decides
// before the cluster cache has synced (gateUntilSynced, on the listener: every /scheduler/
// route, of this plugin or another, goes through it).
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from '../observability/logger.js';
import { PodRequestError } from '../cluster/pod-request.js';
import type { Metrics } from '../observability/metrics.js';
import type { Extender } from './extender.js';
import type { Preempter } from './preempt.js';
import {
  bindingArgsSchema,
  bindingResultSchema,
  extenderArgsSchema,
  filterResultSchema,
  hostPriorityListSchema,
  preemptionArgsSchema,
  preemptionResultSchema,
  type ExtenderArgs,
  type ExtenderBindingArgs,
  type ExtenderPreemptionArgs,
} from './wire.js';

export interface SchedulerRoutesOptions {
  extender: Extender;
  preempter: Preempter;
  metrics: Metrics;
  /** Most nodes one request may name (limits.extenderMaxNodes). */
  maxNodes: number;
}

export interface ReadinessGateOptions {
  metrics: Metrics;
  log: Logger;
  /** Why the extender must not decide yet (cluster cache not synced), or null when it may. */
  notReady: () => string | null;
}

/**
 * Readiness gate for every route under /scheduler/, before the body is even read; added to
 * the listener itself, so a verb registered by any plugin is covered. A decision made before
 * both informers have listed the cluster sees nodes as empty (issue 12: 16 of 8 GPUs after a
 * restart). Each verb answers in its own wire form with an error kube-scheduler retries:
 * filter and bind with `Error` set, the others (prioritize, preempt) with HTTP 503.
 */
export function gateUntilSynced(app: FastifyInstance, { metrics, log, notReady }: ReadinessGateOptions): void {
  let refusing = false;
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/scheduler/')) return;
    const why = notReady();
    if (why === null) {
      if (refusing) log.info('cluster cache synced: the extender decides again');
      refusing = false;
      return;
    }
    const verb = route.split('/').pop() ?? '';
    metrics.extenderNotReady.inc({ verb });
    if (!refusing) log.warn({ reason: why }, `the extender refuses to decide until the cluster cache has synced (${why}); kube-scheduler retries`);
    refusing = true;
    const message = `sluice is not ready: ${why}; kube-scheduler retries this pod`;
    return notReadyAnswer(reply, verb, message);
  });
}

export const schedulerRoutes: FastifyPluginAsync<SchedulerRoutesOptions> = async (app, { extender, preempter, metrics, maxNodes }) => {
  const timed = async <T>(verb: string, fn: () => Promise<T>): Promise<T> => {
    const end = metrics.extenderLatency.startTimer({ verb });
    try {
      const out = await fn();
      metrics.extenderRequests.inc({ verb, outcome: 'ok' });
      return out;
    } catch (e) {
      metrics.extenderRequests.inc({ verb, outcome: e instanceof PodRequestError ? 'bad_request' : 'error' });
      throw e;
    } finally {
      end();
    }
  };

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof PodRequestError) return reply.code(400).send({ error: err.message });
    const e = err as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation) {
      metrics.extenderRequests.inc({ verb: req.routeOptions.url?.split('/').pop() ?? '', outcome: 'bad_request' });
      return reply.code(400).send({ error: e.message });
    }
    if (e.statusCode && e.statusCode < 500) return reply.code(e.statusCode).send({ error: e.message });
    req.log.error({ err }, 'extender request failed');
    return reply.code(500).send({ error: e.message });
  });

  // The response schemas document the answers (OpenAPI); the answers themselves are
  // serialized with JSON.stringify, which a benchmark showed faster than the schema-compiled
  // serializer for thousands of node names and reasons (0.30 vs 0.48 ms at 5,000 nodes).
  // A filter answer echoes the Node objects it was sent; one nested deeper than
  // JSON.stringify can recurse (10,000 levels) is the sender's error, not sluice's.
  const plainJson = () => (data: unknown) => {
    try {
      return JSON.stringify(data);
    } catch (e) {
      if (e instanceof RangeError)
        throw Object.assign(new Error('a node in the request is nested too deeply to be echoed back; send Node objects as the apiserver returns them'), {
          statusCode: 400,
        });
      throw e;
    }
  };
  const argsSchema = extenderArgsSchema(maxNodes);

  app.post(
    '/scheduler/filter',
    {
      schema: { body: argsSchema, response: { 200: filterResultSchema } },
      serializerCompiler: plainJson,
    },
    async (req) => timed('filter', () => extender.filter(req.body as ExtenderArgs)),
  );

  app.post(
    '/scheduler/prioritize',
    {
      schema: { body: argsSchema, response: { 200: hostPriorityListSchema } },
      serializerCompiler: plainJson,
    },
    async (req) => timed('prioritize', () => extender.prioritize(req.body as ExtenderArgs)),
  );

  app.post(
    '/scheduler/preempt',
    {
      schema: { body: preemptionArgsSchema, response: { 200: preemptionResultSchema } },
    },
    async (req) => {
      const end = metrics.extenderLatency.startTimer({ verb: 'preempt' });
      try {
        const out = await preempter.preempt(req.body as ExtenderPreemptionArgs);
        metrics.extenderRequests.inc({ verb: 'preempt', outcome: 'ok' });
        return out;
      } catch (e) {
        metrics.extenderRequests.inc({ verb: 'preempt', outcome: e instanceof PodRequestError ? 'bad_request' : 'error' });
        throw e;
      } finally {
        end();
      }
    },
  );

  app.post(
    '/scheduler/bind',
    {
      schema: { body: bindingArgsSchema, response: { 200: bindingResultSchema } },
    },
    async (req) => {
      const end = metrics.extenderLatency.startTimer({ verb: 'bind' });
      const out = await extender.bind(req.body as ExtenderBindingArgs);
      end();
      metrics.extenderRequests.inc({ verb: 'bind', outcome: 'ok' });
      return out;
    },
  );
};

function notReadyAnswer(reply: FastifyReply, verb: string, message: string): FastifyReply {
  if (verb === 'filter') {
    return reply.code(200).send({ Nodes: null, NodeNames: [], FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: message });
  }
  if (verb === 'bind') return reply.code(200).send({ Error: message });
  return reply.code(503).send({ error: message });
}
