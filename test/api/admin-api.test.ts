import t from 'tap';
import { fastify, type FastifyInstance } from 'fastify';
import { ClusterCache } from '../../cluster/cache.js';
import { parseSnapshot } from '../../cluster/snapshot.js';
import { createLogger } from '../../observability/logger.js';
import { fixture as captured, kubeConfigFor } from '../helpers/k8s.js';
import { ApiAuth, kubeTokenReviewer, type TokenReviewer } from '../../api/auth.js';
import { adminApi } from '../../api/routes.js';
import pg from 'pg';
import { makeStore, PgRelay } from '../store/helpers.js';
import type { Store } from '../../store/store.js';

// Read once here: a missing fixture fails the file at once, not each test after its server started.
const CLUSTER = captured('cluster-state/before-preempt-1.json');
const fixture = (p: string): unknown => (p === 'cluster-state/before-preempt-1.json' ? structuredClone(CLUSTER) : captured(p));
const TOKEN = 's3cret-token';
const log = createLogger('silent');

function loadCache(): ClusterCache {
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 100 });
  const snap = parseSnapshot(fixture('cluster-state/before-preempt-1.json'));
  cache.replaceAll(snap.nodes, snap.pods);
  return cache;
}

async function start(
  store: Store | null,
  reviewer: TokenReviewer | null = null,
  authOpts: Partial<ConstructorParameters<typeof ApiAuth>[0]> = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const app = fastify();
  const auth = new ApiAuth({ token: TOKEN, reviewer, adminGroups: ['sluice:admins'], log, ...authOpts });
  await app.register(adminApi, { store, cache: loadCache(), auth, gpuResources: ['nvidia.com/gpu'], log });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url };
}

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test-side JSON
  headers: Headers;
}

async function call(
  url: string,
  method: string,
  path: string,
  opts: { token?: string | null; authorization?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

t.test('admin API against real Postgres and the captured cluster', async (t) => {
  const { store } = makeStore();
  await store.migrate();
  const { app, url } = await start(store);
  t.teardown(async () => {
    await app.close();
    await store.dropSchema();
    await store.close();
  });

  t.test('401 without or with a wrong token', async (t) => {
    for (const path of ['/api/v1/queues', '/api/v1/queues/default', '/api/v1/nodes', '/api/v1/queues/default/usage']) {
      const none = await call(url, 'GET', path, { token: null });
      t.equal(none.status, 401, `${path} anonymous`);
      t.match(none.body.message, /missing bearer token/);
      t.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      const wrong = await call(url, 'GET', path, { token: 's3cret-tokem' });
      t.equal(wrong.status, 401, `${path} wrong token`);
      t.match(wrong.body.message, /not valid/);
    }
    const del = await call(url, 'DELETE', '/api/v1/queues/default', { token: null });
    t.equal(del.status, 401, 'auth runs before anything else');
    const basic = await call(url, 'GET', '/api/v1/queues', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` });
    t.equal(basic.status, 401, 'Basic auth refused, even carrying the token');
    t.match(basic.body.message, /scheme "Basic" is not supported; send the header "Authorization: Bearer <token>"/);
    for (const empty of ['Bearer ', 'Bearer', 'Bearer    ']) {
      const res = await call(url, 'GET', '/api/v1/queues', { authorization: empty });
      t.equal(res.status, 401, `empty bearer ${JSON.stringify(empty)}`);
      t.match(res.body.message, /missing bearer token/);
    }
    const twoWords = await call(url, 'GET', '/api/v1/queues', { authorization: `Bearer ${TOKEN} extra` });
    t.equal(twoWords.status, 401, 'a token with a space in it');
    // RFC 7235 section 2.1: the auth-scheme is case-insensitive.
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      t.equal((await call(url, 'GET', '/api/v1/queues', { authorization: `${scheme} ${TOKEN}` })).status, 200, `scheme ${scheme} accepted`);
    }
  });

  t.test('queue lifecycle', async (t) => {
    const list = await call(url, 'GET', '/api/v1/queues');
    t.equal(list.status, 200);
    t.same(
      list.body.items.map((q: { name: string }) => q.name),
      ['default'],
    );

    const put = await call(url, 'PUT', '/api/v1/queues/team-a', {
      body: {
        cohort: 'lab',
        weight: 2,
        limits: [{ resource: 'nvidia.com/gpu', model: 'a100', guaranteed: 8, bestEffortCap: 16, perJobMax: 8, perUserMax: 0 }],
      },
    });
    t.equal(put.status, 201, 'created');
    t.match(put.body, { name: 'team-a', parent: null, cohort: 'lab', open: true, weight: 2 });
    t.same(put.body.limits, [{ resource: 'nvidia.com/gpu', model: 'a100', guaranteed: 8, bestEffortCap: 16, perJobMax: 8, perUserMax: 0 }]);

    const minimal = await call(url, 'PUT', '/api/v1/queues/team-a-sub', { body: { parent: 'team-a', limits: [{ resource: 'nvidia.com/gpu' }] } });
    t.equal(minimal.status, 201);
    t.same(
      minimal.body.limits,
      [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 0, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }],
      'defaults filled in',
    );

    const again = await call(url, 'PUT', '/api/v1/queues/team-a', { body: { open: false } });
    t.equal(again.status, 200, 'replaced');
    t.equal(again.body.open, false);
    t.same(again.body.limits, [], 'PUT replaces the limits too');

    const get = await call(url, 'GET', '/api/v1/queues/team-a');
    t.equal(get.status, 200);
    t.equal(get.body.name, 'team-a');
    t.ok(Date.parse(get.body.createdAt) > 0);

    t.equal((await call(url, 'DELETE', '/api/v1/queues/team-a')).status, 409, 'has a child');
    const delDefault = await call(url, 'DELETE', '/api/v1/queues/default');
    t.equal(delDefault.status, 409);
    t.match(delDefault.body.message, /cannot be deleted/);
    t.equal((await call(url, 'DELETE', '/api/v1/queues/team-a-sub')).status, 204);
    t.equal((await call(url, 'DELETE', '/api/v1/queues/team-a')).status, 204);
    t.equal((await call(url, 'GET', '/api/v1/queues/team-a')).status, 404);
    t.equal((await call(url, 'DELETE', '/api/v1/queues/team-a')).status, 404);
    const cycle1 = await call(url, 'PUT', '/api/v1/queues/a', { body: {} });
    t.equal(cycle1.status, 201);
    await call(url, 'PUT', '/api/v1/queues/b', { body: { parent: 'a' } });
    const cycle = await call(url, 'PUT', '/api/v1/queues/a', { body: { parent: 'b' } });
    t.equal(cycle.status, 409);
    t.match(cycle.body.message, /cycle/);
  });

  t.test('400 on bad input', async (t) => {
    const bad: Array<[string, string, unknown, RegExp]> = [
      ['PUT', '/api/v1/queues/Team_A', {}, /params\/name/],
      ['GET', '/api/v1/queues/-x', undefined, /params\/name/],
      ['PUT', '/api/v1/queues/q', { weight: 0 }, /weight/],
      ['PUT', '/api/v1/queues/q', { weight: 'heavy' }, /weight/],
      ['PUT', '/api/v1/queues/q', { guarnteed: 3 }, /unknown field "guarnteed"/],
      ['PUT', '/api/v1/queues/q', { limits: [{ resource: 'nvidia.com/gpu', guaranteed: -1 }] }, /guaranteed/],
      ['PUT', '/api/v1/queues/q', { limits: [{ resource: 'nvidia.com/gpu', guaranteed: 1.5 }] }, /integer/],
      ['PUT', '/api/v1/queues/q', { limits: [{ model: 'a100' }] }, /resource/],
      ['PUT', '/api/v1/queues/q', { limits: [{ resource: 'amd.com/gpu' }] }, /not a GPU resource sluice manages/],
      ['PUT', '/api/v1/queues/q', { parent: 'nope' }, /parent queue nope does not exist/],
      ['PUT', '/api/v1/queues/q', { limits: [{ resource: 'nvidia.com/gpu' }, { resource: 'nvidia.com/gpu' }] }, /twice/],
      ['PUT', '/api/v1/queues/q', [1, 2], /object/],
    ];
    for (const [method, path, body, msg] of bad) {
      const res = await call(url, method, path, { body });
      t.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)}`);
      t.match(res.body.message, msg);
    }
    const notJson = await fetch(url + '/api/v1/queues/q', {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{"weight": ',
    });
    t.equal(notJson.status, 400, 'malformed JSON');
    t.equal((await call(url, 'GET', '/api/v1/queues/q')).status, 404, 'nothing was written');
  });

  t.test('nodes: GPU inventory from the cache', async (t) => {
    const res = await call(url, 'GET', '/api/v1/nodes');
    t.equal(res.status, 200);
    t.same(
      res.body.items.map((n: { name: string; total: number; used: number; free: number; health: string }) => [n.name, n.total, n.used, n.free, n.health]),
      [
        ['gpu-node-1', 8, 8, 0, 'healthy'],
        ['gpu-node-2', 8, 8, 0, 'healthy'],
      ],
    );
    t.match(res.body.items[0], { resource: 'nvidia.com/gpu', model: /A100/, reason: '' });
  });

  t.test('usage: GPUs of bound pods labelled with the queue', async (t) => {
    const limit = { resource: 'nvidia.com/gpu', model: '', guaranteed: 4, bestEffortCap: 16, perJobMax: 8, perUserMax: 0 };
    t.equal((await call(url, 'PUT', '/api/v1/queues/team-a', { body: { limits: [limit] } })).status, 201);
    const expected = expectedUsage('team-a');
    t.same(expected, { guaranteed: 0, bestEffort: 16, pods: 6 }, 'fixture: six best-effort pods of team-a hold all 16 GPUs');
    const res = await call(url, 'GET', '/api/v1/queues/team-a/usage');
    t.equal(res.status, 200);
    t.equal(res.body.queue, 'team-a');
    t.same(res.body.totals, [{ resource: 'nvidia.com/gpu', guaranteed: expected.guaranteed, bestEffort: expected.bestEffort }]);
    t.equal(res.body.pods, expected.pods);
    t.equal(res.body.byModel.length, 1);
    t.match(res.body.byModel[0], { model: /A100/, bestEffort: 16 });
    t.same(res.body.limits, [limit], 'the quota to compare with');
    const def = await call(url, 'GET', '/api/v1/queues/default/usage');
    t.equal(def.status, 200);
    t.same([def.body.pods, def.body.totals], [0, []], 'nothing runs in default');
    t.equal((await call(url, 'GET', '/api/v1/queues/ghost/usage')).status, 404);
  });

  t.test('OpenAPI spec from the route schemas, no auth needed', async (t) => {
    const res = await call(url, 'GET', '/api/v1/openapi.json', { token: null });
    t.equal(res.status, 200);
    t.equal(res.body.openapi, '3.1.0');
    t.same(Object.keys(res.body.paths).sort(), [
      '/api/v1/jobs/{namespace}/{name}',
      '/api/v1/nodes',
      '/api/v1/queues',
      '/api/v1/queues/{name}',
      '/api/v1/queues/{name}/jobs',
      '/api/v1/queues/{name}/usage',
    ]);
    t.ok(res.body.paths['/api/v1/queues/{name}'].put.requestBody, 'PUT body documented');
    t.ok(res.body.components.securitySchemes.bearer);
    t.same(Object.keys(res.body.components.schemas).sort(), ['ApiError', 'Queue'], 'shared schemas named by their $id');
    t.same(res.body.paths['/api/v1/queues/{name}'].put.requestBody.content['application/json'].schema.properties.limits.items.required, ['resource']);
  });
});

t.test('store disabled or Postgres down: queue routes 503, nodes still served', async (t) => {
  const { app, url } = await start(null);
  t.teardown(() => app.close());
  const res = await call(url, 'GET', '/api/v1/queues');
  t.equal(res.status, 503);
  t.match(res.body.message, /store is disabled/);
  t.equal((await call(url, 'GET', '/api/v1/nodes')).status, 200);
  for (const name of ['default', 'no-such-queue']) {
    const u = await call(url, 'GET', `/api/v1/queues/${name}/usage`);
    t.equal(u.status, 503, `usage of ${name} with the store disabled: whether the queue exists is unknown`);
    t.match(u.body.message, /store is disabled/);
  }

  const { store } = makeStore({ url: 'postgres://postgres@127.0.0.1:1/test', timeoutMs: 500 });
  const down = await start(store);
  t.teardown(async () => {
    await down.app.close();
    await store.close();
  });
  const r2 = await call(down.url, 'PUT', '/api/v1/queues/x', { body: {} });
  t.equal(r2.status, 503);
  t.match(r2.body.message, /not been migrated yet/);
  const usage = await call(down.url, 'GET', '/api/v1/queues/default/usage');
  t.equal(usage.status, 200, 'usage comes from the cluster cache even without Postgres');
});

t.test('a failing route answers 503 only when Postgres is unreachable or failing, else 500', async (t) => {
  const failingWith = (err: Error): Store => ({ notReady: () => null, listQueues: () => Promise.reject(err) }) as unknown as Store;
  const pgError = (message: string, code: string): Error => Object.assign(new pg.DatabaseError(message, 0, 'error'), { code });
  const cases: Array<[string, Error, number]> = [
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'rows')"), 500],
    ['a syntax error in our SQL', pgError('syntax error at or near "SELEC"', '42601'), 500],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 503],
    ['connection lost', new Error('Connection terminated unexpectedly'), 503],
    ['pool query timeout', new Error('Query read timeout'), 503],
    ['backend terminated', pgError('terminating connection due to administrator command', '57P01'), 503],
    ['too many connections', pgError('sorry, too many clients already', '53300'), 503],
  ];
  for (const [what, err, status] of cases) {
    const { app, url } = await start(failingWith(err));
    const res = await call(url, 'GET', '/api/v1/queues');
    await app.close();
    t.equal(res.status, status, `${what}: ${status}`);
    t.equal(res.body.statusCode, status);
    if (status === 503) t.match(res.body.message, /Postgres store is unreachable or failing/, `${what}: says Postgres`);
    else t.notMatch(res.body.message, /Postgres/, `${what}: does not blame Postgres`);
  }

  // And for real: a migrated store whose Postgres goes away.
  const relay = new PgRelay();
  await relay.start();
  const { store } = makeStore({ url: relay.url(), timeoutMs: 500 });
  await store.migrate();
  const { app, url } = await start(store);
  t.teardown(async () => {
    await app.close();
    await relay.start();
    await store.dropSchema();
    await store.close();
    await relay.stop();
  });
  t.equal((await call(url, 'GET', '/api/v1/queues')).status, 200);
  await relay.stop();
  const down = await call(url, 'GET', '/api/v1/queues');
  t.equal(down.status, 503, 'Postgres gone: 503');
  t.match(down.body.message, /unreachable or failing/);
});

t.test('TokenReview through the Kubernetes client: admin group allowed, others refused', async (t) => {
  // A stand-in kube-apiserver on 127.0.0.1 that answers TokenReviews the way the real one
  // does (authentication.k8s.io/v1), so the real client code path is exercised.
  const apiserver = fastify();
  const reviewed: string[] = [];
  apiserver.post('/apis/authentication.k8s.io/v1/tokenreviews', async (req) => {
    const review = req.body as { spec: { token: string } };
    reviewed.push(review.spec.token);
    const users: Record<string, { username: string; groups: string[] }> = {
      'kube-admin': { username: 'alice', groups: ['system:authenticated', 'sluice:admins'] },
      'kube-user': { username: 'bob', groups: ['system:authenticated'] },
    };
    const user = users[review.spec.token];
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: review.spec,
      status: user ? { authenticated: true, user } : { authenticated: false, error: 'invalid bearer token' },
    };
  });
  const apiUrl = await apiserver.listen({ host: '127.0.0.1', port: 0 });
  const kc = kubeConfigFor(apiUrl, 'sluice-sa-token');
  const { app, url } = await start(null, kubeTokenReviewer(kc));
  t.teardown(async () => {
    await app.close();
    await apiserver.close();
  });
  t.equal((await call(url, 'GET', '/api/v1/nodes', { token: 'kube-admin' })).status, 200);
  t.equal((await call(url, 'GET', '/api/v1/nodes', { token: 'kube-admin' })).status, 200);
  t.equal(reviewed.filter((x) => x === 'kube-admin').length, 1, 'the answer is cached');
  const bob = await call(url, 'GET', '/api/v1/nodes', { token: 'kube-user' });
  t.equal(bob.status, 403, 'a valid token of a user who is no admin is forbidden, not unauthenticated');
  t.match(bob.body.message, /bob is not in an admin group/);
  const junk = await call(url, 'GET', '/api/v1/nodes', { token: 'junk' });
  t.equal(junk.status, 401);
  t.match(junk.body.message, /neither api.token nor a Kubernetes token/);
  t.equal((await call(url, 'GET', '/api/v1/nodes')).status, 200, 'static token still works');
  t.notOk(reviewed.includes(TOKEN), 'the static token never goes to the apiserver');

  await apiserver.close();
  const down = await call(url, 'GET', '/api/v1/nodes', { token: 'other-token' });
  t.equal(down.status, 401);
  t.match(down.body.message, /cannot check the token with the apiserver/);
});

t.test('TokenReview: a hung apiserver times out; identical tokens arriving together share one review', async (t) => {
  const apiserver = fastify({ forceCloseConnections: true });
  const reviewed: string[] = [];
  apiserver.post('/apis/authentication.k8s.io/v1/tokenreviews', async (req) => {
    const review = req.body as { spec: { token: string } };
    reviewed.push(review.spec.token);
    if (review.spec.token === 'kube-hang') return new Promise(() => undefined); // never answers
    await new Promise((r) => setTimeout(r, 200));
    const user = { username: 'alice', groups: ['sluice:admins'] };
    return { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: review.spec, status: { authenticated: true, user } };
  });
  const apiUrl = await apiserver.listen({ host: '127.0.0.1', port: 0 });
  const kc = kubeConfigFor(apiUrl, 'sluice-sa-token');
  const { app, url } = await start(null, kubeTokenReviewer(kc), { reviewTimeoutMs: 300 });
  t.teardown(async () => {
    await app.close();
    await apiserver.close();
  });

  const started = Date.now();
  const hung = await call(url, 'GET', '/api/v1/nodes', { token: 'kube-hang', timeoutMs: 3000 });
  t.equal(hung.status, 401, 'refused, not hung');
  t.match(hung.body.message, /cannot check the token with the apiserver \(no answer within 300 ms\)/);
  t.ok(Date.now() - started < 2000, `answered after ${Date.now() - started} ms`);
  t.equal((await call(url, 'GET', '/api/v1/nodes')).status, 200, 'the static token is unaffected');

  const together = await Promise.all(Array.from({ length: 5 }, () => call(url, 'GET', '/api/v1/nodes', { token: 'kube-slow', timeoutMs: 3000 })));
  t.same(
    together.map((r) => r.status),
    [200, 200, 200, 200, 200],
  );
  t.equal(reviewed.filter((x) => x === 'kube-slow').length, 1, 'five requests at once, one TokenReview');

  // A timed-out review is not remembered: the next request asks again.
  await call(url, 'GET', '/api/v1/nodes', { token: 'kube-hang', timeoutMs: 3000 });
  t.equal(reviewed.filter((x) => x === 'kube-hang').length, 2);
});

/** Independent count from the raw fixture: GPU limits of bound, non-terminal pods in the queue. */
function expectedUsage(queue: string): { guaranteed: number; bestEffort: number; pods: number } {
  const doc = fixture('cluster-state/before-preempt-1.json') as { items: any[] }; // eslint-disable-line @typescript-eslint/no-explicit-any
  let guaranteed = 0;
  let bestEffort = 0;
  let pods = 0;
  for (const it of doc.items) {
    if (it.kind !== 'Pod' || it.metadata?.labels?.['sluice.io/queue'] !== queue || !it.spec?.nodeName) continue;
    if (['Succeeded', 'Failed'].includes(it.status?.phase)) continue;
    pods++;
    let n = 0;
    for (const c of it.spec.containers) n += Number(c.resources?.limits?.['nvidia.com/gpu'] ?? c.resources?.requests?.['nvidia.com/gpu'] ?? 0);
    if (it.metadata.labels['sluice.io/qos'] === 'best-effort') bestEffort += n;
    else guaranteed += n;
  }
  return { guaranteed, bestEffort, pods };
}
