// The queue manager when its dependencies fail: Redis down (releases wait, resume, nothing
// lost, readiness unaffected), Postgres down (releases go on by the last known quotas, job
// records catch up), the apiserver refusing the gate patch (retried).
import t from 'tap';
import { gpuNode } from '../helpers/k8s.js';
import { PgRelay, randomSchema, waitFor } from '../store/helpers.js';
import { submitWarning } from '../../queue/preview.js';
import { startLive } from './harness.js';

const quota = (guaranteed: number) => ({ limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }] });

t.test('Redis down: releases wait and resume when it is back; readiness and the extender are unaffected', async (t) => {
  const relay = new PgRelay('redis://127.0.0.1:6379');
  await relay.start();
  t.teardown(() => relay.stop());
  const live = await startLive({
    nodes: [gpuNode('g1', { gpus: 8 })],
    queues: { q: quota(16) },
    config: { queue: { redisUrl: `redis://127.0.0.1:${relay.port}` } },
  });
  t.teardown(() => live.close());
  live.submit('first', { queue: 'q', gpus: 1 });
  t.ok((await waitFor(() => !live.gated('first'), 15000)) >= 0, 'released while Redis is up');
  await relay.stop();
  const during = live.submit('during', { queue: 'q', gpus: 2 });
  await new Promise((r) => setTimeout(r, 1500));
  t.ok(live.gated('during'), 'held while Redis is down (the release cannot be made durable)');
  const ready = await fetch(`${live.running.opsUrl}/readyz`);
  t.equal(ready.status, 200, '/readyz unaffected');
  // The state is honest: not 'released' while Redis has not taken the order (issue 22, defect 9).
  await waitFor(() => live.running.queue?.jobRecord('team-a', 'pod-during')?.reason.includes('Redis unavailable') === true, 8000);
  const job = (await (await fetch(`${live.running.apiUrl}/api/v1/jobs/team-a/pod-during`, { headers: { authorization: 'Bearer test-token' } })).json()) as {
    state: string;
    waitingFor: string;
    reason: string;
  };
  t.equal(job.state, 'queued', 'the jobs API shows the still-gated job as queued, not released');
  t.equal(job.waitingFor, 'release_queue', 'waiting for the release queue');
  t.match(job.reason, /release pending: Redis unavailable/, 'and says why');
  const warning = submitWarning(
    live.running.queue!.current(),
    { ...during, metadata: { ...during.metadata, name: 'next', labels: { ...during.metadata!.labels, 'sluice.io/job': 'next' } } },
    ['nvidia.com/gpu'],
    Date.now(),
  );
  t.match(warning, /release pending: Redis unavailable/, 'the submit warning says the release is pending');
  t.notMatch(warning ?? '', /released at once/, 'and does not promise it');
  // An outage of ~10 s: bull's default reconnect backoff (e^attempt ms) would next try ~3 s
  // after Redis is back, and its worker waited another 5 s after the error.
  await new Promise((r) => setTimeout(r, 8500));
  await relay.start();
  const back = Date.now();
  t.ok((await waitFor(() => !live.gated('during'), 20000)) >= 0, 'released once Redis is back');
  const tookMs = Date.now() - back;
  t.ok(tookMs < 2500, `released within 2.5 s of Redis coming back (took ${tookMs} ms)`);
});

t.test('Postgres down: releases continue by the last known quotas; job records catch up', async (t) => {
  const relay = new PgRelay();
  await relay.start();
  t.teardown(() => relay.stop());
  const schema = randomSchema();
  const live = await startLive({ schema, nodes: [gpuNode('g1', { gpus: 16 })], queues: { q: quota(8) }, config: { store: { url: relay.url(), schema } } });
  t.teardown(async () => {
    await live.store.dropSchema().catch(() => undefined);
    await live.close();
  });
  for (const n of ['p1', 'p2', 'p3']) live.submit(n, { queue: 'q', gpus: 4 });
  await waitFor(() => !live.gated('p1') && !live.gated('p2'), 15000);
  live.bind('p1', 'g1');
  live.bind('p2', 'g1');
  await new Promise((r) => setTimeout(r, 1500)); // records written
  await relay.stop();
  live.finish('p1');
  t.ok((await waitFor(() => !live.gated('p3'), 15000)) >= 0, 'p3 released with Postgres down: the quota (8) is still known');
  live.bind('p3', 'g1');
  await new Promise((r) => setTimeout(r, 1500));
  const state = async (job: string) =>
    (await live.store.pool.query<{ state: string }>('SELECT state FROM jobs WHERE name = $1 AND finished_at IS NULL', [job])).rows[0]?.state;
  t.not(await state('pod-p3'), 'running', 'while Postgres is down the record cannot say running yet');
  await relay.start();
  t.ok((await waitFor(async () => (await state('pod-p3')) === 'running', 15000)) >= 0, 'the record catches up once Postgres is back');
});

t.test('the apiserver refusing the gate patch (409, 500): retried until the gate is gone', async (t) => {
  const live = await startLive({ nodes: [gpuNode('g1', { gpus: 8 })], queues: { q: quota(8) } });
  t.teardown(() => live.close());
  let refused = 0;
  live.api.onRequest((r) => {
    if (r.method !== 'PATCH' || !r.path.endsWith('/pods/flaky') || refused >= 2) return undefined;
    refused++;
    return refused === 1
      ? { status: 409, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Conflict', code: 409, message: 'the object has been modified' } }
      : { status: 500, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500, message: 'etcd timeout' } };
  });
  live.submit('flaky', { queue: 'q', gpus: 2 });
  t.ok((await waitFor(() => !live.gated('flaky'), 10000)) >= 0, 'released after a conflict and a server error');
  t.equal(refused, 2, 'both refusals were seen');
  const retried = (await live.running.metrics.releaseActions.get()).values.find((v) => v.labels.result === 'retried')?.value ?? 0;
  t.equal(retried, 2, 'counted in sluice_release_actions_total{result="retried"}');
});
