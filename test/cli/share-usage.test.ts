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
  p.metadata = { ...p.metadata!, uid: `uid-q${i}`, labels: { 'sluice.io/queue': 'team-a', 'sluice.io/qos': 'guaranteed' }, annotations: { 'hami.io/vgpu-node': 'h', 'hami.io/bind-phase': 'success', 'hami.io/vgpu-devices-allocated': `GPU-h-${i < 4 ? 0 : 1},NVIDIA,4096,25:;` } };
  p.spec!.nodeName = 'h';
  p.status = { phase: 'Running' };
  return p;
};
const schema = randomSchema();
const server = await startServer({ nodes: [hamiNode('h', { gpus: 2, memMiB: 16384 })], pods: [0, 1, 2, 3, 4].map(quarter) }, { store: { url: DATABASE_URL, schema }, api: { token: TOKEN, tokenReview: false }, logLevel: 'warn' });
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
  const put = await fetch(`${server.api}/api/v1/queues/team-a`, { method: 'PUT', headers: auth, body: JSON.stringify({ limits: [{ resource: 'nvidia.com/gpu', guaranteed: 2 }] }) });
  t.ok(put.status === 201 || put.status === 200, `queue created: ${put.status}`);
  const usage = (await (await fetch(`${server.api}/api/v1/queues/team-a/usage`, { headers: auth })).json()) as { totals: unknown };
  t.same(usage.totals, [{ resource: 'nvidia.com/gpu', guaranteed: 1.25, bestEffort: 0 }]);
  const row = (await runCli(['get', 'queues', '--server', server.api, '--token', TOKEN])).split('\n').find((l) => l.startsWith('team-a'));
  t.match(row, /^team-a\s+-\s+1\s+1\.25\/2\s+0\/0\s/);
});
