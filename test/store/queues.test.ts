import t from 'tap';
import { QueueError } from '../../store/queues.js';
import pg from 'pg';
import { backendsOf, DATABASE_URL, makeStore, migratedStore, randomSchema, waitFor } from './helpers.js';

t.test('queue CRUD', async (t) => {
  const { store } = await migratedStore(t);

  const limits = [
    { resource: 'nvidia.com/gpu', model: 'a100', guaranteed: 8, bestEffortCap: 16, perJobMax: 8, perUserMax: 0 },
    { resource: 'nvidia.com/gpu', model: '', guaranteed: 4, bestEffortCap: 4, perJobMax: 0, perUserMax: 0 },
  ];
  const made = await store.putQueue('research', { cohort: 'lab', weight: 2, limits });
  t.equal(made.created, true);
  t.equal(made.queue.weight, 2);
  t.equal(made.queue.parent, null);
  t.same(
    made.queue.limits.map((l) => l.model),
    ['', 'a100'],
    'limits sorted by resource, model',
  );

  const child = await store.putQueue('research-nlp', { parent: 'research', limits: [] });
  t.equal(child.created, true);
  t.equal(child.queue.parent, 'research');
  t.equal(child.queue.open, true, 'open by default');
  t.equal(child.queue.weight, 1, 'weight 1 by default');

  const replaced = await store.putQueue('research', { open: false, limits: [limits[0]!] });
  t.equal(replaced.created, false, 'second PUT replaces');
  t.equal(replaced.queue.open, false);
  t.equal(replaced.queue.cohort, null, 'PUT replaces the whole definition');
  t.same(replaced.queue.limits, [limits[0]]);

  const all = await store.listQueues();
  t.same(
    all.map((q) => q.name),
    ['default', 'research', 'research-nlp'],
  );

  const refused = async (p: Promise<unknown>, statusCode: number, message: RegExp): Promise<void> => {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof QueueError, `refused with a QueueError: ${String(err)}`);
    t.match(err, { statusCode, message });
  };
  await refused(store.putQueue('x', { parent: 'nope' }), 400, /parent queue nope does not exist/);
  await refused(store.putQueue('research', { parent: 'research-nlp' }), 409, /cycle/);
  await refused(store.putQueue('y', { parent: 'y' }), 400, /own parent/);
  await refused(store.putQueue('z', { limits: [limits[0]!, limits[0]!] }), 400, /twice/);
  await refused(store.deleteQueue('research'), 409, /child queues \(research-nlp\)/);
  await refused(store.deleteQueue('default'), 409, /cannot be deleted/);
  await refused(store.deleteQueue('ghost'), 404, /does not exist/);

  await store.deleteQueue('research-nlp');
  await store.deleteQueue('research');
  t.equal(await store.getQueue('research'), null);
  const orphanLimits = await store.pool.query('SELECT count(*)::int AS n FROM queue_limits');
  t.equal(orphanLimits.rows[0].n, 0, 'limits deleted with their queue');
});

t.test('concurrent PUTs cannot close a parent cycle', async (t) => {
  const { store } = await migratedStore(t);
  for (let round = 0; round < 10; round++) {
    const a = `a${round}`;
    const b = `b${round}`;
    await store.putQueue(a, {});
    await store.putQueue(b, {});
    const results = await Promise.allSettled([store.putQueue(a, { parent: b }), store.putQueue(b, { parent: a })]);
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: exactly one of the two wins`);
  }
});

t.test('audit writer inserts buffered records and flushes', async (t) => {
  const { store, metrics } = await migratedStore(t);
  for (let i = 0; i < 450; i++) {
    store.audit.recordAdmission({
      uid: `u-${i}`,
      operation: 'CREATE',
      namespace: 'team-a',
      pod: `p-${i}`,
      user: 'admin',
      allowed: i % 3 !== 0,
      code: i % 3 === 0 ? 403 : 200,
      reason: i % 3 === 0 ? 'pod asks 9 nvidia.com/gpu but queue team-a allows at most 8 per job' : 'allowed',
      dryRun: i === 7,
    });
  }
  t.equal(await store.audit.flush(), 0, 'nothing left after flush');
  const rows = await store.pool.query<{ n: number; denied: number; dry: number }>(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE NOT allowed)::int AS denied, count(*) FILTER (WHERE dry_run)::int AS dry
       FROM admission_decisions`,
  );
  t.same(rows.rows[0], { n: 450, denied: 150, dry: 1 });
  const written = await metrics.auditRecords.get();
  t.equal(written.values.find((v) => v.labels.result === 'written')?.value, 450);
});

t.test('backend terminated mid-PUT: the call rejects, the process survives, the next PUT works', async (t) => {
  const app = `sluice-test-${randomSchema()}`;
  const { store } = makeStore({ applicationName: app });
  const blocker = new pg.Client({ connectionString: DATABASE_URL });
  t.teardown(async () => {
    await blocker.end().catch(() => undefined);
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
  await blocker.connect();
  // Hold the queue-write lock so the PUT stops inside its transaction, waiting for it.
  await blocker.query('SELECT pg_advisory_lock(hashtext($1))', [`sluice.queues.${store.schema}`]);
  const put = store.putQueue('team-x', {}).then(
    () => null,
    (e: unknown) => e as Error,
  );
  let pids: number[] = [];
  t.ok((await waitFor(async () => (pids = await backendsOf(blocker, app, '%pg_advisory_xact_lock%')).length === 1, 2000)) >= 0, 'PUT waits on the lock');
  await blocker.query('SELECT pg_terminate_backend($1)', [pids[0]]);
  const err = await put;
  t.ok(err instanceof Error, 'the PUT rejects');
  t.match(err?.message, /terminat/i, `with a clear error: ${err?.message}`);
  await blocker.query('SELECT pg_advisory_unlock_all()');
  // Give a crash (an unhandled 'error' event on the checked-out client) the chance to happen.
  await new Promise((r) => setTimeout(r, 200));
  const again = await store.putQueue('team-x', {});
  t.equal(again.created, true, 'the store keeps working; the broken client was not reused');
});
