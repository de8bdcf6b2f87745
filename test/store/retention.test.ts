// Retention (store/retention.ts) on the real Postgres: every table the migrations create is
// either pruned or named as not growing with traffic; rows older than queue.historyDays are
// deleted from each pruned table, in bounded batches through the table's time index, while
// unfinished job records and everything the console's Activity shows stay; pruning runs by
// itself once migrated, on its own connection, and one replica at a time.
import pg from 'pg';
import t, { type Test } from 'tap';
import { readActivity } from '../../console/activity.js';
import { batchDeleteSql, NOT_PRUNED, RETENTION_RULES } from '../../store/retention.js';
import type { Store } from '../../store/store.js';
import { DATABASE_URL, makeStore, waitFor } from './helpers.js';

async function migrated(t: Test, over: Parameters<typeof makeStore>[0] = {}): Promise<Store> {
  const { store } = makeStore(over);
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
  return store;
}

/** One row in each pruned table, `hoursAgo` old, named `name`. */
async function insertAged(store: Store, name: string, hoursAgo: number): Promise<void> {
  const at = `now() - make_interval(hours => ${hoursAgo})`;
  await store.pool.query(
    `INSERT INTO admission_decisions (decided_at, request_uid, operation, namespace, pod, username, allowed, code, reason, dry_run)
     VALUES (${at}, $1, 'CREATE', 'team-a', $1, 'alice', false, 403, 'queue q is closed', false)`,
    [name],
  );
  await store.pool.query(
    `INSERT INTO preemptions (decided_at, preemptor_namespace, preemptor_pod, preemptor_uid, queue, node, resource, gpus_freed, gpus_taken_back, victims, reason)
     VALUES (${at}, 'team-a', $1, $1, 'prod', 'n1', 'nvidia.com/gpu', 1, 1, '[]', 'preempted')`,
    [name],
  );
  await store.pool.query(
    `INSERT INTO bind_failures (first_at, last_at, namespace, pod, pod_uid, node, cause, reason, attempts)
     VALUES (${at}, ${at}, 'team-a', $1, $1, 'n1', 'rejected', 'no room', 1)`,
    [name],
  );
  await store.pool.query(
    `INSERT INTO jobs (namespace, name, queue, qos, state, submitted_at, released_at, finished_at)
     VALUES ('team-a', $1, 'prod', 'guaranteed', 'finished', ${at} - interval '1 hour', ${at} - interval '30 minutes', ${at})`,
    [name],
  );
}

type Names = Record<'jobs' | 'admission_decisions' | 'preemptions' | 'bind_failures', string[]>;

const names = async (store: Store): Promise<Names> => {
  const q = async (sql: string): Promise<string[]> => (await store.pool.query<{ n: string }>(sql)).rows.map((r) => r.n);
  return {
    jobs: await q('SELECT name AS n FROM jobs ORDER BY name'),
    admission_decisions: await q('SELECT pod AS n FROM admission_decisions ORDER BY pod'),
    preemptions: await q('SELECT preemptor_pod AS n FROM preemptions ORDER BY preemptor_pod'),
    bind_failures: await q('SELECT pod AS n FROM bind_failures ORDER BY pod'),
  };
};

t.test('every table the migrations create is pruned through an index, or named as not growing with traffic', async (t) => {
  const store = await migrated(t);
  const tables = (
    await store.pool.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [store.schema])
  ).rows.map((r) => r.table_name);
  const pruned = RETENTION_RULES.map((r) => r.table);
  t.same(
    tables.filter((n) => !pruned.includes(n) && !(n in NOT_PRUNED)),
    [],
    'a new table must get a retention rule or a reason not to',
  );
  t.same(
    [...pruned, ...Object.keys(NOT_PRUNED)].filter((n) => !tables.includes(n)),
    [],
    'no rule for a table that does not exist',
  );
  const indexes = (
    await store.pool.query<{ indexname: string; indexdef: string }>('SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1', [store.schema])
  ).rows;
  for (const r of RETENTION_RULES) {
    t.match(
      indexes.find((i) => i.indexname === r.index)?.indexdef,
      new RegExp(`ON ${store.schema}\\.${r.table} USING btree \\(${r.column}\\)`),
      `${r.table}: ${r.index} indexes ${r.column}`,
    );
  }
});

t.test('older than historyDays is deleted from each table; unfinished jobs and what Activity shows stay', async (t) => {
  const store = await migrated(t, { historyDays: 1, retention: { batchSize: 3, pauseMs: 0 } });
  // 1 day of retention against Activity's 24 hours: 23 hours old stays, 25 hours old goes.
  await insertAged(store, 'recent', 23);
  for (let i = 0; i < 10; i++) await insertAged(store, `old-${i}`, 25 + i * 24);
  // Jobs still there, submitted long ago: never deleted.
  await store.pool.query(
    `INSERT INTO jobs (namespace, name, queue, qos, state, submitted_at, released_at, preempted_by, preempted_at, updated_at) VALUES
       ('team-a', 'running-long', 'prod', 'guaranteed', 'running', now() - interval '400 days', now() - interval '399 days', NULL, NULL, now() - interval '399 days'),
       ('team-a', 'queued-long', 'prod', 'best-effort', 'queued', now() - interval '90 days', NULL, NULL, NULL, now() - interval '90 days'),
       ('team-a', 'preempted-coming-back', 'prod', 'best-effort', 'preempted', now() - interval '60 days', now() - interval '60 days', 'team-b/x', now() - interval '50 days', now() - interval '50 days')`,
  );
  const activityBefore = await readActivity(store.pool, { hours: 24, limit: 300 });
  t.same(
    activityBefore.map((i) => `${i.kind} ${i.name}`).sort(),
    ['bind_failed recent', 'denied recent', 'preempted recent', 'released recent'],
    'Activity shows the recent rows only',
  );

  const pruned = await store.retention.pruneNow();
  t.same(pruned, { jobs: 10, admission_decisions: 10, preemptions: 10, bind_failures: 10 }, 'ten old rows of each table, in batches of 3');
  const left = await names(store);
  t.same(left, {
    jobs: ['preempted-coming-back', 'queued-long', 'recent', 'running-long'],
    admission_decisions: ['recent'],
    preemptions: ['recent'],
    bind_failures: ['recent'],
  });
  t.same(await readActivity(store.pool, { hours: 24, limit: 300 }), activityBefore, 'Activity shows the same as before');
  t.same(await store.retention.pruneNow(), { jobs: 0, admission_decisions: 0, preemptions: 0, bind_failures: 0 }, 'a second round finds nothing');
});

t.test('one batch deletes at most its size, oldest first, and leaves a row a writer made recent meanwhile', async (t) => {
  const store = await migrated(t, { historyDays: 1 });
  for (let i = 0; i < 10; i++) await insertAged(store, `old-${i}`, 25 + i * 24);
  const rule = RETENTION_RULES.find((r) => r.table === 'bind_failures')!;
  const res = await store.pool.query(batchDeleteSql(rule), [1, 4]);
  t.equal(res.rowCount, 4, 'a batch of 4');
  t.same((await names(store)).bind_failures, ['old-0', 'old-1', 'old-2', 'old-3', 'old-4', 'old-5'], 'the 4 oldest went');

  // A delete that found a row old while another transaction makes it recent (a bind failing
  // again) waits for that transaction and then leaves the row.
  const writer = await store.pool.connect();
  t.teardown(() => writer.release());
  await writer.query('BEGIN');
  await writer.query(`UPDATE bind_failures SET last_at = now(), attempts = attempts + 1 WHERE pod = 'old-5'`);
  const deleting = store.pool.query(batchDeleteSql(rule), [1, 1]);
  const waiting = await waitFor(
    async () =>
      (await store.pool.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM bind_failures%'`)).rowCount === 1,
    5000,
  );
  t.ok(waiting >= 0, 'the delete waits for the writer');
  await writer.query('COMMIT');
  t.equal((await deleting).rowCount, 0, 'the row became recent: not deleted');
  t.ok((await names(store)).bind_failures.includes('old-5'));
});

t.test('each batch is found through the time index on a table of 20,000 rows', async (t) => {
  const store = await migrated(t);
  const spread = (col: string): string => `${col} = now() - make_interval(days => (random() * 60)::int)`;
  await store.pool.query(`INSERT INTO admission_decisions (request_uid, operation, namespace, pod, username, allowed, code, reason, dry_run)
    SELECT i::text, 'CREATE', 'ns', 'p' || i, 'u', true, 200, 'ok', false FROM generate_series(1, 20000) i`);
  await store.pool.query(`INSERT INTO preemptions (preemptor_namespace, preemptor_pod, preemptor_uid, queue, node, resource, gpus_freed, gpus_taken_back, victims, reason)
    SELECT 'ns', 'p' || i, i::text, 'q', 'n', 'nvidia.com/gpu', 1, 1, '[]', 'r' FROM generate_series(1, 20000) i`);
  await store.pool.query(`INSERT INTO bind_failures (first_at, last_at, namespace, pod, pod_uid, node, cause, reason, attempts)
    SELECT now(), now(), 'ns', 'p' || i, i::text, 'n', 'rejected', 'r', 1 FROM generate_series(1, 20000) i`);
  await store.pool.query(`INSERT INTO jobs (namespace, name, queue, qos, state, finished_at)
    SELECT 'ns', 'j' || i, 'q', 'guaranteed', 'finished', CASE WHEN i % 10 = 0 THEN NULL ELSE now() END FROM generate_series(1, 20000) i`);
  await store.pool.query(`UPDATE admission_decisions SET ${spread('decided_at')}`);
  await store.pool.query(`UPDATE preemptions SET ${spread('decided_at')}`);
  await store.pool.query(`UPDATE bind_failures SET ${spread('last_at')}`);
  await store.pool.query(`UPDATE jobs SET ${spread('finished_at')} WHERE finished_at IS NOT NULL`);
  for (const r of RETENTION_RULES) {
    await store.pool.query(`ANALYZE ${r.table}`);
    const plan = JSON.stringify((await store.pool.query(`EXPLAIN (FORMAT JSON) ${batchDeleteSql(r)}`, [30, 1000])).rows[0]);
    t.match(plan, `"Index Name":"${r.index}"`, `${r.table}: the batch scans ${r.index}`);
    t.match(plan, `"Node Type":"Tid Scan"`, `${r.table}: the rows deleted by address`);
    t.notMatch(plan, `"Node Type":"Seq Scan"`, `${r.table}: no sequential scan`);
  }
});

t.test("pruning runs by itself once migrated, every interval, on its own connection; the webhooks' reads and writes go on meanwhile", async (t) => {
  const app = `retention-${process.pid}-${Date.now()}`;
  const { store } = makeStore({ applicationName: app, historyDays: 1, retention: { firstDelayMs: 10, intervalMs: 100 } });
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  store.startInBackground();
  t.ok((await waitFor(() => store.notReady() === null, 20000)) >= 0, 'migrated');
  const db = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${store.schema}` });
  await db.connect();
  t.teardown(() => db.end());
  const count = async (): Promise<number> => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM bind_failures`)).rows[0]!.n;
  const addOld = (uid: string) =>
    db.query(
      `INSERT INTO bind_failures (first_at, last_at, namespace, pod, pod_uid, node, cause, reason, attempts)
              VALUES (now() - interval '3 days', now() - interval '3 days', 'team-a', 'p', $1, 'n1', 'rejected', 'r', 1)`,
      [uid],
    );
  await addOld('uid-1');
  t.ok((await waitFor(async () => (await count()) === 0, 10000)) >= 0, 'the old row is deleted without being asked');

  // The next round finds an old row another transaction holds: its delete waits, on the
  // pruning connection, while the queue reads and the audit writes of the webhooks go on.
  await addOld('uid-2');
  await db.query('BEGIN');
  await db.query(`UPDATE bind_failures SET attempts = attempts + 1 WHERE pod_uid = 'uid-2'`);
  const blocked = await waitFor(async () => {
    const r = await store.pool.query(
      `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM bind_failures%'`,
      [`${app} retention`],
    );
    return r.rowCount === 1;
  }, 5000);
  t.ok(blocked >= 0, 'a round waits on the row, on the connection named "<app> retention"');
  t.equal((await store.getQueue('default'))?.name, 'default', 'a queue read answers meanwhile');
  store.audit.recordAdmission({
    uid: 'u-new',
    operation: 'CREATE',
    namespace: 'team-a',
    pod: 'new',
    user: 'alice',
    allowed: true,
    code: 200,
    reason: 'ok',
    dryRun: false,
  });
  t.equal(await store.audit.flush(), 0, 'an admission decision is written meanwhile');
  await db.query('COMMIT');
  t.ok((await waitFor(async () => (await count()) === 0, 10000)) >= 0, 'then the row is deleted');
});

t.test('replicas: one prunes while the others skip the round', async (t) => {
  const a = await migrated(t, { historyDays: 1, retention: { batchSize: 1, pauseMs: 100 } });
  const { store: b } = makeStore({ schema: a.schema, historyDays: 1 });
  t.teardown(() => b.close());
  for (let i = 0; i < 5; i++) await insertAged(a, `old-${i}`, 48);
  const roundA = a.retention.pruneNow();
  t.ok((await waitFor(async () => (await names(b)).jobs.length < 5, 5000)) >= 0, 'a is pruning');
  t.equal(await b.retention.pruneNow(), null, 'b skips: a holds the lock');
  t.same(await roundA, { jobs: 5, admission_decisions: 5, preemptions: 5, bind_failures: 5 });
  t.same(await b.retention.pruneNow(), { jobs: 0, admission_decisions: 0, preemptions: 0, bind_failures: 0 }, 'the lock is free again');
});

t.test('closing the store stops a round between two batches', async (t) => {
  const { store } = makeStore({ historyDays: 1, retention: { batchSize: 1, pauseMs: 10_000 } });
  const schema = store.schema;
  await store.migrate();
  for (let i = 0; i < 3; i++) await insertAged(store, `old-${i}`, 48);
  const round = store.retention.pruneNow();
  await waitFor(async () => (await names(store)).jobs.length < 3, 5000);
  const started = Date.now();
  await store.close();
  t.equal(await round, null, 'the round ends unfinished');
  t.ok(Date.now() - started < 5000, 'without waiting out the pause');
  const { store: after } = makeStore({ schema });
  t.teardown(async () => {
    await after.dropSchema();
    await after.close();
  });
  t.equal((await names(after)).jobs.length, 2, 'one batch done, the rest left for the next round');
});
