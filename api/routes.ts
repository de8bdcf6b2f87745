// The admin REST API under /api/v1, a fastify plugin on the api listener: queue CRUD
// (Postgres via the Store), queue usage and the GPU inventory per node (cluster cache).
// Every route has a JSON schema; @fastify/swagger turns them into /api/v1/openapi.json.
import swagger from '@fastify/swagger';
import AjvModule from 'ajv';
import type { FastifyInstance } from 'fastify';
import type { ClusterCache } from '../cluster/cache.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { isStoreUnavailable } from '../store/connection.js';
import { QueueError, type QueueInput } from '../store/queues.js';
import type { QueueLimit } from '../store/queue-directory.js';
import type { Store } from '../store/store.js';
import type { ApiAuth } from './auth.js';
import { didYouMean } from '../config/closest.js';
import { BodyError, parseAdminBody } from './body.js';
import { errorSchema, nameParams, nodesOut, queueInput, queueSchemas, usageOut } from './schemas.js';
import { queueUsage } from './usage.js';
import { jobRoutes, JobsApiError } from './jobs.js';
import type { QueueManager } from '../queue/manager.js';

const Ajv = AjvModule.default;

export interface AdminApiOptions {
  /** null when the store is disabled (store.url ''): queue routes answer 503. */
  store: Store | null;
  cache: ClusterCache;
  auth: ApiAuth;
  /** GPU resources sluice manages; queue limits must name one of them. */
  gpuResources: readonly string[];
  metrics?: Metrics;
  log: Logger;
  /** The queue manager behind the job routes; null when queue.enabled is false (they answer 503). */
  queueManager?: QueueManager | null;
}

export const OPENAPI_PATH = '/api/v1/openapi.json';

const QUEUE_NAME_RULE = "a queue name is a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const errors = (...codes: number[]): Record<number, { $ref: string }> => Object.fromEntries(codes.map((c) => [c, { $ref: 'ApiError#' }]));

export async function adminApi(app: FastifyInstance, opts: AdminApiOptions): Promise<void> {
  const { cache, auth, metrics } = opts;

  // Unknown fields are errors here (fastify's default strips them silently), so a typo
  // like "guarnteed" is a 400 rather than a quota of 0.
  // verbose: errors carry their schema, so an unknown key can be answered with the known ones.
  const ajv = new Ajv({ useDefaults: true, coerceTypes: false, removeAdditional: false, allErrors: false, strict: false, verbose: true });
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));

  // Our own JSON parser: its refusals name the key (fastify's says only "not valid JSON").
  app.removeContentTypeParser('application/json');
  // Only JSON bodies: a text/plain body (curl -d without -H) is a 415 with a hint, not "body must be object".
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    try {
      done(null, parseAdminBody(text as string));
    } catch (e) {
      done(e as BodyError, undefined);
    }
  });

  app.addSchema(errorSchema);
  app.addSchema(queueSchemas.queueOut);

  await app.register(swagger, {
    // Shared schemas keep their $id as component name (Queue, ApiError) instead of def-N.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sluice admin API',
        version: 'v1',
        description: 'Queues and GPU quotas (Postgres), queue usage and GPU inventory (cluster cache), waiting and running jobs (queue manager).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());

  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url === OPENAPI_PATH) return;
    const res = await auth.check(req.headers.authorization, req.ip);
    if (!res.ok) {
      if (res.status === 429) {
        return reply
          .code(429)
          .header('retry-after', String(res.retryAfterSeconds ?? 1))
          .send({ statusCode: 429, error: 'Too Many Requests', message: res.reason });
      }
      // Authenticated, not authorised: 401 would tell a client to retry with other credentials.
      if (res.status === 403) return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: res.reason });
      return reply.code(401).header('www-authenticate', 'Bearer realm="sluice"').send({ statusCode: 401, error: 'Unauthorized', message: res.reason });
    }
    req.log = req.log.child({ apiUser: res.user });
  });

  app.addHook('onResponse', async (req, reply) => {
    metrics?.apiRequests.inc({ route: req.routeOptions.url ?? 'unknown', code: String(reply.statusCode) });
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
    // Our refusals carry their own message; fastify's (validation, bad JSON) get a pointer to the schema.
    if (err instanceof QueueError || err instanceof ApiError || err instanceof JobsApiError || err instanceof BodyError)
      return reply.code(err.statusCode).send(body(err.statusCode, err.message));
    if (err.validation && (err as { validationContext?: string }).validationContext === 'params') {
      return reply.code(400).send(body(400, `${err.message}: ${QUEUE_NAME_RULE}`));
    }
    const unknown = unknownField(err.validation);
    if (unknown) return reply.code(400).send(body(400, unknown));
    if (err.statusCode === 415) {
      return reply.code(415).send(body(415, `${err.message}: send the body as JSON with the header content-type: application/json`));
    }
    if (err.validation || (err.statusCode && err.statusCode < 500)) {
      const code = err.statusCode ?? 400;
      return reply.code(code).send(body(code, `${err.message}; see ${OPENAPI_PATH} for the request schema`));
    }
    if (isStoreUnavailable(err)) {
      opts.log.warn({ err: err.message, code: err.code, url: req.url }, 'admin API request failed: Postgres unreachable or failing');
      return reply.code(503).send(body(503, `the Postgres store is unreachable or failing (${err.message}); retry once it is back`));
    }
    opts.log.error({ err: err.message, code: err.code, stack: err.stack, url: req.url }, 'admin API request failed with an internal error');
    return reply.code(500).send(body(500, `internal error in sluice (${err.message}); this is a bug, please report it with the request`));
  });

  const STORE_DISABLED = 'the Postgres store is disabled (store.url is empty); set store.url or DATABASE_URL to manage queues';
  const requireStore = (): Store => {
    if (!opts.store) throw new ApiError(503, STORE_DISABLED);
    const why = opts.store.notReady();
    if (why) throw new ApiError(503, why);
    return opts.store;
  };

  app.get(
    '/api/v1/queues',
    {
      schema: {
        summary: 'List queues with their limits',
        tags: ['queues'],
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Queue#' } } }, required: ['items'] },
          ...errors(401, 500, 503),
        },
      },
    },
    async () => ({ items: await requireStore().listQueues() }),
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/queues/:name',
    { schema: { summary: 'Get one queue', tags: ['queues'], params: nameParams, response: { 200: { $ref: 'Queue#' }, ...errors(400, 401, 404, 500, 503) } } },
    async (req) => {
      const q = await requireStore().getQueue(req.params.name);
      if (!q) throw new ApiError(404, `queue ${req.params.name} does not exist; list queues with GET /api/v1/queues`);
      return q;
    },
  );

  app.put<{ Params: { name: string }; Body: QueueInput }>(
    '/api/v1/queues/:name',
    {
      schema: {
        summary: 'Create or replace a queue and all its limits',
        description: 'The body replaces the whole definition: omitted fields take their defaults and omitted limits are removed.',
        tags: ['queues'],
        params: nameParams,
        body: queueInput,
        response: { 200: { $ref: 'Queue#' }, 201: { $ref: 'Queue#' }, ...errors(400, 401, 409, 500, 503) },
      },
    },
    async (req, reply) => {
      const store = requireStore();
      checkResources(req.body.limits ?? [], opts.gpuResources);
      const res = await store.putQueue(req.params.name, req.body);
      req.log.info({ queue: req.params.name, created: res.created, limits: res.queue.limits }, res.created ? 'queue created' : 'queue replaced');
      return reply.code(res.created ? 201 : 200).send(res.queue);
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/api/v1/queues/:name',
    {
      schema: {
        summary: 'Delete a queue',
        description: 'Refused (409) for the default queue and for queues that still have child queues.',
        tags: ['queues'],
        params: nameParams,
        response: { 204: { type: 'null' }, ...errors(400, 401, 404, 409, 500, 503) },
      },
    },
    async (req, reply) => {
      await requireStore().deleteQueue(req.params.name);
      req.log.info({ queue: req.params.name }, 'queue deleted');
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/queues/:name/usage',
    {
      schema: {
        summary: 'GPUs the queue holds now, by QoS and GPU model',
        description: 'From the cluster cache: bound, non-terminal pods labelled sluice.io/queue=<name>; sluice.io/qos best-effort vs guaranteed.',
        tags: ['queues'],
        params: nameParams,
        response: { 200: usageOut, ...errors(400, 401, 404, 500, 503) },
      },
    },
    async (req) => {
      const name = req.params.name;
      // No store: whether the queue exists is unknown, so answer like the other queue routes.
      if (!opts.store) throw new ApiError(503, STORE_DISABLED);
      // Through the cached directory: usage stays available from the cache when Postgres is down.
      const found = await opts.store.queues.lookup(name);
      if (found?.status === 'missing') throw new ApiError(404, `queue ${name} does not exist; list queues with GET /api/v1/queues`);
      const products = new Map(cache.inventory().map((n) => [n.name, n.product]));
      const usage = queueUsage(
        name,
        cache.allPods(),
        (node) => products.get(node) ?? '',
        (p) => cache.gpuEquivalents(p),
      );
      return { ...usage, limits: found.status === 'found' ? found.queue.limits : [] };
    },
  );

  jobRoutes(app, { manager: opts.queueManager ?? null, store: opts.store, cache }, errors);

  app.get('/api/v1/nodes', { schema: { summary: 'GPU inventory per node', tags: ['nodes'], response: { 200: nodesOut, ...errors(401) } } }, async () => ({
    items: cache
      .inventory()
      .sort((a, b) => a.name.localeCompare(b.name) || a.resource.localeCompare(b.resource))
      .map((n) => ({
        name: n.name,
        resource: n.resource,
        model: n.product,
        memoryMiB: n.memoryMiB,
        total: n.total,
        used: n.used,
        assumed: n.assumed,
        free: n.free,
        health: n.unusable ? 'unusable' : 'healthy',
        reason: n.unusable ?? '',
        ...(n.gpus
          ? {
              gpus: n.gpus.map((g) => ({
                index: g.index,
                uuid: g.uuid,
                type: g.type,
                memoryMiB: g.memMiB,
                usedMemoryMiB: g.usedMemMiB,
                cores: g.cores,
                usedCores: g.usedCores,
                slots: g.slots,
                usedSlots: g.usedSlots,
              })),
              excluded: n.excluded ?? [],
            }
          : {}),
      })),
  }));
}

function checkResources(limits: readonly QueueLimit[], managed: readonly string[]): void {
  for (const l of limits) {
    if (!managed.includes(l.resource)) {
      throw new ApiError(
        400,
        `limit resource ${l.resource} is not a GPU resource sluice manages (${managed.join(', ')}); use one of those or add it to gpuResources`,
      );
    }
  }
}

/** "body has the unknown field "weigth" (did you mean weight?); known fields: ..." for an
 * additionalProperties refusal; undefined for other errors. */
function unknownField(validation: unknown): string | undefined {
  const first = (Array.isArray(validation) ? validation[0] : undefined) as
    | { keyword?: string; instancePath?: string; params?: { additionalProperty?: string }; parentSchema?: { properties?: Record<string, unknown> } }
    | undefined;
  if (first?.keyword !== 'additionalProperties' || first.params?.additionalProperty === undefined) return undefined;
  const key = first.params.additionalProperty;
  const known = Object.keys(first.parentSchema?.properties ?? {});
  const where = ['body', ...(first.instancePath ?? '').split('/').filter(Boolean)].join('/');
  return `${where} has the unknown field "${key}"${didYouMean(key, known)}; known fields: ${known.join(', ')}; see ${OPENAPI_PATH} for the request schema`;
}

function body(statusCode: number, message: string): { statusCode: number; error: string; message: string } {
  const names: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    404: 'Not Found',
    409: 'Conflict',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
  };
  return { statusCode, error: names[statusCode] ?? 'Error', message };
}
