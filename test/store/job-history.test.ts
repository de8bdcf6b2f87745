// Finished-job history for learned durations (migration 004): the job kind is recorded,
// and finishedDurations reads the run times of finished jobs of one user, queue and kind,
// newest first.
import t from 'tap';
import { createLogger } from '../../observability/logger.js';
import { finishedDurations, JobRecorder, type JobRecord } from '../../store/jobs.js';
import { migratedStore } from './helpers.js';

const base: JobRecord = {
  namespace: 'team-a',
  name: 'job',
  queue: 'q',
  qos: 'guaranteed',
  user: 'alice',
  resource: 'nvidia.com/gpu',
  model: '',
  gangSize: 1,
  gpusPerPod: 1,
  gpus: 1,
  state: 'finished',
  reason: '',
  waitingFor: '',
  priority: 0,
  podsSeen: 1,
  submittedAt: new Date('2026-11-01T10:00:00Z'),
  releasedAt: new Date('2026-11-01T10:00:00Z'),
  finishedAt: new Date('2026-11-01T10:30:00Z'),
  kind: 'Job',
};

t.test('run times of finished jobs like this one, newest first', async (t) => {
  const { store } = await migratedStore(t);
  const rec = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  const at = (h: number): Date => new Date(Date.parse('2026-11-01T10:00:00Z') + h * 3_600_000);
  rec.observe({ ...base, name: 'a', releasedAt: at(0), finishedAt: at(1) });
  rec.observe({ ...base, name: 'b', releasedAt: at(2), finishedAt: at(2.5) });
  rec.observe({ ...base, name: 'other-kind', kind: 'JobSet', releasedAt: at(0), finishedAt: at(5) });
  rec.observe({ ...base, name: 'other-user', user: 'bob' });
  rec.observe({ ...base, name: 'running', state: 'running', finishedAt: null });
  rec.observe({ ...base, name: 'deleted', state: 'deleted' });
  await rec.flush();
  const got = await finishedDurations(store.pool, { queue: 'q', user: 'alice', kind: 'Job' });
  t.same(
    got.map((r) => r.seconds),
    [1800, 3600],
    'b (30 min, newest) then a (1 h); other kinds, users and states left out',
  );
  t.same(
    (await finishedDurations(store.pool, { queue: 'q', user: 'alice', kind: 'JobSet' })).map((r) => r.seconds),
    [18_000],
  );
  t.same(await finishedDurations(store.pool, { queue: 'q', user: 'alice', kind: 'Job' }, 1).then((r) => r.length), 1, 'limit');
});
