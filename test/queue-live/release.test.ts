// The queue manager in a cluster (stand-in apiserver, real Postgres and Redis): gated
// pods are released within quota and capacity, the rest wait with their reason, and
// freeing capacity releases the next one at once.
import t from 'tap';
import { gpuNode } from '../helpers/k8s.js';
import { waitFor } from '../store/helpers.js';
import { startLive } from './harness.js';

const quota = (guaranteed: number, extra: Record<string, number> = {}) => ({
  limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed, bestEffortCap: 16, perJobMax: 0, perUserMax: 0, ...extra }],
});

t.test('releases within quota, holds the rest, releases the next when a pod finishes', async (t) => {
  const live = await startLive({ nodes: [gpuNode('g1', { gpus: 8 }), gpuNode('g2', { gpus: 8 })], queues: { 'team-a': quota(8) } });
  t.teardown(() => live.close());
  for (const n of ['p1', 'p2', 'p3']) live.submit(n, { queue: 'team-a', gpus: 4 });
  t.ok((await waitFor(() => !live.gated('p1') && !live.gated('p2'), 15000)) >= 0, 'p1 and p2 released (8 of 8 guaranteed)');
  await new Promise((r) => setTimeout(r, 300));
  t.ok(live.gated('p3'), 'p3 still gated: quota full');
  const snap = live.running.queue!.current()!;
  const w = snap.waiting.get('team-a')!;
  t.equal(w.length, 1);
  t.equal(w[0]!.waitingFor, 'quota');
  t.match(w[0]!.reason, /8 of 8 guaranteed nvidia.com\/gpu in use, job needs 4/);

  // The patch removed only sluice's gate, testing uid and position first.
  const patches = live.api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/pods/p1'));
  t.equal(patches.length, 1, 'one patch for p1');
  t.same(
    (patches[0]!.body as Array<{ op: string }>).map((o) => o.op),
    ['test', 'test', 'remove'],
  );

  live.bind('p1', 'g1');
  live.bind('p2', 'g1');
  const start = Date.now();
  live.finish('p1');
  t.ok((await waitFor(() => !live.gated('p3'), 15000)) >= 0, 'p3 released once p1 finished');
  t.comment(`gate removed ${Date.now() - start} ms after the pod finished`);
  await live.running.queue!.current();
});

t.test('capacity, not quota: a job waits for a node with room, and best-effort waits for idle GPUs', async (t) => {
  const live = await startLive({ nodes: [gpuNode('g1', { gpus: 8 })], queues: { big: quota(100) } });
  t.teardown(() => live.close());
  live.submit('a', { queue: 'big', gpus: 6 });
  await waitFor(() => !live.gated('a'), 15000);
  live.bind('a', 'g1');
  live.submit('b', { queue: 'big', gpus: 4 });
  live.submit('c', { queue: 'big', gpus: 2, qos: 'best-effort' });
  await waitFor(() => !live.gated('c'), 15000);
  t.notOk(live.gated('c'), 'c (2, best-effort) fits the 2 idle GPUs: backfilled past b');
  t.ok(live.gated('b'), 'b (4) waits: only 2 free');
  const w = live.running.queue!.current()!.waiting.get('big')!;
  t.equal(w[0]!.unit.job, 'pod-b');
  t.equal(w[0]!.waitingFor, 'capacity');
  t.match(w[0]!.reason, /no node has 4 nvidia.com\/gpu free now/);
});

t.test('a gang is released whole, only once every pod exists', async (t) => {
  const live = await startLive({ nodes: [gpuNode('g1', { gpus: 8 }), gpuNode('g2', { gpus: 8 })], queues: { 'team-a': quota(16) } });
  t.teardown(() => live.close());
  for (const n of ['w0', 'w1', 'w2']) live.submit(n, { queue: 'team-a', gpus: 4, job: 'job-train', gang: 4 });
  await new Promise((r) => setTimeout(r, 300));
  t.ok(
    ['w0', 'w1', 'w2'].every((n) => live.gated(n)),
    'three of four: all held',
  );
  const w = live.running.queue!.current()!.waiting.get('team-a')!;
  t.equal(w[0]!.reason, 'gang: 3 of 4 pods seen; the job starts when all 4 exist');
  live.submit('w3', { queue: 'team-a', gpus: 4, job: 'job-train', gang: 4 });
  t.ok((await waitFor(() => ['w0', 'w1', 'w2', 'w3'].every((n) => !live.gated(n)), 15000)) >= 0, 'all four released');
});
