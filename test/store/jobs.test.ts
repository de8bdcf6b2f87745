// Job records: one row per job run, updated in place as the job moves on; finishing it
// does not leave a second row behind, and observing a finished job again writes nothing.
import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../observability/logger.js';
import { MAX_TRIES_PER_RECORD } from '../../store/audit-writer.js';
import { getJob, JobRecorder, type JobRecord } from '../../store/jobs.js';
import { insertPreemptions } from '../../store/preemptions.js';
import { makeStore, migratedStore } from './helpers.js';

const base: JobRecord = {
  namespace: 'team-a',
  name: 'job-x',
  queue: 'q',
  qos: 'guaranteed',
  user: 'alice',
  resource: 'nvidia.com/gpu',
  model: '',
  gangSize: 2,
  gpusPerPod: 4,
  gpus: 8,
  state: 'queued',
  reason: 'queue q: 8 of 8 guaranteed nvidia.com/gpu in use, job needs 8',
  waitingFor: 'quota',
  priority: 0,
  podsSeen: 2,
  submittedAt: new Date('2026-11-01T10:00:00Z'),
  releasedAt: null,
  finishedAt: null,
};

t.test('queued -> running -> finished is one row; a finished job seen again writes nothing', async (t) => {
  const { store } = await migratedStore(t);
  const rec = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  const rows = async () => (await store.pool.query<{ state: string; finished_at: Date | null }>('SELECT state, finished_at FROM jobs ORDER BY id')).rows;

  rec.observe(base);
  await rec.flush();
  t.same(
    (await rows()).map((r) => r.state),
    ['queued'],
  );
  rec.observe({ ...base, state: 'running', reason: '', waitingFor: '', releasedAt: new Date('2026-11-01T10:05:00Z') });
  await rec.flush();
  t.same(
    (await rows()).map((r) => r.state),
    ['running'],
    'updated in place',
  );
  const finished = {
    ...base,
    state: 'finished' as const,
    reason: '',
    waitingFor: '',
    releasedAt: new Date('2026-11-01T10:05:00Z'),
    finishedAt: new Date('2026-11-01T11:00:00Z'),
  };
  rec.observe(finished);
  await rec.flush();
  rec.observe({ ...finished });
  await rec.flush();
  const after = await rows();
  t.equal(after.length, 1, 'still one row');
  t.equal(after[0]!.state, 'finished');
  t.ok(after[0]!.finished_at, 'finished_at set');
  const j = await getJob(store.pool, 'team-a', 'job-x');
  t.equal(j?.state, 'finished', 'the API reads it as finished');

  // A restart: a new recorder sees the same finished job (its pod still exists) - no second row.
  const again = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  again.observe({ ...finished });
  await again.flush();
  t.equal((await rows()).length, 1, 'a restart does not duplicate a finished record');

  // The same job name run again later is a new record.
  again.observe({ ...base, submittedAt: new Date('2026-11-02T10:00:00Z') });
  await again.flush();
  t.same(
    (await rows()).map((r) => r.state),
    ['finished', 'queued'],
    'a new run of the job gets its own record',
  );
});

t.test('a job the preemption path closed first keeps that record: the manager adds no second one', async (t) => {
  const { store } = await migratedStore(t);
  // As store/preemptions.ts writes it when no record exists yet: finished, preempted.
  await store.pool.query(
    `INSERT INTO jobs (namespace, name, queue, qos, state, reason, submitted_at, finished_at, preempted_by, preempted_at)
     VALUES ('lab', 'pod-be-1', 'lab', 'best-effort', 'preempted', 'preempted by prod/train', now(), now(), 'prod/train', now())`,
  );
  const rec = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  const seen = { ...base, namespace: 'lab', name: 'pod-be-1', qos: 'best-effort' as const, submittedAt: new Date(Date.now() - 800) };
  rec.observe({ ...seen, state: 'deleted', reason: '', waitingFor: '', finishedAt: new Date() });
  await rec.flush();
  // The pod is still terminating when the manager looks again: it writes no new active record.
  rec.observe({ ...seen, state: 'running', reason: '', waitingFor: '' });
  await rec.flush();
  const rows = (await store.pool.query<{ state: string }>(`SELECT state FROM jobs WHERE name = 'pod-be-1'`)).rows;
  t.same(
    rows.map((r) => r.state),
    ['preempted'],
    'one record, and it says preempted',
  );
  const j = await getJob(store.pool, 'lab', 'pod-be-1');
  t.equal(j?.preemptedBy, 'prod/train', 'and by whom');
});

// Issue 22, defect 2: a U+0000 in a pod annotation failed the whole batch in Postgres
// ("unsupported Unicode escape sequence"); the record stayed first in line, so every later
// batch failed too, and silently. Now: escaped, and no record blocks the others.
t.test('a U+0000 or a lone surrogate is escaped; the jobs after it are written', async (t) => {
  const { store, metrics } = await migratedStore(t);
  const rec = new JobRecorder({ pool: store.pool, log: createLogger('silent'), metrics });
  rec.observe({ ...base, name: 'poisoned', model: 'NVIDIA-A100-SXM4-80GB,\u0000x' });
  rec.observe({ ...base, name: 'surrogate', user: 'al\ud800ice' });
  await rec.flush();
  for (let i = 1; i <= 4; i++) rec.observe({ ...base, name: `later-${i}` });
  await rec.flush();
  t.equal(rec.pending, 0, 'nothing left behind');
  const rows = (await store.pool.query<{ name: string; model: string; username: string }>('SELECT name, model, username FROM jobs ORDER BY id')).rows;
  t.same(
    rows.map((r) => r.name),
    ['poisoned', 'surrogate', 'later-1', 'later-2', 'later-3', 'later-4'],
  );
  t.equal(rows[0]!.model, 'NVIDIA-A100-SXM4-80GB,\\u0000x', 'NUL kept as the text \\u0000');
  t.equal(rows[1]!.username, 'al\ufffdice', 'a lone surrogate becomes U+FFFD');
  const rewritten = (await metrics.storeValuesRewritten.get()).values;
  t.equal(rewritten.find((v) => v.labels.records === 'jobs' && v.labels.change === 'escaped')?.value, 2, 'both escapes counted');
});

t.test('a record Postgres refuses for its content is dropped after bounded tries, logged and counted; it blocks no other', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write: (c: Buffer, _e, d) => (lines.push(c.toString()), d()) }));
  const { store, metrics } = await migratedStore(t);
  const rec = new JobRecorder({ pool: store.pool, log, metrics });
  // A gang size past int4: Postgres refuses it (22003) as it refused the NUL byte.
  rec.observe({ ...base, name: 'too-big', gangSize: 2 ** 40 });
  rec.observe({ ...base, name: 'fine-1' });
  await rec.flush();
  const names = async () => (await store.pool.query<{ name: string }>('SELECT name FROM jobs ORDER BY id')).rows.map((r) => r.name);
  t.same(await names(), ['fine-1'], 'the good record of the same batch is written at once');
  for (let i = 2; i <= 4; i++) {
    rec.observe({ ...base, name: `fine-${i}` });
    await rec.flush();
  }
  t.same(await names(), ['fine-1', 'fine-2', 'fine-3', 'fine-4'], 'every later batch is written');
  t.equal(rec.pending, 0, `the refused record is dropped after ${MAX_TRIES_PER_RECORD} tries`);
  const values = (await metrics.jobRecords.get()).values;
  t.equal(values.find((v) => v.labels.result === 'rejected')?.value, 1, 'counted');
  t.equal(values.find((v) => v.labels.result === 'written')?.value, 4);
  t.equal(lines.filter((l) => l.includes('the job record of team-a/too-big (state queued) was refused by Postgres')).length, 1, 'logged once, naming the job');
  rec.observe({ ...base, name: 'too-big', gangSize: 2 });
  await rec.flush();
  t.same(await names(), ['fine-1', 'fine-2', 'fine-3', 'fine-4', 'too-big'], 'a later change of the job is written');
});

t.test('a preemption record holding a U+0000 is written escaped, its job record too', async (t) => {
  const { store } = await migratedStore(t);
  const victim = { namespace: 'lab', pod: 'be-0', uid: 'u-be-0', job: 'be\u0000job', queue: 'lab', user: 'bob', gpus: 2, gangSize: 1, owner: null };
  await insertPreemptions(store.pool, [
    {
      at: new Date(),
      preemptor: { namespace: 'prod', pod: 'train\u0000', uid: 'u-train', job: '', queue: 'prod' },
      node: 'gpu-node-1',
      resource: 'nvidia.com/gpu',
      gpusFreed: 2,
      gpusTakenBack: 2,
      reason: 'preempted by prod/train\u0000',
      victims: [victim],
    },
  ]);
  const p = (await store.pool.query<{ preemptor_pod: string }>('SELECT preemptor_pod FROM preemptions')).rows;
  t.same(
    p.map((r) => r.preemptor_pod),
    ['train\\u0000'],
  );
  const j = await getJob(store.pool, 'lab', 'be\\u0000job');
  t.equal(j?.state, 'preempted');
});

t.test('GPU shares: a job record keeps GPU-equivalents (a quarter GPU is 0.25); migration 7 keeps whole-GPU records', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  // The schema as it was before migration 7 (integer GPU columns), with a whole-GPU record.
  const { MIGRATIONS } = await import('../../store/migrations/index.js');
  await store.migrate(MIGRATIONS.filter((m) => m.id < 7));
  const before = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  before.observe(base);
  await before.flush();
  t.equal((await store.migrate()).version, 7);
  const whole = await getJob(store.pool, 'team-a', 'job-x');
  t.same([whole?.gpus, whole?.gpusPerPod], [8, 4], 'a whole-GPU record is unchanged by the migration');

  const rec = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  const share: JobRecord = {
    ...base,
    name: 'quarters',
    gangSize: 4,
    gpusPerPod: 0.25,
    gpus: 1,
    state: 'running',
    reason: '',
    waitingFor: '',
    releasedAt: new Date('2026-11-01T10:01:00Z'),
  };
  rec.observe({
    ...base,
    name: 'quarter',
    gangSize: 1,
    gpusPerPod: 0.25,
    gpus: 0.25,
    state: 'running',
    reason: '',
    waitingFor: '',
    releasedAt: new Date('2026-11-01T10:01:00Z'),
  });
  rec.observe(share);
  await rec.flush();
  const q = await getJob(store.pool, 'team-a', 'quarter');
  t.same([q?.gpus, q?.gpusPerPod], [0.25, 0.25], 'one pod of a quarter GPU: 0.25, not 1');
  const four = await getJob(store.pool, 'team-a', 'quarters');
  t.same([four?.gpus, four?.gpusPerPod], [1, 0.25], 'four of them: 1');
  // An update changes the fraction in place (a share that grew from a quarter to an eighth more).
  rec.observe({ ...share, gpus: 1.125, podsSeen: 5 });
  await rec.flush();
  t.equal((await getJob(store.pool, 'team-a', 'quarters'))?.gpus, 1.125);

  // A share victim with no record yet: the preemption path writes its record in the same terms.
  const victim = (pod: string) => ({
    namespace: 'lab',
    pod,
    uid: `u-${pod}`,
    job: 'be-shares',
    queue: 'lab',
    user: 'bob',
    gpus: 1,
    share: 0.125,
    gangSize: 2,
    owner: null,
  });
  await insertPreemptions(store.pool, [
    {
      at: new Date(),
      preemptor: { namespace: 'prod', pod: 'train', uid: 'u-train', job: 'train', queue: 'prod' },
      node: 'h',
      resource: 'nvidia.com/gpu',
      gpusFreed: 0.25,
      gpusTakenBack: 0.25,
      reason: 'preempted by prod/train',
      victims: [victim('be-0'), victim('be-1')],
    },
  ]);
  const be = await getJob(store.pool, 'lab', 'be-shares');
  t.same([be?.state, be?.gpus, be?.gpusPerPod], ['preempted', 0.25, 0.125], 'two eighths: 0.25, not 2 devices');
});
