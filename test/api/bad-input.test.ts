// Admin API input that was a 500 or a misleading refusal (issue 12, defect 6), on the real
// API listener (`sluice serve`) with a real Store: every case is a 400 that names the key
// or the rule, and nothing is stored.
import t from 'tap';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import pg from 'pg';
import { DATABASE_URL, randomSchema } from '../store/helpers.js';

const TOKEN = 'hardening-token';
const schema = randomSchema();
const config = loadConfig({
  env: {},
  base: {
    clusterSnapshot: new URL('../../examples/cluster-snapshot.json', import.meta.url).pathname,
    https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
    http: { host: '127.0.0.1', port: 0 },
    store: { url: DATABASE_URL, schema },
    api: { token: TOKEN, tokenReview: false },
  },
});
const running = await serve(config, { log: createLogger('silent') });
t.teardown(async () => {
  await running.close();
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});
for (let i = 0; i < 200; i++) {
  const r = await fetch(running.apiUrl + '/api/v1/queues', { headers: { authorization: `Bearer ${TOKEN}` } });
  if (r.status === 200) break;
  await new Promise((res) => setTimeout(res, 25));
}

const call = async (method: string, path: string, body?: string): Promise<{ status: number; body: { message?: string } }> => {
  const r = await fetch(running.apiUrl + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body,
  });
  return { status: r.status, body: (await r.json()) as { message?: string } };
};

t.test('400s that say what is wrong', async (t) => {
  const cases: Array<[string, string, string, string | undefined, RegExp]> = [
    [
      'U+0000 in cohort',
      'PUT',
      '/api/v1/queues/q1',
      JSON.stringify({ cohort: 'a\u0000b' }),
      /body\/cohort contains the character U\+0000, which sluice cannot store/,
    ],
    [
      'U+0000 in a model',
      'PUT',
      '/api/v1/queues/q1',
      JSON.stringify({ limits: [{ resource: 'nvidia.com/gpu', model: 'a100\u0000' }] }),
      /body\/limits\/0\/model contains the character U\+0000/,
    ],
    ['__proto__ key', 'PUT', '/api/v1/queues/q1', '{"__proto__": {"open": false}}', /body has the key "__proto__", which is not allowed/],
    ['not JSON', 'PUT', '/api/v1/queues/q1', '{"open": tru', /the body is not valid JSON \(/],
    ['a 150-character name', 'GET', `/api/v1/queues/${'a'.repeat(150)}`, undefined, /must NOT have more than 63 characters: a queue name is a DNS label/],
    ['a 300-character name', 'PUT', `/api/v1/queues/${'a'.repeat(300)}`, '{}', /a queue name is a DNS label/],
    ['an upper-case name', 'DELETE', '/api/v1/queues/Team-A', undefined, /must match pattern .*a queue name is a DNS label/],
    // Issue 22, defect 7: these were 500s (stack overflow in the body check; Postgres refusing the NUL).
    ['a 10,000-deep body', 'PUT', '/api/v1/queues/q1', '{"x":'.repeat(10000) + '1' + '}'.repeat(10000), /must NOT have additional properties|x/],
    [
      'a 10,000-deep U+0000',
      'PUT',
      '/api/v1/queues/q1',
      '{"x":'.repeat(10000) + '"a\\u0000"' + '}'.repeat(10000),
      /body(\/x){10000} contains the character U\+0000/,
    ],
    ['U+0000 in a job name', 'GET', '/api/v1/jobs/ns/x%00y', undefined, /contains the character U\+0000 \(%00\)/],
  ];
  for (const [what, method, path, body, message] of cases) {
    const r = await call(method, path, body);
    t.equal(r.status, 400, `${what}: 400`);
    t.match(r.body.message, message, `${what}: says why`);
  }
  const list = await call('GET', '/api/v1/queues');
  t.equal(list.status, 200);
  t.same(
    (list.body as { items?: unknown[] }).items?.map((q: any) => q.name).filter((n: string) => n === 'q1'),
    [],
    'nothing stored',
  );
});

t.test('a 10,000-deep body on /webhooks/mutate is a 400, not a stack overflow', async (t) => {
  const deep = '{"x":'.repeat(10000) + '1' + '}'.repeat(10000);
  const r = await fetch(running.apiUrl + '/webhooks/mutate', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":${deep}}`,
  });
  t.equal(r.status, 400);
  t.match(((await r.json()) as { error: string }).error, /AdmissionReview/);
});
