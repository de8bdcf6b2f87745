import t from 'tap';
import { MIGRATIONS } from '../../store/migrations/index.js';
import { makeStore } from './helpers.js';

t.test('migrations apply from empty, re-run as a no-op, and create the default queue', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  const first = await store.migrate();
  t.same(first.applied, MIGRATIONS.map((m) => m.id));
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
    ['admission_decisions', 'jobs', 'queue_limits', 'queues', 'schema_migrations'],
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
  t.same(ids.rows.map((r) => r.id), MIGRATIONS.map((m) => m.id), 'the good ones stay, the broken one is not recorded');
});
