// Every route of the API listener under malformed and random input (issue 12): extender
// filter/prioritize/bind, the webhooks, the admin API. 10,000 generated requests per run:
// never a 5xx, never a crash, every answer in its route's form, and the state afterwards
// exactly as before (nodes, GPU usage and the assume ledger, queues). Seeded PRNG
// (SLUICE_FUZZ_SEED to replay a failure); test/webhooks/fuzz.test.ts goes deeper into
// AdmissionReview shapes.
import t from 'tap';
import { gpuPod } from '../helpers/k8s.js';
import { fixture } from '../helpers/k8s.js';
import { fixtureNames, loadReview, QUEUE_TEAM_A, startSluice } from '../webhooks/helpers.js';
import { seededRandom } from '../../bench/simulate/engine.js';

const TOKEN = 'fuzz-token';
const sluice = await startSluice({ api: { token: TOKEN, tokenReview: false } });
t.teardown(() => sluice.close());
await sluice.store.putQueue('team-a', QUEUE_TEAM_A);
await sluice.store.putQueue('team-b', { parent: 'team-a', cohort: 'research', limits: [] });
// Running pods hold GPUs; no pod is pending, so no well-formed bind may change anything.
sluice.cache.upsertPod(gpuPod('running-1', { node: 'gpu-node-1', gpus: 4, uid: 'u-running-1', labels: { 'sluice.io/queue': 'team-a' } }));
sluice.cache.upsertPod(gpuPod('running-2', { node: 'gpu-node-3', gpus: 2, uid: 'u-running-2' }));

const seed = Number(process.env.SLUICE_FUZZ_SEED ?? 20261129);
const rnd = seededRandom(seed); // mulberry32, the simulator's
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const STRINGS = [
  '',
  'a',
  'gpu-node-1',
  'gpu-node-3',
  'team-a',
  'u-running-1',
  '8',
  '-1',
  '1.5',
  '500m',
  'NaN',
  'nvidia.com/gpu',
  'a\u0000b',
  '💥',
  'x'.repeat(300),
  '__proto__',
  'constructor',
  '../x',
  '%2e%2e',
];
function randomValue(depth = 0): unknown {
  const k = rnd();
  if (depth > 3 || k < 0.3) return pick<unknown>([null, true, false, 0, -1, 2.5, 1e308, 2 ** 40, ...STRINGS]);
  if (k < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rnd() * 4); i > 0; i--)
    o[
      pick([
        'metadata',
        'spec',
        'status',
        'containers',
        'initContainers',
        'resources',
        'limits',
        'requests',
        'name',
        'items',
        'conditions',
        'annotations',
        'labels',
        ...STRINGS,
      ])
    ] = randomValue(depth + 1);
  return o;
}

/** Replaces or deletes 1-4 spots anywhere inside `root`. */
function breakIn(root: Record<string, any>): void {
  const all: Array<Array<string | number>> = [];
  const walk = (v: unknown, prefix: Array<string | number>): void => {
    if (typeof v !== 'object' || v === null || all.length > 3000) return;
    for (const [k, child] of Object.entries(v)) {
      const p = [...prefix, Array.isArray(v) ? Number(k) : k];
      all.push(p);
      walk(child, p);
    }
  };
  walk(root, []);
  for (let n = 1 + Math.floor(rnd() * 4); n > 0 && all.length > 0; n--) {
    const p = pick(all);
    let parent: any = root;
    for (const k of p.slice(0, -1)) parent = parent?.[k];
    if (typeof parent !== 'object' || parent === null) continue;
    if (rnd() < 0.3) delete parent[p[p.length - 1]!];
    else parent[p[p.length - 1]!] = randomValue();
  }
}

const deep = (n: number): string => '{"x":'.repeat(n) + '1' + '}'.repeat(n);
const truncated = (text: string): string => text.slice(0, Math.floor(rnd() * text.length));
type Req = { method: string; url: string; body?: string; token?: boolean };

const EXTENDER_FIXTURES = [
  'filter-1.json',
  'filter-2.json',
  'filter-3.json',
  'filter-full-nodes-1.json',
  'filter-full-nodes-2.json',
  'prioritize-1.json',
  'prioritize-2.json',
  'prioritize-full-nodes-1.json',
];
function extenderRequest(): Req {
  const url = pick(['/scheduler/filter', '/scheduler/prioritize']);
  const args = fixture<Record<string, any>>(`scheduler-extender/${pick(EXTENDER_FIXTURES)}`);
  const k = rnd();
  if (k < 0.6) breakIn(args);
  else if (k < 0.7) {
    // Nested deep inside the last object's metadata: a Node (echoed back by filter) when the fixture sends Nodes.
    const text = JSON.stringify(args);
    const at = text.lastIndexOf('"metadata":{') + '"metadata":{'.length;
    return { method: 'POST', url, body: `${text.slice(0, at)}"deep":${deep(pick([50, 5000, 12000]))},${text.slice(at)}` };
  } else if (k < 0.8) return { method: 'POST', url, body: JSON.stringify(randomValue()) };
  else if (k < 0.9) return { method: 'POST', url, body: truncated(JSON.stringify(args)) };
  return { method: 'POST', url, body: JSON.stringify(args) };
}

function bindRequest(): Req {
  const b: Record<string, unknown> = {
    PodName: pick(['running-1', 'running-2', 'ghost', ...STRINGS]),
    PodNamespace: pick(['team-a', ...STRINGS]),
    PodUID: pick(['u-running-1', 'u-running-2', 'u-ghost', ...STRINGS]),
    Node: pick(['gpu-node-1', 'gpu-node-2', 'gpu-node-3', 'cpu-node-1', ...STRINGS]),
  };
  if (rnd() < 0.3) b[pick(Object.keys(b))] = randomValue();
  if (rnd() < 0.1) return { method: 'POST', url: '/scheduler/bind', body: truncated(JSON.stringify(b)) };
  return { method: 'POST', url: '/scheduler/bind', body: JSON.stringify(rnd() < 0.1 ? randomValue() : b) };
}

function webhookRequest(): Req {
  const url = pick(['/webhooks/mutate', '/webhooks/validate']);
  const review = loadReview(pick(fixtureNames())) as unknown as Record<string, any>;
  if (rnd() < 0.8) breakIn(review.request);
  return { method: 'POST', url, body: rnd() < 0.1 ? truncated(JSON.stringify(review)) : JSON.stringify(review) };
}

const NAMES = ['team-a', 'team-b', 'nope', 'a'.repeat(64), 'b'.repeat(150), 'Team-A', 'a_b', '-a', '%00', 'a%2Fb', '..', '💥', 'constructor', '__proto__'];
// Values each field must refuse.
const INVALID_QUEUE_FIELDS: Record<string, unknown[]> = {
  parent: [5, 'Team-A', '-a', 'x'.repeat(70), [], {}],
  cohort: [5, [], {}, true, 'a\u0000b', 'x'.repeat(300)],
  open: [5, 'x', null, [], {}],
  weight: [-1, 0, 'x', null, 2e6],
  limits: ['x', 5, {}, [null], [5]],
};
const INVALID_LIMIT_FIELDS: Record<string, unknown[]> = {
  resource: [null, 5, '', 'A B', 'amd.com/gpu'],
  model: [5, null, 'a\u0000', 'y'.repeat(300)],
  guaranteed: [-1, 1.5, 'x', 2 ** 40, null],
  bestEffortCap: [-1, 1.5, 'x', 2 ** 40, null],
  perJobMax: [-1, 1.5, 'x', 2 ** 40, null],
};

/** A queue body broken by construction: no 2xx is ever right for it. */
function brokenQueue(): string {
  const q: Record<string, any> = {
    parent: null,
    cohort: 'c',
    open: true,
    weight: 1,
    limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 1, bestEffortCap: 2, perJobMax: 1 }],
  };
  const k = rnd();
  if (k < 0.2) q[pick(['guarnteed', 'extra', 'name'])] = randomValue();
  else if (k < 0.4) {
    const field = pick(Object.keys(INVALID_QUEUE_FIELDS));
    q[field] = pick(INVALID_QUEUE_FIELDS[field]!);
  } else if (k < 0.6) {
    const field = pick(Object.keys(INVALID_LIMIT_FIELDS));
    q.limits[0][field] = pick(INVALID_LIMIT_FIELDS[field]!);
  } else if (k < 0.7) q.limits[0].bogus = 1;
  else if (k < 0.8) return truncated(JSON.stringify(q)).slice(0, -1) || '{';
  else if (k < 0.9) return JSON.stringify(q).replace('{', '{"__proto__":{"open":false},');
  else q.parent = pick(['Team-A', '-a', 'x'.repeat(70)]);
  return JSON.stringify(q);
}

function adminRequest(): Req {
  const name = encodeURIComponent(pick(NAMES));
  const k = rnd();
  if (k < 0.25)
    return { method: 'GET', url: pick(['/api/v1/queues', '/api/v1/nodes', `/api/v1/queues/${name}`, `/api/v1/queues/${name}/usage`]), token: rnd() < 0.9 };
  if (k < 0.75) return { method: 'PUT', url: `/api/v1/queues/${pick(['team-a', 'team-b', 'fresh', name])}`, body: brokenQueue(), token: rnd() < 0.9 };
  // DELETE only where it must be refused: a missing queue, a bad name, or without a token.
  const target = pick(['nope', 'Team-A', 'b'.repeat(150), 'team-a']);
  return { method: 'DELETE', url: `/api/v1/queues/${encodeURIComponent(target)}`, token: target !== 'team-a' && rnd() < 0.9 };
}

async function send(r: Req, overHttp: boolean): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (r.body !== undefined) headers['content-type'] = 'application/json';
  if (r.url.startsWith('/api/') && r.token !== false) headers.authorization = `Bearer ${TOKEN}`;
  if (overHttp && r.method === 'POST') return sluice.post(r.url, r.body ?? '');
  const res = await sluice.servers.api.inject({ method: r.method as 'GET', url: r.url, headers, payload: r.body });
  let body: unknown = res.body;
  try {
    body = res.json();
  } catch {
    /* not JSON: checked below */
  }
  return { status: res.statusCode, body };
}

/** The answer has its route's form. */
function wellFormed(r: Req, status: number, body: any): boolean {
  if (status >= 500) return false;
  if (status >= 400) return typeof (body?.message ?? body?.error) === 'string' && (body.message ?? body.error).length > 0;
  if (r.url === '/scheduler/filter') return typeof body?.Error === 'string' && typeof body.FailedNodes === 'object';
  if (r.url === '/scheduler/prioritize')
    return Array.isArray(body) && body.every((h: any) => typeof h.Host === 'string' && Number.isInteger(h.Score) && h.Score >= 0 && h.Score <= 10);
  if (r.url === '/scheduler/bind') return typeof body?.Error === 'string' && body.Error !== '';
  if (r.url.startsWith('/webhooks/')) return typeof body?.response?.allowed === 'boolean';
  if (r.method === 'PUT' || r.method === 'DELETE') return false; // every write here is invalid
  return typeof body === 'object' && body !== null;
}

async function state(): Promise<string> {
  const queues = await sluice.servers.api.inject({ method: 'GET', url: '/api/v1/queues', headers: { authorization: `Bearer ${TOKEN}` } });
  const strip = (q: any) => ({ ...q, createdAt: undefined, updatedAt: undefined });
  return JSON.stringify({
    inventory: sluice.cache.inventory(),
    pods: sluice.cache.podCount,
    assumed: sluice.cache.assumedCount,
    queues: (queues.json() as { items: unknown[] }).items.map(strip),
  });
}

t.test(`10,000 generated requests on every route (seed ${seed})`, async (t) => {
  const before = await state();
  const plan: Array<[string, number, () => Req]> = [
    ['extender filter/prioritize', 3500, extenderRequest],
    ['extender bind', 1500, bindRequest],
    ['webhooks', 2500, webhookRequest],
    ['admin API', 2500, adminRequest],
  ];
  let total = 0;
  for (const [what, n, make] of plan) {
    let bad = 0;
    const statuses = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const r = make();
      const { status, body } = await send(r, i % 25 === 0);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (!wellFormed(r, status, body)) {
        bad++;
        if (bad <= 3)
          t.fail(
            `${what} #${i}: ${r.method} ${r.url.slice(0, 80)} got HTTP ${status}: ${JSON.stringify(body).slice(0, 300)}; sent ${(r.body ?? '').slice(0, 300)}`,
          );
      }
    }
    total += n;
    t.equal(bad, 0, `${what}: ${n} answers well-formed, none 5xx (${JSON.stringify(Object.fromEntries(statuses))})`);
  }
  t.ok(total >= 10000, `${total} requests`);
  t.equal(await state(), before, 'nodes, GPU usage, the assume ledger and the queues are as before');
  const health = await sluice.post('/webhooks/mutate', loadReview('gpu-pod.json'));
  t.equal(health.body.response.patchType, 'JSONPatch', 'still serving afterwards');
});
