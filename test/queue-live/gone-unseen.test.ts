// Pods deleted while sluice is stopped: the jobs they belonged to are never seen going, yet
// their records must not stay open for ever. The restarted sluice (serve(), the stand-in
// apiserver, the real Postgres and Redis) closes them once it leads and its cache synced.
import t from 'tap';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { GONE_UNSEEN_REASON } from '../../queue/gone-jobs.js';
import { gpuNode } from '../helpers/k8s.js';
import { randomSchema, waitFor } from '../store/helpers.js';
import { startLive } from './harness.js';

const queues = { q: { limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 8, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }] } };

t.test('pods deleted while sluice was stopped: the restarted leader closes their job records', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  api.create('nodes', gpuNode('g1', { gpus: 8 }));
  const schema = randomSchema();
  const prefix = `g${Date.now().toString(36)}`;

  const first = await startLive({ api, schema, prefix, queues });
  const state = async (job: string) =>
    (
      await first.store.pool.query<{ state: string; reason: string; finished_at: Date | null }>('SELECT state, reason, finished_at FROM jobs WHERE name = $1', [
        job,
      ])
    ).rows;
  first.submit('gone-0', { queue: 'q', gpus: 2, job: 'gone', gang: 2 });
  first.submit('gone-1', { queue: 'q', gpus: 2, job: 'gone', gang: 2 });
  first.submit('stays-0', { queue: 'q', gpus: 2, job: 'stays' });
  t.ok((await waitFor(() => !first.gated('gone-0') && !first.gated('gone-1') && !first.gated('stays-0'), 15000)) >= 0, 'released');
  first.bind('gone-0', 'g1');
  first.bind('gone-1', 'g1');
  first.bind('stays-0', 'g1');
  t.ok(
    (await waitFor(async () => (await state('gone'))[0]?.state === 'running' && (await state('stays'))[0]?.state === 'running', 15000)) >= 0,
    'recorded as running',
  );
  // The store is kept (schema given): close the replica, not the records.
  const store = first.store;
  await first.running.close();

  api.delete('pods', 'team-a', 'gone-0');
  api.delete('pods', 'team-a', 'gone-1');
  t.same(
    (await state('gone')).map((r) => [r.state, r.finished_at]),
    [['running', null]],
    'nobody watched: the record still says running',
  );

  const second = await startLive({ api, schema, prefix });
  t.teardown(async () => {
    await second.close();
    await store.dropSchema().catch(() => undefined);
    await store.close();
  });
  t.ok((await waitFor(async () => (await state('gone'))[0]?.finished_at != null, 20000)) >= 0, 'closed after the restart');
  const [gone] = await state('gone');
  t.equal(gone?.state, 'deleted');
  t.equal(gone?.reason, GONE_UNSEEN_REASON);
  t.same(
    (await state('stays')).map((r) => [r.state, r.finished_at]),
    [['running', null]],
    'the job whose pod is still there keeps running',
  );
  t.ok(
    second.logs.some((l) => String(l.msg).includes('closed 1 job records whose jobs were gone')),
    'logged',
  );
});
