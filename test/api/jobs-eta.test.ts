// The job routes show the ETA service's estimate: estimatedStartTime and its basis on one
// job, and estimatedStartTime in the queue's waiting list (the CLI's ETA column).
import t from 'tap';
import { fastify } from 'fastify';
import { ApiAuth } from '../../api/auth.js';
import { adminApi } from '../../api/routes.js';
import { createLogger } from '../../observability/logger.js';
import { setup } from '../queue/eta-fixture.js';
import { T0 } from '../queue/helpers.js';

const TOKEN = 'eta-token';

t.test('GET /api/v1/jobs/:ns/:name and the queue list carry the estimate', async (t) => {
  const { cache, manager } = await setup(t);
  const app = fastify();
  t.teardown(() => app.close());
  const log = createLogger('silent');
  await app.register(adminApi, {
    store: null,
    cache,
    auth: new ApiAuth({ token: TOKEN, reviewer: null, adminGroups: [], log }),
    gpuResources: ['nvidia.com/gpu'],
    log,
    queueManager: manager,
  });
  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.statusCode, body: res.json() };
  };
  const job = await get('/api/v1/jobs/team-a/w1');
  t.equal(job.status, 200);
  t.equal(job.body.state, 'queued');
  t.equal(job.body.estimatedStartTime, new Date(T0 + 60 * 60_000).toISOString());
  t.match(job.body.estimatedStart, {
    earliest: new Date(T0 + 60 * 60_000).toISOString(),
    latest: new Date(T0 + 60 * 60_000).toISOString(),
    unknownReason: null,
    basis: { declared: 1, learned: 0, learnedFrom: 0, unknown: 1, summary: 'from 1 declared duration; 1 of unknown duration taken as never ending' },
    expectedDuration: { basis: 'annotation', seconds: 1200, samples: 0 },
  });
  const running = await get('/api/v1/jobs/team-a/r1');
  t.equal(running.body.estimatedStartTime, null, 'a running job has none');
  t.equal(running.body.estimatedStart, null);
  const list = await get('/api/v1/queues/team-a/jobs');
  t.same(
    list.body.waiting.map((w: { name: string; estimatedStartTime: string | null }) => [w.name, w.estimatedStartTime]),
    [['w1', new Date(T0 + 60 * 60_000).toISOString()]],
  );
});
