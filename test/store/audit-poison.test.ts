// One record must never stop the admission audit (issue 12, defect 5): a \u0000 in an
// annotation made the whole batch fail in Postgres, retried forever, while every later
// record waited. Real Postgres, schema of its own.
import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../observability/logger.js';
import type { AdmissionRecord } from '../../store/audit.js';
import { MAX_TRIES_PER_RECORD } from '../../store/audit-writer.js';
import { makeStore } from './helpers.js';

const record = (i: number, over: Partial<AdmissionRecord> = {}): AdmissionRecord => ({
  uid: `u${i}`,
  operation: 'CREATE',
  namespace: 'team-a',
  pod: `p${i}`,
  user: 'alice',
  allowed: true,
  code: 200,
  reason: 'within policy',
  dryRun: false,
  ...over,
});

t.test('a \\u0000 in a record is written escaped, and the records after it are written too', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema().catch(() => undefined);
    await store.close();
  });
  await store.migrate();
  store.audit.recordAdmission(record(1));
  store.audit.recordAdmission(record(2, { reason: 'annotation sluice.io/gpu-model "a100\u0000" is not a known model', pod: 'p\u00002' }));
  store.audit.recordAdmission(record(3));
  t.equal(await store.audit.flush(), 0, 'nothing left behind');
  const rows = await store.pool.query<{ request_uid: string; pod: string; reason: string }>(
    'SELECT request_uid, pod, reason FROM admission_decisions ORDER BY request_uid',
  );
  t.same(
    rows.rows.map((r) => r.request_uid),
    ['u1', 'u2', 'u3'],
  );
  t.equal(rows.rows[1]!.reason, 'annotation sluice.io/gpu-model "a100\\u0000" is not a known model', 'NUL kept as the text \\u0000');
  t.equal(rows.rows[1]!.pod, 'p\\u00002');
});

t.test('a record Postgres refuses for its content is dropped after bounded tries; the rest are written', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write: (c: Buffer, _e, d) => (lines.push(c.toString()), d()) }));
  const { store, metrics } = makeStore({ log });
  t.teardown(async () => {
    await store.dropSchema().catch(() => undefined);
    await store.close();
  });
  await store.migrate();
  // An HTTP code past int4: Postgres refuses it (22003), as it refused the NUL byte.
  for (let i = 0; i < 5; i++) store.audit.recordAdmission(record(i, i === 1 || i === 3 ? { code: 2 ** 40 } : {}));
  t.equal(await store.audit.flush(), 0, 'the writer is not stuck');
  for (let i = 5; i < 8; i++) store.audit.recordAdmission(record(i));
  t.equal(await store.audit.flush(), 0, 'later records are written');
  const rows = await store.pool.query<{ request_uid: string }>('SELECT request_uid FROM admission_decisions ORDER BY request_uid');
  t.same(
    rows.rows.map((r) => r.request_uid),
    ['u0', 'u2', 'u4', 'u5', 'u6', 'u7'],
  );
  const values = (await metrics.auditRecords.get()).values;
  t.equal(values.find((v) => v.labels.result === 'rejected')?.value, 2, 'both refused records counted');
  t.equal(values.find((v) => v.labels.result === 'written')?.value, 6);
  const logged = lines.filter((l) => l.includes(`refused by Postgres ${MAX_TRIES_PER_RECORD} times`));
  t.equal(logged.length, 1, 'logged once');
});

t.test('a name past the index row limit is cut, not dropped (issue 22, defect 10)', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema().catch(() => undefined);
    await store.close();
  });
  await store.migrate();
  store.audit.recordAdmission(record(1, { pod: 'p'.repeat(9000), namespace: 'n'.repeat(9000), reason: 'r'.repeat(50_000) }));
  t.equal(await store.audit.flush(), 0, 'written');
  const rows = await store.pool.query<{ pod: string; reason: string }>('SELECT pod, reason FROM admission_decisions');
  t.equal(rows.rows.length, 1);
  t.match(rows.rows[0]!.pod, /^p{253}\.\.\. \(8747 more characters cut\)$/);
  t.match(rows.rows[0]!.reason, /^r{1024}\.\.\. \(48976 more characters cut\)$/);
});
