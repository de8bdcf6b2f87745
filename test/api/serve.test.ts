// The admin API and the store as `sluice serve` wires them: real listeners, real Postgres.
import { Writable } from 'node:stream';
import t from 'tap';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import { sharedPath } from '../helpers/shared.js';
import { DATABASE_URL, randomSchema, waitFor } from '../store/helpers.js';

const snapshot = sharedPath('fixtures/cluster-state/before-preempt-1.json');

async function start(store: Record<string, unknown>) {
  const config = loadConfig({
    env: { SLUICE_API_TOKEN: 'tok' },
    base: {
      clusterSnapshot: snapshot,
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store,
    },
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const running = await serve(config, { log: createLogger('info', sink) });
  const get = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(running.apiUrl + path, { ...init, headers: { authorization: 'Bearer tok', 'content-type': 'application/json', ...init.headers } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { running, logs, get };
}

t.test('serve migrates the store and serves the admin API', async (t) => {
  const schema = randomSchema();
  const s = await start({ url: DATABASE_URL, schema });
  t.teardown(async () => {
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: DATABASE_URL });
    await s.running.close();
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });
  t.ok((await waitFor(async () => (await s.get('/api/v1/queues')).status === 200, 5000)) >= 0, 'queues served once migrated');
  const put = await s.get('/api/v1/queues/team-a', {
    method: 'PUT',
    body: JSON.stringify({ limits: [{ resource: 'nvidia.com/gpu', perJobMax: 8, perUserMax: 0 }] }),
  });
  t.equal(put.status, 201);
  const usage = await s.get('/api/v1/queues/team-a/usage');
  t.match(usage.body, { queue: 'team-a', pods: 6, totals: [{ resource: 'nvidia.com/gpu', bestEffort: 16, guaranteed: 0 }] });
  t.ok(
    s.logs.some((l) => l.msg === 'Postgres store ready'),
    'logged the store ready',
  );
  t.ok(
    s.logs.some(
      (l) =>
        l.level === 40 &&
        String(l.msg).startsWith(
          `snapshot mode keeps queues and job records in Postgres at ${DATABASE_URL}, schema "${schema}" (created if missing); --store-url '' runs without a store`,
        ),
    ),
    'snapshot mode says which database and schema it writes to, and how not to',
  );
});

t.test('Postgres down at startup: sluice serves, logs one clear line, queue routes 503', async (t) => {
  const s = await start({ url: 'postgres://postgres@127.0.0.1:1/test', schema: randomSchema() });
  t.teardown(() => s.running.close());
  t.ok((await waitFor(() => s.logs.some((l) => /Postgres store not ready/.test(String(l.msg))), 3000)) >= 0, 'one line says the store is not ready');
  const q = await s.get('/api/v1/queues');
  t.equal(q.status, 503);
  t.match(q.body.message, /not been migrated yet/);
  t.equal((await s.get('/api/v1/nodes')).status, 200, 'the cluster side works');
  const ready = await fetch(s.running.opsUrl + '/readyz');
  t.equal(ready.status, 200, 'readiness does not depend on Postgres');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(s.logs.filter((l) => /Postgres store not ready/.test(String(l.msg))).length, 1, 'retries do not repeat the line');
});

t.test('store.url empty: no store, queue routes 503 with the reason', async (t) => {
  const s = await start({ url: '' });
  t.teardown(() => s.running.close());
  const q = await s.get('/api/v1/queues');
  t.equal(q.status, 503);
  t.match(q.body.message, /store is disabled/);
});
