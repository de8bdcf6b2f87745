import t from 'tap';
import pg from 'pg';
import { backendsOf, DATABASE_URL, gaugeValue, makeStore, migratedStore, PgRelay, randomSchema, waitFor } from './helpers.js';

t.test('cache hits make no database round trip; NOTIFY invalidates within a second', async (t) => {
  const { store, metrics } = makeStore();
  const other = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${store.schema}` });
  t.teardown(async () => {
    await other.end();
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
  store.startListening();
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 1, 2000)) >= 0, 'listener connected');
  await other.connect();

  const first = await store.queues.lookup('default');
  t.equal(first.status, 'found');
  const queries = store.queues.dbQueries;
  for (let i = 0; i < 50; i++) await store.queues.lookup('default');
  t.equal(store.queues.dbQueries, queries, '50 lookups, no queries');

  // Another replica (a plain SQL client here) changes the queue behind our back.
  await other.query(
    `INSERT INTO queue_limits (queue, resource, model, guaranteed, best_effort_cap, per_job_max) VALUES ('default', 'nvidia.com/gpu', '', 2, 4, 1)`,
  );
  const ms = await waitFor(async () => {
    const r = await store.queues.lookup('default');
    return r.status === 'found' && r.queue.limits.length === 1;
  }, 1000);
  t.ok(ms >= 0, `limit change seen after ${ms} ms`);

  await other.query(`UPDATE queues SET open = false WHERE name = 'default'`);
  t.ok(
    (await waitFor(async () => {
      const r = await store.queues.lookup('default');
      return r.status === 'found' && !r.queue.open;
    }, 1000)) >= 0,
    'queue change seen within a second',
  );

  const burst = store.queues.dbQueries;
  const answers = await Promise.all(Array.from({ length: 20 }, () => store.queues.lookup('default')));
  t.ok(answers.every((a) => a.status === 'found'));
  t.ok(store.queues.dbQueries - burst <= 1, 'a burst of lookups makes at most one query');
  if (answers[0]?.status === 'found' && answers[1]?.status === 'found') {
    answers[0].queue.limits.push({ resource: 'x', model: '', guaranteed: 1, bestEffortCap: 1, perJobMax: 1, perUserMax: 0 });
    t.equal(answers[1].queue.limits.length, 1, 'callers get their own copies');
  }
  store.queues.invalidate('default');
  const cold = store.queues.dbQueries;
  await Promise.all(Array.from({ length: 20 }, () => store.queues.lookup('default')));
  t.equal(store.queues.dbQueries - cold, 1, 'cold burst after an invalidation: one query');

  t.same(await store.queues.lookup('nope'), { status: 'missing' });
  const q2 = store.queues.dbQueries;
  t.same(await store.queues.lookup('nope'), { status: 'missing' }, 'missing answers are cached too');
  t.equal(store.queues.dbQueries, q2);
  await other.query(`INSERT INTO queues (name) VALUES ('nope')`);
  t.ok((await waitFor(async () => (await store.queues.lookup('nope')).status === 'found', 1000)) >= 0, 'created queue seen within a second');
});

t.test('dropped LISTEN and pool connections: the listener reconnects and clears the cache, the pool recovers', async (t) => {
  const app = `sluice-test-${randomSchema()}`;
  const { store, metrics } = await migratedStore(t, { applicationName: app });
  store.startListening();
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 1, 2000)) >= 0, 'listener connected');
  t.equal((await store.queues.lookup('default')).status, 'found');

  // Kill the listener's and the pool's backends: the cache can no longer be trusted.
  const killer = new pg.Client({ connectionString: DATABASE_URL });
  await killer.connect();
  t.teardown(() => killer.end());
  const listen = await backendsOf(killer, app, `LISTEN "${store.schema}.queue_changed"%`);
  const all = await backendsOf(killer, app);
  t.equal(listen.length, 1, 'one LISTEN backend');
  t.ok(all.length >= 2, `and pool backends besides (${all.length} in all)`);
  const killed = await killer.query<{ ok: boolean }>('SELECT pg_terminate_backend(pid) AS ok FROM unnest($1::int[]) AS pid', [all]);
  t.ok(
    killed.rows.every((r) => r.ok),
    'all terminated',
  );
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 0, 2000)) >= 0, 'listener noticed the drop');
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 1, 3000)) >= 0, 'listener reconnected');
  t.equal(store.queues.size, 0, 'cache cleared on reconnect');
  t.equal((await store.queues.lookup('default')).status, 'found', 'lookup reads through a fresh pool connection');
  const after = await backendsOf(killer, app);
  t.notOk(
    after.some((pid) => all.includes(pid)),
    'no killed backend is in use',
  );
});

t.test('unreachable Postgres (127.0.0.1:1)', async (t) => {
  const { store, metrics } = makeStore({ url: 'postgres://postgres@127.0.0.1:1/test', timeoutMs: 500 });
  t.teardown(() => store.close());
  store.startListening();
  const r = await store.queues.lookup('default');
  t.equal(r.status, 'unavailable');
  t.match(r, { reason: /queue store unreachable .* queue default is not cached/ });
  await t.rejects(store.migrate(), /ECONNREFUSED|connect/);
  t.equal(await gaugeValue(metrics.storeUp), 0);
  const lookups = await metrics.queueLookups.get();
  t.ok(
    lookups.values.some((v) => v.labels.source === 'unavailable' && v.value >= 1),
    'metric counts unavailable answers',
  );
  store.audit.recordAdmission({ uid: 'u', operation: 'CREATE', namespace: 'n', pod: 'p', user: 'u', allowed: true, code: 200, reason: '', dryRun: false });
  t.equal(await store.audit.flush(), 1, 'record kept for retry');
});

t.test('a real outage (relay cut): stale answers, unavailable for the rest, audit kept; recovery', async (t) => {
  const relay = new PgRelay();
  await relay.start();
  const { store, metrics } = makeStore({ url: relay.url(), timeoutMs: 500 });
  t.teardown(async () => {
    await relay.start().catch(() => undefined);
    await store.dropSchema().catch(() => undefined);
    await store.close();
    await relay.stop();
  });
  await store.migrate();
  store.startListening();
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 1, 2000)) >= 0);
  await store.putQueue('team-a', { limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 8, bestEffortCap: 8, perJobMax: 4, perUserMax: 0 }] });
  // The put's own NOTIFY arrives a moment later and drops the entry once more: let it land.
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await store.queues.lookup('team-a')).status, 'found');
  const before = store.queues.dbQueries;
  t.equal((await store.queues.lookup('team-a')).status, 'found');
  t.equal(store.queues.dbQueries, before, 'team-a cached');
  t.equal((await store.queues.lookup('ghost')).status, 'missing');

  await relay.stop();
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 0, 2000)) >= 0, 'listener saw the outage');
  const stale = await store.queues.lookup('team-a');
  t.match(stale, { status: 'found', queue: { limits: [{ perJobMax: 4, perUserMax: 0 }] } }, 'last known definition served');
  t.equal((await store.queues.lookup('ghost')).status, 'missing', 'last known missing answer served');
  const none = await store.queues.lookup('team-b');
  t.equal(none.status, 'unavailable', 'nothing cached: unavailable');
  const lookups = (await metrics.queueLookups.get()).values;
  t.ok(
    lookups.some((v) => v.labels.source === 'stale_cache' && v.value >= 2),
    'stale answers counted',
  );
  store.audit.recordAdmission({ uid: 'u1', operation: 'CREATE', namespace: 'n', pod: 'p', user: 'u', allowed: false, code: 403, reason: 'r', dryRun: false });
  t.equal(await store.audit.flush(), 1, 'audit record kept while Postgres is away');

  await relay.start();
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 1, 5000)) >= 0, 'listener reconnected');
  t.ok((await waitFor(async () => (await store.audit.flush()) === 0, 5000)) >= 0, 'buffered audit record written after recovery');
  const rows = await store.pool.query('SELECT count(*)::int AS n FROM admission_decisions');
  t.equal(rows.rows[0].n, 1);
});

t.test('audit buffer is bounded: the oldest are dropped and counted', async (t) => {
  const { store, metrics } = makeStore({ url: 'postgres://postgres@127.0.0.1:1/test', timeoutMs: 500, auditBufferSize: 10 });
  t.teardown(() => store.close());
  for (let i = 0; i < 25; i++) {
    store.audit.recordAdmission({
      uid: `u${i}`,
      operation: 'CREATE',
      namespace: 'n',
      pod: 'p',
      user: 'u',
      allowed: true,
      code: 200,
      reason: '',
      dryRun: false,
    });
  }
  t.equal(store.audit.pending, 10);
  const dropped = (await metrics.auditRecords.get()).values.find((v) => v.labels.result === 'dropped');
  t.equal(dropped?.value, 15);
});

t.test('a LISTEN connection gone silent (no FIN/RST) is caught by the heartbeat; the cache stops trusting it', async (t) => {
  const relay = new PgRelay();
  await relay.start();
  const { store, metrics } = makeStore({ url: relay.url(), timeoutMs: 500, heartbeatMs: 100, heartbeatTimeoutMs: 300 });
  const other = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${store.schema}` });
  t.teardown(async () => {
    await other.end().catch(() => undefined);
    await store.dropSchema().catch(() => undefined);
    await store.close();
    await relay.stop();
  });
  await store.migrate();
  store.startListening();
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 1, 2000)) >= 0, 'listener connected');
  await other.connect();
  t.match(await store.queues.lookup('default'), { status: 'found', queue: { open: true } });
  const before = store.queues.dbQueries;
  t.match(await store.queues.lookup('default'), { status: 'found', queue: { open: true } });
  t.equal(store.queues.dbQueries, before, 'served from the trusted cache');

  relay.freeze(); // every connection so far, the LISTEN one included, goes silent
  await other.query(`UPDATE queues SET open = false WHERE name = 'default'`);
  const ms = await waitFor(async () => {
    const r = await store.queues.lookup('default');
    return r.status === 'found' && !r.queue.open;
  }, 5000);
  t.ok(ms >= 0, `the change is seen despite the lost NOTIFY (after ${ms} ms)`);
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeListenerConnected)) === 1, 3000)) >= 0, 'listener reconnected on a fresh connection');
  await other.query(`UPDATE queues SET open = true WHERE name = 'default'`);
  t.ok(
    (await waitFor(async () => {
      const r = await store.queues.lookup('default');
      return r.status === 'found' && r.queue.open;
    }, 1000)) >= 0,
    'and NOTIFYs arrive again',
  );
});

// Issue 22, defect 8: sluice_store_up changed only on a queue cache miss, so it stayed 0
// after Postgres came back until the next new pod (for ever on a quiet cluster).
t.test('sluice_store_up returns to 1 after an outage with no lookup at all', async (t) => {
  const relay = new PgRelay();
  await relay.start();
  const { store, metrics } = makeStore({ url: relay.url(), timeoutMs: 500, probeMs: 200 });
  t.teardown(async () => {
    await relay.start().catch(() => undefined);
    await store.close();
    await relay.stop();
  });
  store.startListening();
  t.ok((await waitFor(async () => (await gaugeValue(metrics.storeUp)) === 1, 3000)) >= 0, 'up at start');
  await relay.stop();
  t.equal((await store.queues.lookup('team-a')).status, 'unavailable', 'a lookup during the outage fails');
  t.equal(await gaugeValue(metrics.storeUp), 0, 'down');
  await relay.start();
  const took = await waitFor(async () => (await gaugeValue(metrics.storeUp)) === 1, 5000);
  t.ok(took >= 0, `up again without any lookup (after ${took} ms)`);
});
