import t from 'tap';
import { MIGRATIONS } from '../../store/migrations/index.js';
import pg from 'pg';
import { backendsOf, DATABASE_URL, makeStore, randomSchema, waitFor } from './helpers.js';

t.test('migrations apply from empty, re-run as a no-op, and create the default queue', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  const first = await store.migrate();
  t.same(
    first.applied,
    MIGRATIONS.map((m) => m.id),
  );
  t.equal(first.version, MIGRATIONS[MIGRATIONS.length - 1]!.id);
  const again = await store.migrate();
  t.same(again.applied, [], 'second run applies nothing');
  t.equal(again.version, first.version);
  const rows = await store.pool.query('SELECT id FROM schema_migrations ORDER BY id');
  t.equal(rows.rowCount, MIGRATIONS.length, 'each migration recorded once');
  const def = await store.getQueue('default');
  t.ok(def, 'default queue exists');
  t.equal(def?.open, true);
  t.same(def?.limits, [], 'default has no limits: no guaranteed quota, no per-job maximum');
  const tables = await store.pool.query<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
    [store.schema],
  );
  t.same(
    tables.rows.map((r) => r.table_name),
    ['admission_decisions', 'bind_failures', 'jobs', 'preemptions', 'queue_limits', 'queues', 'schema_migrations'],
  );
});

t.test('replicas migrating at once: one applies, the others find nothing to do', async (t) => {
  const { store: a } = makeStore();
  const { store: b } = makeStore({ schema: a.schema });
  const { store: c } = makeStore({ schema: a.schema });
  t.teardown(async () => {
    await a.dropSchema();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  const results = await Promise.all([a.migrate(), b.migrate(), c.migrate()]);
  const applied = results.map((r) => r.applied.length).sort();
  t.same(applied, [0, 0, MIGRATIONS.length], 'exactly one replica applied the migrations');
  const rows = await a.pool.query('SELECT count(*)::int AS n FROM queues WHERE name = $1', ['default']);
  t.equal(rows.rows[0].n, 1);
});

t.test('a failing migration rolls back and names itself', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  const { migrate } = await import('../../store/migrate.js');
  await t.rejects(
    migrate(store.pool, store.schema, [...MIGRATIONS, { id: 999, name: 'broken', sql: 'CREATE TABLE queues (x int)' }]),
    /migration 999 \(broken\) failed/,
  );
  const ids = await store.pool.query<{ id: number }>('SELECT id FROM schema_migrations ORDER BY id');
  t.same(
    ids.rows.map((r) => r.id),
    MIGRATIONS.map((m) => m.id),
    'the good ones stay, the broken one is not recorded',
  );
});

t.test('waiting more than the pool query timeout for another replica migrating, then migrating', async (t) => {
  const { store } = makeStore({ timeoutMs: 1000 });
  const other = new pg.Client({ connectionString: DATABASE_URL });
  t.teardown(async () => {
    await other.end().catch(() => undefined);
    await store.dropSchema();
    await store.close();
  });
  await other.connect();
  await other.query('SELECT pg_advisory_lock(hashtext($1))', [`sluice.migrate.${store.schema}`]);
  const started = Date.now();
  const result = store.migrate();
  setTimeout(() => void other.query('SELECT pg_advisory_unlock_all()'), 2500);
  const res = await result;
  t.ok(Date.now() - started >= 2400, `waited for the lock (${Date.now() - started} ms, pool timeout 1000 ms)`);
  t.same(
    res.applied,
    MIGRATIONS.map((m) => m.id),
    'then applied everything',
  );
});

t.test('a migration taking longer than the pool query timeout applies', async (t) => {
  const { store } = makeStore({ timeoutMs: 500 });
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  const slow = [...MIGRATIONS, { id: 998, name: 'slow', sql: 'SELECT pg_sleep(1)' }];
  const res = await store.migrate(slow);
  t.same(
    res.applied,
    slow.map((m) => m.id),
  );
});

t.test('backend terminated while waiting for the migration lock: migrate() rejects, the process survives', async (t) => {
  const app = `sluice-test-${randomSchema()}`;
  const { store } = makeStore({ applicationName: app });
  const other = new pg.Client({ connectionString: DATABASE_URL });
  t.teardown(async () => {
    await other.end().catch(() => undefined);
    await store.dropSchema();
    await store.close();
  });
  await other.connect();
  await other.query('SELECT pg_advisory_lock(hashtext($1))', [`sluice.migrate.${store.schema}`]);
  const result = store.migrate().then(
    () => null,
    (e: unknown) => e as Error,
  );
  let pids: number[] = [];
  t.ok((await waitFor(async () => (pids = await backendsOf(other, app, '%advisory_lock%')).length === 1, 2000)) >= 0, 'migrate() waits for the lock');
  await other.query('SELECT pg_terminate_backend($1)', [pids[0]]);
  const err = await result;
  t.ok(err instanceof Error, 'migrate() rejects');
  t.match(err?.message, /terminat|connection/i, `with a clear error: ${err?.message}`);
  await other.query('SELECT pg_advisory_unlock_all()');
  await new Promise((r) => setTimeout(r, 200));
  t.same(
    (await store.migrate()).applied,
    MIGRATIONS.map((m) => m.id),
    'a retry migrates',
  );
});

t.test('close() ends a migration waiting for the lock', async (t) => {
  const { store } = makeStore();
  const other = new pg.Client({ connectionString: DATABASE_URL });
  t.teardown(async () => {
    await other.query(`DROP SCHEMA IF EXISTS "${store.schema}" CASCADE`).catch(() => undefined);
    await other.end().catch(() => undefined);
  });
  await other.connect();
  await other.query('SELECT pg_advisory_lock(hashtext($1))', [`sluice.migrate.${store.schema}`]);
  const result = store.migrate().then(
    () => null,
    (e: unknown) => e as Error,
  );
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  await store.close();
  const err = await result;
  t.match(err?.message, /closed|shut/i, `migrate() rejects: ${err?.message}`);
  t.ok(Date.now() - started < 2000, 'promptly');
});
