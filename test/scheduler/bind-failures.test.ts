// Failed binds are recorded in Postgres (bind_failures) and read by the console's Activity:
// each cause from the real bind path (the re-check, a node that is gone, the apiserver
// refusing the binding), retries folded into one row, a forged request not recorded, old
// rows pruned, and what another namespace's user sees.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { ClusterCache } from '../../cluster/cache.js';
import { readActivity, redactActivity } from '../../console/activity.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { KubeBinder } from '../../scheduler/binder.js';
import { Extender } from '../../scheduler/extender.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';
import { makeStore } from '../store/helpers.js';

t.test('failed binds: recorded per cause, retries counted, forged requests ignored, shown on Activity', async (t) => {
  const { store } = makeStore();
  const api = await StandInApiserver.start();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
    await api.close();
  });
  await store.migrate();
  // A row whose last failure is older than the retention (queue.historyDays): a round of
  // pruning (store/retention.ts, hourly in the background) deletes it.
  await store.pool.query(
    `INSERT INTO bind_failures (first_at, last_at, namespace, pod, pod_uid, node, cause, reason, attempts)
     VALUES (now() - interval '40 days', now() - interval '40 days', 'team-a', 'old', 'uid-old', 'n1', 'rejected', 'long ago', 1)`,
  );

  const node = api.create('nodes', gpuNode('n1', { gpus: 8 }));
  const labels = (job?: string): Record<string, string> => ({ 'sluice.io/queue': 'prod', ...(job ? { 'sluice.io/job': job } : {}) });
  const full = api.create<V1Pod>('pods', gpuPod('full', { node: 'n1', gpus: 6, labels: labels('other') }));
  const train = api.create<V1Pod>('pods', gpuPod('train-0', { gpus: 4, labels: labels('train') }));
  const bare = api.create<V1Pod>('pods', gpuPod('bare', { gpus: 1, labels: labels() }));
  const other = api.create<V1Pod>('pods', {
    ...gpuPod('b-1', { gpus: 1, labels: labels('b') }),
    metadata: { ...gpuPod('b-1').metadata, namespace: 'team-b', labels: labels('b') },
  });
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 100 });
  cache.replaceAll([node], [full, train, bare, other]);
  const ext = new Extender({
    cache,
    binder: new KubeBinder(api.kubeConfig()),
    defaultPolicy: 'binpack',
    log: createLogger('silent'),
    metrics: new Metrics({ defaultMetrics: false }),
    bindFailures: store.bindFailures,
  });
  const bind = (p: V1Pod, node: string, uid = p.metadata!.uid!) =>
    ext.bind({ PodName: p.metadata!.name!, PodNamespace: p.metadata!.namespace!, PodUID: uid, Node: node });

  // 1. The re-check: 2 of n1's 8 GPUs are free, train-0 needs 4. kube-scheduler retries.
  const first = await bind(train, 'n1');
  t.match(first.Error, /2 of 8 nvidia\.com\/gpu free, pod needs 4/);
  await bind(train, 'n1');
  // 2. A node that is gone.
  t.match((await bind(train, 'n9')).Error, /node n9 is/);
  // 3. The apiserver refuses the binding.
  const stop = api.onRequest((r) =>
    r.method === 'POST' && r.path.endsWith('/pods/bare/binding')
      ? { status: 500, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'etcdserver: request timed out', code: 500 } }
      : undefined,
  );
  t.match((await bind(bare, 'n1')).Error, /etcdserver: request timed out/);
  stop();
  t.equal(cache.assumedCount, 0, 'the failed bind is rolled back in the assume ledger');
  // 4. Forged: a UID that is not the pod's. Refused, and not recorded (it could name any namespace).
  t.match((await bind(train, 'n1', 'uid-forged')).Error, /refusing to bind/);
  // 5. Another namespace's failure, for what a team-a user sees.
  await bind(other, 'n9');

  t.equal(await store.bindFailures.flush(), 0, 'everything written');
  t.match(await store.retention.pruneNow(), { bind_failures: 1 }, 'the old row pruned');
  const rows = await store.pool.query<{ pod: string; node: string; cause: string; attempts: number; job: string; queue: string; reason: string }>(
    `SELECT pod, node, cause, attempts, job, queue, reason FROM bind_failures ORDER BY namespace, pod, node`,
  );
  t.same(
    rows.rows.map((r) => [r.pod, r.node, r.cause, r.attempts, r.job, r.queue]),
    [
      ['bare', 'n1', 'api_error', 1, '', 'prod'],
      ['train-0', 'n1', 'rejected', 2, 'train', 'prod'],
      ['train-0', 'n9', 'node_gone', 1, 'train', 'prod'],
      ['b-1', 'n9', 'node_gone', 1, 'b', 'prod'],
    ],
    'one row per pod, node and cause; the retry counted; the old row pruned; the forged bind absent',
  );

  // Retried in a later batch: the same row, two more attempts, the latest reason.
  await bind(train, 'n1');
  await bind(train, 'n1');
  await store.bindFailures.flush();
  const again = await store.pool.query<{ attempts: number; first_at: Date; last_at: Date }>(
    `SELECT attempts, first_at, last_at FROM bind_failures WHERE pod = 'train-0' AND cause = 'rejected'`,
  );
  t.equal(again.rows[0]!.attempts, 4, 'a later batch adds to the row');
  t.ok(again.rows[0]!.last_at > again.rows[0]!.first_at, 'first and last failure kept apart');

  const items = (await readActivity(store.pool, { hours: 24, limit: 100 })).filter((i) => i.kind === 'bind_failed');
  t.equal(items.length, 4);
  const rejected = items.find((i) => i.bind?.cause === 'rejected')!;
  t.match(rejected, { namespace: 'team-a', name: 'train', queue: 'prod', bind: { pod: 'train-0', node: 'n1', attempts: 4 } });
  t.match(rejected.text, /^bind to n1 refused by the re-check: node n1: 2 of 8 nvidia\.com\/gpu free, pod needs 4$/);
  t.match(
    items.find((i) => i.bind?.cause === 'api_error'),
    { name: 'bare', text: /^bind to n1 failed: etcdserver: request timed out$/ },
    'a pod without a job is named by the pod',
  );
  t.match(items.find((i) => i.bind?.cause === 'node_gone' && i.namespace === 'team-a')!.text, /^bind to n9 failed: the node is gone: node n9 is/);
  const seen = redactActivity(items, new Set(['team-a']));
  t.same(seen.map((i) => i.namespace).sort(), ['team-a', 'team-a', 'team-a'], "a team-a user sees team-a's failed binds, not team-b's");
});
