// Job records: one row per job run, updated in place as the job moves on; finishing it
// does not leave a second row behind, and observing a finished job again writes nothing.
import t from 'tap';
import { createLogger } from '../../observability/logger.js';
import { getJob, JobRecorder, type JobRecord } from '../../store/jobs.js';
import { makeStore } from './helpers.js';

const base: JobRecord = {
  namespace: 'team-a', name: 'job-x', queue: 'q', qos: 'guaranteed', user: 'alice', resource: 'nvidia.com/gpu', model: '',
  gangSize: 2, gpusPerPod: 4, gpus: 8, state: 'queued', reason: 'queue q: 8 of 8 guaranteed nvidia.com/gpu in use, job needs 8',
  waitingFor: 'quota', priority: 0, podsSeen: 2, submittedAt: new Date('2026-11-01T10:00:00Z'), releasedAt: null, finishedAt: null,
};

t.test('queued -> running -> finished is one row; a finished job seen again writes nothing', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
  const rec = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  const rows = async () => (await store.pool.query<{ state: string; finished_at: Date | null }>('SELECT state, finished_at FROM jobs ORDER BY id')).rows;

  rec.observe(base);
  await rec.flush();
  t.same((await rows()).map((r) => r.state), ['queued']);
  rec.observe({ ...base, state: 'running', reason: '', waitingFor: '', releasedAt: new Date('2026-11-01T10:05:00Z') });
  await rec.flush();
  t.same((await rows()).map((r) => r.state), ['running'], 'updated in place');
  const finished = { ...base, state: 'finished' as const, reason: '', waitingFor: '', releasedAt: new Date('2026-11-01T10:05:00Z'), finishedAt: new Date('2026-11-01T11:00:00Z') };
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
  t.same((await rows()).map((r) => r.state), ['finished', 'queued'], 'a new run of the job gets its own record');
});

t.test('a job the preemption path closed first keeps that record: the manager adds no second one', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
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
  t.same(rows.map((r) => r.state), ['preempted'], 'one record, and it says preempted');
  const j = await getJob(store.pool, 'lab', 'pod-be-1');
  t.equal(j?.preemptedBy, 'prod/train', 'and by whom');
});
