// The CLI (sluice get / describe / apply, also kubectl sluice) against a real sluice server
// (snapshot cluster, real Postgres store, static API token) for the routes that exist. The
// job routes (GET /api/v1/queues/:name/jobs, /api/v1/jobs/:namespace/:name) are also
// rendered from recorded JSON in their shape, to show tables with waiting jobs that a
// snapshot cluster does not have (test/queue-live covers the routes themselves).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { runCli } from './run-cli.js';
import type { JobDetail, QueueJobs } from '../../cli/commands.js';
import { parseSnapshot } from '../../cluster/snapshot.js';
import { fixture } from '../helpers/k8s.js';
import { startServer } from '../helpers/server.js';
import { DATABASE_URL, randomSchema, waitFor } from '../store/helpers.js';

const TOKEN = 'cli-test-token';
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));

const run = runCli;

const snapshot = parseSnapshot(fixture('cluster-state/before-preempt-1.json'));
const schema = randomSchema();
const server = await startServer(snapshot, { store: { url: DATABASE_URL, schema }, api: { token: TOKEN, tokenReview: false }, logLevel: 'warn' });
const flags = ['--server', server.api, '--token', TOKEN];
t.teardown(async () => {
  await server.close();
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
});
t.ok(
  (await waitFor(async () => (await fetch(`${server.api}/api/v1/queues`, { headers: { authorization: `Bearer ${TOKEN}` } })).status === 200, 20000)) >= 0,
  'the store is ready',
);

t.test('apply creates, then replaces, the queues of a file', async (t) => {
  const file = join(dir, 'queues.yaml');
  writeFileSync(
    file,
    'queues:\n  - name: team-a\n    cohort: research\n    weight: 2\n    limits:\n      - { resource: nvidia.com/gpu, guaranteed: 8, bestEffortCap: 16 }\n  - name: team-b\n',
  );
  t.equal(await run(['apply', '-f', file, ...flags]), 'queue/team-a created\nqueue/team-b created\n');
  t.equal(await run(['apply', '-f', file, ...flags]), 'queue/team-a configured\nqueue/team-b configured\n');
  writeFileSync(file, 'queues:\n  - name: team-c\n    limits: [{ resource: amd.com/gpu }]\n');
  await t.rejects(
    run(['apply', '-f', file, ...flags]),
    { message: /team-c: 400 .*amd\.com\/gpu is not a GPU resource sluice manages/ },
    "the API's refusal, in one line",
  );
});

t.test('get queues: kubectl-style table from the real API', async (t) => {
  const text = await run(['get', 'queues', ...flags]);
  const lines = text.trimEnd().split('\n');
  t.match(lines[0], /^NAME\s+COHORT\s+WEIGHT\s+GPU USED\/GUARANTEED\s+BE USED\/CAP\s+WAITING$/);
  const [, ...rows] = lines.map((l) => l.split(/\s{3,}/));
  const usage = (await (await fetch(`${server.api}/api/v1/queues/team-a/usage`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
    totals: Array<{ guaranteed: number; bestEffort: number }>;
  };
  const used = (k: 'guaranteed' | 'bestEffort'): number => usage.totals.reduce((s, x) => s + x[k], 0);
  t.ok(used('bestEffort') > 0, 'the snapshot has best-effort pods of team-a');
  const a = rows.find((r) => r[0] === 'team-a');
  t.same(
    a,
    ['team-a', 'research', '2', `${used('guaranteed')}/8`, `${used('bestEffort')}/16`, '0'],
    'quota from the store, usage from the cache, WAITING from the queue manager',
  );
  t.ok(
    rows.some((r) => r[0] === 'default'),
    'the default queue',
  );
  const wide = await run(['get', 'queues', '-o', 'wide', ...flags]);
  t.match(wide.split('\n')[0], /PARENT\s+OPEN\s+PODS\s+RESOURCES$/);
  const json = JSON.parse(await run(['get', 'queues', '-o', 'json', ...flags])) as { items: Array<{ name: string; limits: unknown[] }> };
  t.equal(json.items.find((q) => q.name === 'team-a')?.limits.length, 1);
  t.match(await run(['get', 'queues', '-o', 'yaml', ...flags]), /- name: team-a\n/);
});

t.test('get nodes: one row per node and resource', async (t) => {
  const api = (await (await fetch(`${server.api}/api/v1/nodes`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
    items: Array<{ name: string; total: number; free: number }>;
  };
  const lines = (await run(['get', 'nodes', ...flags])).trimEnd().split('\n');
  t.match(lines[0], /^NAME\s+RESOURCE\s+MODEL\s+TOTAL\s+USED\s+FREE\s+HEALTH$/);
  t.equal(lines.length - 1, api.items.length);
  const first = lines[1]!.split(/\s{3,}/);
  t.equal(first[0], api.items[0]!.name);
  t.equal(first[3], String(api.items[0]!.total));
  t.equal(first[5], String(api.items[0]!.free));
});

t.test('URL and token from the environment, or the token from the kubeconfig', async (t) => {
  t.match(await run(['get', 'nodes'], { SLUICE_API_URL: server.api, SLUICE_API_TOKEN: TOKEN }), /^NAME/);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: ${TOKEN}}}]\n`,
  );
  t.match(
    await run(['get', 'nodes'], { SLUICE_API_URL: `${server.api}/api/v1`, KUBECONFIG: kubeconfig }),
    /^NAME/,
    "the current context's token; a URL ending in /api/v1 works too",
  );
});

t.test('bad input says what to do and changes nothing', async (t) => {
  await t.rejects(run(['get', 'nodes'], { SLUICE_API_TOKEN: TOKEN }), { message: /no admin API URL; pass --server URL or set SLUICE_API_URL/ });
  await t.rejects(run(['get', 'nodes', '--server', server.api, '--token', 'wrong']), { message: /GET \/api\/v1\/nodes: 401 bearer token is not valid/ });
  await t.rejects(run(['get', 'pods', ...flags]), { message: /unknown command "get pods"/ });
  await t.rejects(run(['get', 'queues', '-o', 'xml', ...flags]), { message: /output format "xml" is not one of wide, json, yaml/ });
  await t.rejects(run(['describe', 'job', 'nonamespace', ...flags]), { message: /describe job needs NAMESPACE\/NAME/ });
  await t.rejects(run(['get', 'jobs', '-q', 'nope', ...flags]), { message: /404 queue nope does not exist/ }, "an unknown queue: the API's refusal");
  await t.rejects(run(['get', 'nodes', '--server', 'http://127.0.0.1:1', '--token', TOKEN]), {
    message: /cannot reach the admin API at http:\/\/127\.0\.0\.1:1/,
  });
});

// ---- recorded JSON in the shape of the job routes ----
const now = Date.now();
const recordedJobs: QueueJobs = {
  queue: 'team-a',
  waiting: [
    {
      position: 1,
      namespace: 'ml',
      name: 'train-llm',
      user: 'alice',
      qos: 'guaranteed',
      gpus: 16,
      resource: 'nvidia.com/gpu',
      model: 'a100',
      gangSize: 2,
      podsSeen: 2,
      waitingFor: 'capacity',
      reason: 'needs 2 nodes with 8 free a100 GPUs; 1 has them',
      submittedAt: new Date(now - 300_000).toISOString(),
    },
    {
      position: 2,
      namespace: 'ml',
      name: 'sweep-3',
      user: 'bob',
      qos: 'best-effort',
      gpus: 1,
      resource: 'nvidia.com/gpu',
      model: '',
      gangSize: 1,
      podsSeen: 1,
      waitingFor: 'order',
      reason: 'behind ml/train-llm',
      submittedAt: new Date(now - 60_000).toISOString(),
      estimatedStartTime: new Date(now + 40 * 60_000 + 30_000).toISOString(),
    },
  ],
  running: [
    {
      namespace: 'ml',
      name: 'eval',
      user: 'carol',
      qos: 'guaranteed',
      gpus: 4,
      resource: 'nvidia.com/gpu',
      releasedAt: new Date(now - 7_200_000).toISOString(),
    },
  ],
};
const recordedJob: JobDetail = {
  namespace: 'ml',
  name: 'train-llm',
  queue: 'team-a',
  qos: 'guaranteed',
  user: 'alice',
  resource: 'nvidia.com/gpu',
  model: 'a100',
  gangSize: 2,
  gpus: 16,
  state: 'waiting',
  reason: 'needs 2 nodes with 8 free a100 GPUs; 1 has them',
  submittedAt: '2026-11-29T10:00:00.000Z',
  releasedAt: null,
  finishedAt: null,
  position: 1,
  estimatedStartTime: null,
  estimatedStart: {
    earliest: null,
    latest: null,
    unknownReason: 'it waits on jobs whose run time is unknown',
    basis: { summary: 'no running job to wait for' },
  },
  pods: [
    { name: 'train-llm-0', node: '', gated: true, terminal: false },
    { name: 'train-llm-1', node: '', gated: true, terminal: false },
  ],
};
const recorded: Record<string, unknown> = {
  '/api/v1/queues': { items: [{ name: 'team-a', parent: null, cohort: null, open: true, weight: 1, limits: [] }] },
  '/api/v1/queues/team-a/usage': { queue: 'team-a', pods: 1, totals: [{ resource: 'nvidia.com/gpu', guaranteed: 4, bestEffort: 0 }], byModel: [], limits: [] },
  '/api/v1/queues/team-a/jobs': recordedJobs,
  '/api/v1/jobs/ml/train-llm': recordedJob,
  // Declared run times only: no spread, so no range to show.
  '/api/v1/jobs/ml/sweep-3': {
    ...recordedJob,
    name: 'sweep-3',
    estimatedStartTime: '2026-11-29T11:00:00.000Z',
    estimatedStart: {
      earliest: '2026-11-29T11:00:00.000Z',
      latest: '2026-11-29T11:00:00.000Z',
      unknownReason: null,
      basis: { summary: 'from 2 declared durations' },
    },
  },
  '/api/v1/jobs/ml/learned': {
    ...recordedJob,
    name: 'learned',
    estimatedStartTime: '2026-11-29T11:00:00.000Z',
    estimatedStart: {
      earliest: '2026-11-29T10:40:00.000Z',
      latest: '2026-11-29T11:30:00.000Z',
      unknownReason: null,
      basis: { summary: 'from 12 finished jobs like the ones ahead' },
    },
  },
};
const recorder: Server = createServer((req, res) => {
  const body = req.headers.authorization === `Bearer ${TOKEN}` ? recorded[req.url ?? ''] : undefined;
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body ?? { statusCode: 404, error: 'Not Found', message: 'job ml/nope is not known to the queue manager' }));
});
await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
t.teardown(() => recorder.close());
const rec = ['--server', `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`, '--token', TOKEN];

t.test('get jobs (recorded JSON): waiting in release order, then running', async (t) => {
  const lines = (await run(['get', 'jobs', '-q', 'team-a', ...rec])).trimEnd().split('\n');
  t.match(lines[0], /^POSITION\s+JOB\s+USER\s+GPUS\s+QOS\s+WAITING FOR\s+ETA\s+REASON$/);
  t.same(
    lines[1]!.split(/\s{3,}/),
    ['1', 'ml/train-llm', 'alice', '16', 'guaranteed', 'capacity', '-', 'needs 2 nodes with 8 free a100 GPUs; 1 has them'],
    'no estimatedStartTime in the answer: -',
  );
  t.same(lines[2]!.split(/\s{3,}/), ['2', 'ml/sweep-3', 'bob', '1', 'best-effort', 'order', '~40m', 'behind ml/train-llm'], 'the ETA column');
  t.same(lines[3]!.split(/\s{3,}/), ['running', 'ml/eval', 'carol', '4', 'guaranteed', '-', '-', 'released 2h ago']);
  const all = (await run(['get', 'jobs', ...rec])).split('\n');
  t.match(all[0], /^POSITION\s+QUEUE\s+JOB/, 'without -q: a QUEUE column, every queue');
  const wide = (await run(['get', 'jobs', '-q', 'team-a', '-o', 'wide', ...rec])).split('\n');
  t.match(wide[1], /a100\s+2\/2\s+5m$/, 'wide: model, pods seen of the gang, age');
  t.same(JSON.parse(await run(['get', 'jobs', '-q', 'team-a', '-o', 'json', ...rec])), { items: [recordedJobs] });
  t.match(
    (await run(['get', 'queues', ...rec])).split('\n')[1],
    /^team-a\s+-\s+1\s+4\/0\s+0\/0\s+2$/,
    'get queues counts the waiting jobs when the route exists',
  );
});

t.test('describe job (recorded JSON)', async (t) => {
  const text = await run(['describe', 'job', 'ml/train-llm', ...rec]);
  t.match(text, /^Name:\s+train-llm\nNamespace:\s+ml\nQueue:\s+team-a\n/);
  t.match(text, /GPUs:\s+16 nvidia\.com\/gpu \(a100\)\n/);
  t.match(text, /Position:\s+1\n/);
  t.match(text, /ETA:\s+not known: it waits on jobs whose run time is unknown\n/);
  t.match(
    await run(['describe', 'job', 'ml/sweep-3', ...rec]),
    /ETA:\s+2026-11-29T11:00:00\.000Z \([^;]+; from 2 declared durations\)\n/,
    'no range when earliest = latest',
  );
  t.match(
    await run(['describe', 'job', 'ml/learned', ...rec]),
    /ETA:\s+2026-11-29T11:00:00\.000Z \([^;]+; from 12 finished jobs like the ones ahead; range 2026-11-29T10:40:00\.000Z to 2026-11-29T11:30:00\.000Z\)\n/,
  );
  t.match(text, /Released:\s+-\n/);
  t.match(text, /Pods:\n  NAME\s+NODE\s+GATED\s+FINISHED\n  train-llm-0\s+-\s+yes\s+no\n/, 'the pod fields the API gives (name, node, gated, terminal)');
  await t.rejects(run(['describe', 'job', 'ml/nope', ...rec]), { message: /job ml\/nope: 404 job ml\/nope is not known/ });
});
