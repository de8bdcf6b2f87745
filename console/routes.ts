// The web console under /ui/ on the API listener, a fastify plugin: the browser code and
// styles from console/web (a fixed set of files, read once), JSON under /ui/api/ computed
// from the admin API's sources (and the admin API's own job routes, mounted again here),
// and server-sent events for live pages. Sign-in is the admin API's bearer token check,
// widened to any Kubernetes user for what every user may see (access.ts).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterCache } from '../cluster/cache.js';
import type { Logger } from '../observability/logger.js';
import type { QueueManager } from '../queue/manager.js';
import type { Store } from '../store/store.js';
import { kubeTokenReviewer, type ApiAuth } from '../api/auth.js';
import { jobRoutes, JobsApiError } from '../api/jobs.js';
import { errorSchema } from '../api/schemas.js';
import { isStoreUnavailable } from '../store/connection.js';
import { ConsoleAccess, kubeAccessReviewer, type Viewer } from './access.js';
import { readActivity, redactActivity } from './activity.js';
import { LiveFeed } from './live.js';
import { clusterView, queuesView } from './views.js';

export interface ConsoleOptions {
  cache: ClusterCache;
  store: Store | null;
  manager: QueueManager | null;
  /** The admin API's check: who is an admin. */
  auth: ApiAuth;
  /** With api.tokenReview: the cluster that authenticates other users and answers SubjectAccessReviews. */
  kubeConfig: KubeConfig | null;
  log: Logger;
  /** Overrides for tests and the benchmark; default: the apiserver's through kubeConfig. */
  access?: ConsoleAccess;
  tickMs?: number;
}

/** The files the browser loads: name -> content type. Nothing else under /ui/ is served. */
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

// Nothing from another origin, no inline script or style: the console works air-gapped
// and an injected string cannot run.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** console/web, beside this file in the source tree or two levels up from dist/console/. */
export function webDir(): string {
  const candidates = [new URL('./web/', import.meta.url), new URL('../../console/web/', import.meta.url)].map((u) => fileURLToPath(u));
  const found = candidates.find((d) => existsSync(`${d}index.html`));
  if (!found) throw new Error(`the web console's files are missing (looked in ${candidates.join(' and ')}); reinstall sluice or build from a full checkout`);
  return found;
}

const errors = (...codes: number[]): Record<number, { $ref: string }> => Object.fromEntries(codes.map((c) => [c, { $ref: 'ApiError#' }]));

const message = (statusCode: number, text: string): { statusCode: number; error: string; message: string } => ({
  statusCode,
  error:
    ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' } as Record<number, string>)[statusCode] ??
    'Error',
  message: text,
});

export async function consoleRoutes(app: FastifyInstance, opts: ConsoleOptions): Promise<void> {
  const dir = webDir();
  const files = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, body: readFileSync(`${dir}${name}`) }]));
  const access =
    opts.access ??
    new ConsoleAccess({
      auth: opts.auth,
      reviewer: opts.kubeConfig ? kubeTokenReviewer(opts.kubeConfig) : null,
      accessReviewer: opts.kubeConfig ? kubeAccessReviewer(opts.kubeConfig) : null,
      log: opts.log,
    });
  const live = new LiveFeed({ cache: opts.cache, manager: opts.manager, tickMs: opts.tickMs });
  // Open event streams are never idle: end them when sluice shuts down, or closing the
  // listener would wait for every open browser tab.
  const streams = new Set<{ end(): void }>();
  app.addHook('preClose', async () => {
    for (const s of streams) s.end();
    live.stop();
  });
  const viewers = new WeakMap<FastifyRequest, Viewer>();
  const viewerOf = (req: FastifyRequest): Viewer => viewers.get(req)!;

  app.addSchema(errorSchema);

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    return payload;
  });

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/ui/api/')) return;
    const who = await access.who(req.headers.authorization);
    if (!who.ok) return reply.code(401).header('www-authenticate', 'Bearer realm="sluice console"').send(message(401, who.reason));
    viewers.set(req, who.viewer);
    reply.header('cache-control', 'no-store');
    req.log = req.log.child({ consoleUser: who.viewer.user });
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    if (err instanceof JobsApiError) return reply.code(err.statusCode).send(message(err.statusCode, err.message));
    if (isStoreUnavailable(err))
      return reply.code(503).send(message(503, `the Postgres store is unreachable or failing (${err.message}); retry once it is back`));
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send(message(err.statusCode, err.message));
    opts.log.error({ err: err.message, stack: err.stack, url: req.url }, 'console request failed with an internal error');
    return reply.code(500).send(message(500, `internal error in sluice (${err.message}); this is a bug, please report it`));
  });

  // ---- the page and its files -------------------------------------------------------
  const sendFile = (reply: FastifyReply, name: string): FastifyReply => {
    const f = files.get(name)!;
    return reply.header('content-type', f.type).header('cache-control', 'no-cache').send(f.body);
  };
  app.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/', { schema: { hide: true } }, async (_req, reply) => sendFile(reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/ui/:file', { schema: { hide: true } }, async (req, reply) => {
    // A lookup in a fixed table, never a path join: "../x" or "%2e%2e" is simply not in it.
    if (!files.has(req.params.file) || req.params.file === 'index.html')
      return reply.code(404).send(message(404, `no console file ${req.params.file.slice(0, 100)}`));
    return sendFile(reply, req.params.file);
  });

  // ---- data ----------------------------------------------------------------------------
  const snapshot = () => {
    if (!opts.manager) throw new JobsApiError(503, 'the queue manager is off (queue.enabled: false); no queues or jobs to show');
    const s = opts.manager.current();
    if (!s) throw new JobsApiError(503, 'the queue manager has not evaluated yet (cluster cache or queue definitions not loaded); retry in a few seconds');
    return s;
  };

  app.get('/ui/api/whoami', { schema: { hide: true } }, async (req) => {
    const v = viewerOf(req);
    return { user: v.user, admin: v.kind === 'admin' };
  });

  // The map is the same for every viewer: computed and serialized once per cluster change
  // (nearly 1 MB at 5,000 nodes), not once per open page.
  let version = 0;
  opts.cache.onChange(() => void version++);
  let memo: { version: number; mix: unknown; body: string } | null = null;
  app.get('/ui/api/cluster', { schema: { hide: true } }, async (_req, reply) => {
    const mix = opts.cache.sizeMix();
    if (!memo || memo.version !== version || memo.mix !== mix) memo = { version, mix, body: JSON.stringify(clusterView(opts.cache)) };
    return reply.header('content-type', 'application/json; charset=utf-8').send(memo.body);
  });

  app.get('/ui/api/queues', { schema: { hide: true } }, async () => {
    const s = snapshot();
    return { evaluatedAt: new Date(s.evaluatedAtMs).toISOString(), queues: queuesView(opts.cache, s) };
  });

  app.get('/ui/api/activity', { schema: { hide: true } }, async (req) => {
    if (!opts.store) throw new JobsApiError(503, 'no store (store.url is empty): releases, preemptions and denials are recorded only in Postgres');
    const items = await readActivity(opts.store.pool, { hours: 24, limit: 300 });
    const v = viewerOf(req);
    if (v.kind === 'admin') return { items };
    const namespaces = new Set(items.flatMap((i) => [i.namespace, ...(i.victims ?? []).map((x) => x.namespace)]));
    return { items: redactActivity(items, await access.visible(v, namespaces)) };
  });

  // The admin API's job routes, mounted again under /ui: the same handlers and answers,
  // narrowed for non-admins to the namespaces they may list pods in.
  await app.register(
    async (sub) => {
      sub.addHook('preHandler', async (req) => {
        const ns = (req.params as { namespace?: string }).namespace;
        const v = viewerOf(req);
        if (ns === undefined || v.kind === 'admin') return;
        if (!(await access.visible(v, [ns])).has(ns)) {
          throw new JobsApiError(403, `user ${v.user} may not list pods in namespace ${ns}, so its jobs are not shown; ask for a RoleBinding that allows it`);
        }
      });
      sub.addHook('preSerialization', async (req, _reply, payload: unknown) => {
        const v = viewerOf(req);
        const p = payload as { waiting?: Array<{ namespace: string }>; running?: Array<{ namespace: string }> };
        if (v.kind === 'admin' || !Array.isArray(p?.waiting) || !Array.isArray(p.running)) return payload;
        const seen = await access.visible(
          v,
          [...p.waiting, ...p.running].map((j) => j.namespace),
        );
        const waiting = p.waiting.filter((j) => seen.has(j.namespace));
        const running = p.running.filter((j) => seen.has(j.namespace));
        return { ...p, waiting, running };
      });
      jobRoutes(sub, { manager: opts.manager, store: opts.store, cache: opts.cache }, errors);
    },
    { prefix: '/ui' },
  );

  app.get('/ui/api/events', { schema: { hide: true } }, async (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': CSP,
      connection: 'keep-alive',
    });
    // An open stream is not an idle connection: the listener's idle timeout must not end it.
    req.raw.socket.setTimeout(0);
    res.write('retry: 2000\n\n');
    const stop = live.add({ send: (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`) });
    const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    beat.unref();
    streams.add(res);
    res.on('close', () => {
      streams.delete(res);
      clearInterval(beat);
      stop();
    });
  });
}
