// Quota use of GPU shares as the admin API and `sluice get queues` show it: fractions of a
// GPU (five pods of 0.25 hold 1.25), against a real sluice server (snapshot cluster of HAMi
// nodes, real Postgres store, static token).
import pg from 'pg';
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { runCli } from './run-cli.js';
import { startServer } from '../helpers/server.js';
import { hamiNode, sharePod } from '../helpers/hami-agent.js';
import { DATABASE_URL, randomSchema, waitFor } from '../store/helpers.js';

const TOKEN = 'share-usage-token';
const quarter = (i: number): V1Pod => {
  const p = sharePod(`q${i}`, { percent: 25, cores: 25 });
  p.metadata = {
    ...p.metadata!,
    uid: `uid-q${i}`,
    labels: { 'sluice.io/queue': 'team-a', 'sluice.io/qos': 'guaranteed' },
    annotations: { 'hami.io/vgpu-node': 'h', 'hami.io/bind-phase': 'success', 'hami.io/vgpu-devices-allocated': `GPU-h-${i < 4 ? 0 : 1},NVIDIA,4096,25:;` },
  };
  p.spec!.nodeName = 'h';
  p.status = { phase: 'Running' };
  return p;
};
const schema = randomSchema();
// A whole-GPU job in another queue: its record and describe stay in whole GPUs.
const whole = (): V1Pod => {
  const p = sharePod('w', { gpus: 2, namespace: 'team-b' });
  p.metadata = { ...p.metadata!, uid: 'uid-w', labels: { 'sluice.io/queue': 'team-b', 'sluice.io/qos': 'guaranteed' } };
  p.spec!.nodeName = 'h';
  p.status = { phase: 'Running' };
  return p;
};
const server = await startServer(
  { nodes: [hamiNode('h', { gpus: 2, memMiB: 16384 })], pods: [...[0, 1, 2, 3, 4].map(quarter), whole()] },
  { store: { url: DATABASE_URL, schema }, api: { token: TOKEN, tokenReview: false }, logLevel: 'warn' },
);
t.teardown(async () => {
  await server.close();
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
});
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

t.test('five quarter-GPU pods: usage 1.25 in the API and in get queues', async (t) => {
  t.ok((await waitFor(async () => (await fetch(`${server.api}/api/v1/queues`, { headers: auth })).status === 200, 20000)) >= 0, 'the store is ready');
  const put = await fetch(`${server.api}/api/v1/queues/team-a`, {
    method: 'PUT',
    headers: auth,
    body: JSON.stringify({ limits: [{ resource: 'nvidia.com/gpu', guaranteed: 2 }] }),
  });
  t.ok(put.status === 201 || put.status === 200, `queue created: ${put.status}`);
  const usage = (await (await fetch(`${server.api}/api/v1/queues/team-a/usage`, { headers: auth })).json()) as { totals: unknown };
  t.same(usage.totals, [{ resource: 'nvidia.com/gpu', guaranteed: 1.25, bestEffort: 0 }]);
  const row = (await runCli(['get', 'queues', '--server', server.api, '--token', TOKEN])).split('\n').find((l) => l.startsWith('team-a'));
  t.match(row, /^team-a\s+-\s+1\s+1\.25\/2\s+0\/0\s/);
});

t.test('a quarter-GPU job: 0.25 GPU in its record, the job API and describe job; a whole-GPU job as before', async (t) => {
  const job = async (ns: string, name: string) => {
    let res: Response | undefined;
    await waitFor(async () => (res = await fetch(`${server.api}/api/v1/jobs/${ns}/${name}`, { headers: auth })).status === 200, 20000);
    return (await res!.json()) as { gpus: number; resource: string };
  };
  t.match(await job('team-a', 'pod-q0'), { gpus: 0.25, resource: 'nvidia.com/gpu' }, 'GET /api/v1/jobs: 0.25, not 1 device');
  t.match(await job('team-b', 'pod-w'), { gpus: 2 }, 'whole GPUs unchanged');
  t.match(await runCli(['describe', 'job', 'team-a/q0', '--server', server.api, '--token', TOKEN]), /GPUs:\s+0\.25 nvidia\.com\/gpu\n/);
  t.match(await runCli(['describe', 'job', 'team-b/w', '--server', server.api, '--token', TOKEN]), /GPUs:\s+2 nvidia\.com\/gpu\n/);

  // The records the queue manager wrote (Postgres jobs.gpus).
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  t.teardown(() => c.end());
  const rows = async () =>
    (
      await c.query<{ name: string; gpus: number; gpus_per_pod: number }>(
        `SELECT name, gpus, gpus_per_pod FROM ${schema}.jobs WHERE name IN ('pod-q0', 'pod-w') ORDER BY name`,
      )
    ).rows;
  await waitFor(async () => (await rows()).length === 2, 20000);
  t.same(await rows(), [
    { name: 'pod-q0', gpus: 0.25, gpus_per_pod: 0.25 },
    { name: 'pod-w', gpus: 2, gpus_per_pod: 2 },
  ]);

  // A finished share job known only from its record: the API reads it back as a fraction.
  await c.query(`INSERT INTO ${schema}.jobs (namespace, name, queue, qos, username, resource, gang_size, gpus_per_pod, gpus, state, submitted_at, finished_at)
                 VALUES ('team-a', 'old-eighth', 'team-a', 'guaranteed', 'alice', 'nvidia.com/gpu', 1, 0.125, 0.125, 'finished', now(), now())`);
  t.match(await job('team-a', 'old-eighth'), { gpus: 0.125, resource: 'nvidia.com/gpu' }, 'from Postgres: 0.125');
  t.match(await runCli(['describe', 'job', 'team-a/old-eighth', '--server', server.api, '--token', TOKEN]), /GPUs:\s+0\.125 nvidia\.com\/gpu\n/);
});
