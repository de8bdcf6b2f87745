// The Preempter with the real Postgres store: the preemptor's guaranteed quota, the records
// (preemptions row, victims' job records), Events on an apiserver stand-in, a node deleted
// while the quota is read, and Postgres down.
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { ClusterCache } from '../../cluster/cache.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { Preempter } from '../../scheduler/preempt.js';
import { kubeEventPoster, PreemptionEvents } from '../../scheduler/preempt-events.js';
import { MAX_PENDING, PENDING_TTL_MS, PendingPreemptions } from '../../scheduler/pending-preemptions.js';
import type { PreemptionRecord, PreemptionSink } from '../../store/preemptions.js';
import type { QueueDirectory } from '../../store/queue-directory.js';
import { gpuNode, gpuPod, kubeConfigFor } from '../helpers/k8s.js';
import { makeStore, waitFor } from '../store/helpers.js';

const R = 'nvidia.com/gpu';
const pod = (name: string, o: { node?: string; gpus: number; qos: 'guaranteed' | 'best-effort'; queue: string; job?: string; owner?: string }): V1Pod => {
  const labels: Record<string, string> = { 'sluice.io/queue': o.queue, 'sluice.io/qos': o.qos, 'sluice.io/user': 'ann' };
  if (o.job) labels['sluice.io/job'] = o.job;
  const p = gpuPod(name, { node: o.node, gpus: o.gpus, uid: `uid-${name}`, labels });
  p.spec!.priority = o.qos === 'guaranteed' ? 1000 : 100;
  if (o.owner) p.metadata!.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: o.owner, uid: `uid-job-${o.owner}`, controller: true }];
  return p;
};

function cluster(): ClusterCache {
  const cache = new ClusterCache({ resources: [R], assumeTtlMs: 30000, recentPodWindow: 100 });
  cache.replaceAll(
    [gpuNode('n1'), gpuNode('n2')],
    [
      pod('g1', { node: 'n1', gpus: 4, qos: 'guaranteed', queue: 'team-b' }),
      pod('be1', { node: 'n1', gpus: 4, qos: 'best-effort', queue: 'team-a', job: 'sweep', owner: 'sweep' }),
      pod('be2', { node: 'n2', gpus: 8, qos: 'best-effort', queue: 'team-a' }),
    ],
  );
  return cache;
}

const logs = (): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(c: Buffer, _e, done) {
      for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('info', sink), lines };
};

const ask = (name: string, gpus: number, queue = 'team-b'): V1Pod => pod(name, { gpus, qos: 'guaranteed', queue });
/** A preemptor that exists: kube-scheduler only sends pods of the cluster, and sluice checks. */
const asked = (cache: ClusterCache, name: string, gpus: number, queue = 'team-b'): V1Pod => {
  const p = ask(name, gpus, queue);
  cache.upsertPod(p);
  return p;
};
const offer = (nodes: Record<string, string[]>) =>
  Object.fromEntries(Object.entries(nodes).map(([n, u]) => [n, { Pods: u.map((UID) => ({ UID })), NumPDBViolations: 0 }]));

t.test('guaranteed quota: within it preempts, over it preempts nothing; records land in Postgres', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
  await store.putQueue('team-b', { limits: [{ resource: R, model: '', guaranteed: 8, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }] });
  await store.putQueue('team-a', { limits: [{ resource: R, model: '', guaranteed: 0, bestEffortCap: 16, perJobMax: 0, perUserMax: 0 }] });
  // An active record for the sweep job, as the queue manager keeps it.
  await store.pool.query(`INSERT INTO jobs (namespace, name, queue, qos, state) VALUES ('team-a', 'sweep', 'team-a', 'best-effort', 'running')`);
  const cache = cluster();
  const metrics = new Metrics({ defaultMetrics: false });
  const { log, lines } = logs();
  const p = new Preempter({ cache, queues: store.queues, sinks: [store.preemptions], log, metrics });

  // team-b holds 4 of its 8: 4 more fit, 8 more do not.
  const over = await p.preempt({ Pod: asked(cache, 'big', 8), NodeNameToMetaVictims: offer({ n2: ['uid-be2'] }) });
  t.same(over, { NodeNameToMetaVictims: {} });
  t.match(lines.at(-1), { outcome: 'over_quota', reason: 'queue team-b uses 4 of its 8 guaranteed nvidia.com/gpu; 8 more would exceed it' });

  const ok = await p.preempt({ Pod: asked(cache, 'train-7', 4), NodeNameToMetaVictims: offer({ n1: ['uid-be1'], n2: ['uid-be2'] }) });
  t.same(ok, { NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) }, 'be1 gives back 4 GPUs, be2 would be 8');
  t.equal(store.preemptions.pending, 0, 'nothing recorded before kube-scheduler deletes the victim');
  cache.deletePod('uid-be1'); // kube-scheduler carries the preemption out
  const missing = await p.preempt({ Pod: asked(cache, 'x', 4, 'nope'), NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) });
  t.same(missing, { NodeNameToMetaVictims: {} }, 'a queue that does not exist preempts nothing');

  t.equal((await waitFor(async () => (await store.preemptions.flush()) === 0, 5000)) >= 0, true);
  const rows = await store.pool.query('SELECT preemptor_pod, queue, node, gpus_freed, gpus_taken_back, victims, reason FROM preemptions');
  t.same(rows.rows, [
    {
      preemptor_pod: 'train-7',
      queue: 'team-b',
      node: 'n1',
      gpus_freed: 4,
      gpus_taken_back: 4,
      victims: [{ namespace: 'team-a', pod: 'be1', uid: 'uid-be1', job: 'sweep', queue: 'team-a', gpus: 4 }],
      reason: 'preempted by team-a/train-7, guaranteed in queue team-b',
    },
  ]);
  const jobs = await store.pool.query(`SELECT name, state, preempted_by, finished_at IS NULL AS active FROM jobs ORDER BY id`);
  t.same(
    jobs.rows,
    [{ name: 'sweep', state: 'preempted', preempted_by: 'team-a/train-7 (queue team-b)', active: true }],
    'the active record is updated, not duplicated',
  );

  // A bare best-effort pod with no record: one is made, finished (a bare pod never comes back).
  await p.preempt({ Pod: asked(cache, 'train-8', 4), NodeNameToMetaVictims: offer({ n2: ['uid-be2'] }) });
  cache.deletePod('uid-be2');
  await store.preemptions.flush();
  const bare = await store.pool.query(`SELECT name, qos, queue, gpus, state, finished_at IS NOT NULL AS finished FROM jobs WHERE name = 'pod-be2'`);
  t.same(bare.rows, [{ name: 'pod-be2', qos: 'best-effort', queue: 'team-a', gpus: 8, state: 'preempted', finished: true }]);
  // The victim's deletion recorded by the queue manager before this batch is written: the
  // closed record becomes 'preempted' (not a second record beside a 'deleted' one).
  await store.pool.query(`INSERT INTO jobs (namespace, name, queue, qos, state) VALUES ('team-a', 'pod-be3', 'team-a', 'best-effort', 'running')`);
  cache.upsertPod(pod('be3', { node: 'n2', gpus: 8, qos: 'best-effort', queue: 'team-a' }));
  await p.preempt({ Pod: asked(cache, 'train-9', 4), NodeNameToMetaVictims: offer({ n2: ['uid-be3'] }) });
  cache.deletePod('uid-be3');
  await store.pool.query(`UPDATE jobs SET state = 'deleted', finished_at = now() + interval '1 second' WHERE name = 'pod-be3'`);
  await store.preemptions.flush();
  const raced = await store.pool.query(`SELECT state, preempted_by, finished_at IS NOT NULL AS finished FROM jobs WHERE name = 'pod-be3'`);
  t.same(raced.rows, [{ state: 'preempted', preempted_by: 'team-a/train-9 (queue team-b)', finished: true }]);
  const m = await metrics.preemptions.get();
  t.same(m.values.map((v) => [v.labels.queue, v.labels.reason, v.value]).sort(), [
    ['nope', 'unknown_queue', 1],
    ['team-b', 'over_quota', 1],
    ['team-b', 'preempted', 3],
  ]);
  t.equal((await metrics.preemptedGpus.get()).values[0]!.value, 20);
});

t.test('Postgres down: preemption of best-effort pods goes on without the quota check, and says so', async (t) => {
  const { store } = makeStore({ url: 'postgres://postgres@127.0.0.1:1/test', timeoutMs: 300 });
  t.teardown(() => store.close());
  const { log, lines } = logs();
  const cache = cluster();
  const p = new Preempter({ cache, queues: store.queues, sinks: [store.preemptions], log, metrics: new Metrics({ defaultMetrics: false }) });
  const r = await p.preempt({ Pod: asked(cache, 'train', 4), NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) });
  cache.deletePod('uid-be1');
  t.same(r, { NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) });
  t.ok(lines.some((l) => typeof l.msg === 'string' && /queue team-b cannot be read .*preempting best-effort pods without a quota check/.test(l.msg)));
  t.equal(store.preemptions.pending, 1, 'the record waits for Postgres; the answer did not');
});

t.test('a node deleted while the quota is read is dropped; the other stays', async (t) => {
  const cache = cluster();
  const queues: QueueDirectory = {
    lookup: async () => {
      cache.deleteNode('n1'); // the watch delivers a node deletion during the await
      return {
        status: 'found',
        queue: {
          name: 'team-b',
          parent: null,
          cohort: null,
          open: true,
          weight: 1,
          limits: [{ resource: R, model: '', guaranteed: 16, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }],
        },
      };
    },
  };
  const p = new Preempter({ cache, queues, sinks: [], log: createLogger('silent'), metrics: new Metrics({ defaultMetrics: false }) });
  const r = await p.preempt({ Pod: asked(cache, 'train', 4), NodeNameToMetaVictims: offer({ n1: ['uid-be1'], n2: ['uid-be2'] }) });
  t.same(r, { NodeNameToMetaVictims: offer({ n2: ['uid-be2'] }) });
});

t.test('Events on the victim and its owner reach the apiserver; a failing apiserver is only logged', async (t) => {
  const got: Array<{ url: string; body: Record<string, unknown> }> = [];
  let fail = false;
  const server = createServer((req: IncomingMessage, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      if (fail) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ kind: 'Status', status: 'Failure', message: 'events is forbidden: User "sluice" cannot create resource "events"', code: 403 }),
        );
        return;
      }
      got.push({ url: `${req.method} ${req.url}`, body: JSON.parse(data) as Record<string, unknown> });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(data);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const kc = kubeConfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const { log, lines } = logs();
  const events: PreemptionSink = new PreemptionEvents(kubeEventPoster(kc), log);
  const cache = cluster();
  const p = new Preempter({
    cache,
    queues: { lookup: async () => ({ status: 'unavailable', reason: 'test' }) },
    sinks: [events],
    log,
    metrics: new Metrics({ defaultMetrics: false }),
  });
  await p.preempt({ Pod: asked(cache, 'train-7', 4), NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) });
  const deleting = pod('be1', { node: 'n1', gpus: 4, qos: 'best-effort', queue: 'team-a', job: 'sweep', owner: 'sweep' });
  deleting.metadata!.deletionTimestamp = new Date();
  cache.upsertPod(deleting);
  t.ok((await waitFor(() => got.length === 2, 3000)) >= 0, 'two Events, once the victim has a deletionTimestamp: pod and owner');
  t.same(got.map((g) => g.url).sort(), ['POST /api/v1/namespaces/team-a/events', 'POST /api/v1/namespaces/team-a/events']);
  const onPod = got.find((g) => (g.body.involvedObject as { kind: string }).kind === 'Pod')!.body;
  t.match(onPod, {
    involvedObject: { kind: 'Pod', name: 'be1', namespace: 'team-a', uid: 'uid-be1' },
    reason: 'PreemptedBySluice',
    type: 'Warning',
    message: 'preempted by team-a/train-7, guaranteed in queue team-b: 4 nvidia.com/gpu on node n1 taken back from this best-effort pod',
  });
  const onJob = got.find((g) => (g.body.involvedObject as { kind: string }).kind === 'Job')!.body;
  t.match(onJob, {
    involvedObject: { kind: 'Job', name: 'sweep', apiVersion: 'batch/v1' },
    message: /^preempted by team-a\/train-7, guaranteed in queue team-b: pod be1 on node n1 deleted/,
  });

  fail = true;
  const r = await p.preempt({ Pod: asked(cache, 'train-8', 8), NodeNameToMetaVictims: offer({ n2: ['uid-be2'] }) });
  t.same(r, { NodeNameToMetaVictims: offer({ n2: ['uid-be2'] }) }, 'the answer does not depend on the Event');
  cache.deletePod('uid-be2');
  t.ok(
    (await waitFor(() => lines.some((l) => /cannot create the preemption Event on Pod team-a\/be2 \(events is forbidden/.test(String(l.msg))), 3000)) >= 0,
    "the failure is logged with the apiserver's reason",
  );
});

t.test('a forged preempt records nothing; a real one is recorded once kube-scheduler deletes a victim (issue 22, defect 4)', async (t) => {
  const recorded: PreemptionRecord[] = [];
  const sink: PreemptionSink = { recordPreemption: (r) => recorded.push(r) };
  const cache = cluster();
  const apiserver = new Map<string, V1Pod>();
  const readPod = async (namespace: string, name: string): Promise<V1Pod> => {
    const p = apiserver.get(`${namespace}/${name}`);
    if (!p) throw Object.assign(new Error(`pods "${name}" not found`), { code: 404 });
    return p;
  };
  const { log, lines } = logs();
  const metrics = new Metrics({ defaultMetrics: false });
  const p = new Preempter({ cache, readPod, queues: { lookup: async () => ({ status: 'unavailable', reason: 'test' }) }, sinks: [sink], log, metrics });

  const forged = await p.preempt({ Pod: ask('made-up', 4), NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) });
  t.same(forged, { NodeNameToMetaVictims: {} }, 'a made-up preemptor preempts nothing');
  t.match(lines.at(-1), { outcome: 'unknown_preemptor', reason: /cannot read the preemptor team-a\/made-up from the apiserver \(pods "made-up" not found\)/ });
  const other = ask('renamed', 4);
  other.metadata!.uid = 'uid-g1'; // the UID of another pod of the cluster
  t.same(
    await p.preempt({ Pod: other, NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) }),
    { NodeNameToMetaVictims: {} },
    "another pod's UID preempts nothing",
  );
  t.match(lines.at(-1), { outcome: 'unknown_preemptor', reason: /pod uid-g1 is team-a\/g1, not team-a\/renamed/ });
  const stale = ask('recreated', 4);
  apiserver.set('team-a/recreated', { ...stale, metadata: { ...stale.metadata, uid: 'uid-new' } });
  t.same(
    await p.preempt({ Pod: stale, NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) }),
    { NodeNameToMetaVictims: {} },
    'a UID the apiserver does not have preempts nothing',
  );
  t.match(lines.at(-1), { outcome: 'unknown_preemptor', reason: /has UID uid-new at the apiserver, not uid-recreated/ });

  // A real preemptor the informer has not delivered yet: read from the apiserver.
  const real = ask('train-7', 4);
  apiserver.set('team-a/train-7', real);
  t.same(
    await p.preempt({ Pod: real, NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) }),
    { NodeNameToMetaVictims: offer({ n1: ['uid-be1'] }) },
    'a pod of the cluster preempts',
  );
  await new Promise((r) => setTimeout(r, 50));
  t.same(recorded, [], 'nothing recorded while kube-scheduler has not acted on it');
  cache.upsertPod(pod('be1', { node: 'n1', gpus: 4, qos: 'best-effort', queue: 'team-a', job: 'sweep', owner: 'sweep' })); // an update that is no deletion
  t.same(recorded, [], 'nor after an update that deletes nothing');
  cache.deletePod('uid-be1');
  t.equal(recorded.length, 1, 'recorded when the victim is deleted');
  t.match(recorded[0], { preemptor: { pod: 'train-7' }, node: 'n1', victims: [{ pod: 'be1' }] });
  cache.upsertPod(pod('be1', { node: 'n1', gpus: 4, qos: 'best-effort', queue: 'team-a' }));
  cache.deletePod('uid-be1');
  t.equal(recorded.length, 1, 'once');
  const m = await metrics.preemptions.get();
  t.same(m.values.map((v) => [v.labels.reason, v.value]).sort(), [
    ['preempted', 1],
    ['unknown_preemptor', 3],
  ]);
});

t.test('decisions kube-scheduler never carries out expire, and at most MAX_PENDING wait', async (t) => {
  let now = 1_000_000;
  const pending = new PendingPreemptions(() => now);
  const record = (victim: string): PreemptionRecord => ({
    at: new Date(now),
    preemptor: { namespace: 'team-b', pod: 'p', uid: 'uid-p', job: 'j', queue: 'team-b' },
    node: 'n1',
    resource: R,
    gpusFreed: 1,
    gpusTakenBack: 1,
    reason: 'r',
    victims: [{ namespace: 'team-a', pod: victim, uid: `uid-${victim}`, job: '', queue: 'team-a', user: '', gpus: 1, gangSize: 1, owner: null }],
  });
  const gone = (victim: string) => ({ kind: 'pod' as const, uid: `uid-${victim}`, before: undefined, after: undefined });
  pending.add(record('old'));
  now += PENDING_TTL_MS + 1;
  t.equal(pending.carriedOut(gone('old')), null, 'a deletion after the expiry records nothing');
  for (let i = 0; i < MAX_PENDING + 5; i++) pending.add(record(`v${i}`));
  t.equal(pending.size, MAX_PENDING, 'bounded');
  t.equal(pending.carriedOut(gone('v0')), null, 'the oldest were dropped');
  t.ok(pending.carriedOut(gone(`v${MAX_PENDING + 4}`)), 'the newest wait');
});

t.test('best-effort pods running past their time are reclaimed first: past the queue maxDuration, or past their declared duration', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
  await store.putQueue('team-b', { limits: [{ resource: R, model: '', guaranteed: 16, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }] });
  await store.putQueue('team-a', {
    limits: [{ resource: R, model: '', guaranteed: 0, bestEffortCap: 16, perJobMax: 0, perUserMax: 0 }],
    maxDurationSeconds: 3600,
  });
  const NOW = Date.parse('2026-12-01T12:00:00Z');
  const started = (p: V1Pod, minutesAgo: number, declared?: string): V1Pod => {
    p.status = { ...p.status, startTime: new Date(NOW - minutesAgo * 60_000) };
    if (declared) p.metadata!.annotations = { ...p.metadata!.annotations, 'sluice.io/expected-duration': declared };
    return p;
  };
  const cache = new ClusterCache({ resources: [R], assumeTtlMs: 30000, recentPodWindow: 100 });
  cache.replaceAll(
    [gpuNode('n1'), gpuNode('n2')],
    [
      pod('g1', { node: 'n1', gpus: 2, qos: 'guaranteed', queue: 'team-b' }),
      started(pod('fresh', { node: 'n1', gpus: 2, qos: 'best-effort', queue: 'team-a' }), 10),
      started(pod('past-max', { node: 'n1', gpus: 4, qos: 'best-effort', queue: 'team-a' }), 120), // 2 h, queue allows 1 h
      pod('g2', { node: 'n2', gpus: 2, qos: 'guaranteed', queue: 'team-b' }),
      started(pod('fresh2', { node: 'n2', gpus: 2, qos: 'best-effort', queue: 'team-a' }), 10, '2h'),
      started(pod('past-declared', { node: 'n2', gpus: 4, qos: 'best-effort', queue: 'team-a' }), 45, '30m'), // within the 1 h, past its own 30 min
    ],
  );
  const { log, lines } = logs();
  const p = new Preempter({ cache, queues: store.queues, sinks: [], log, metrics: new Metrics({ defaultMetrics: false }), now: () => NOW });
  const one = await p.preempt({ Pod: asked(cache, 'train-1', 2), NodeNameToMetaVictims: offer({ n1: ['uid-fresh'] }) });
  t.same(
    one,
    { NodeNameToMetaVictims: offer({ n1: ['uid-past-max'] }) },
    'the pod past the queue maxDuration goes, though it takes back 4 GPUs where fresh takes back 2',
  );
  t.match(lines.at(-1), { victims: ['team-a/past-max'], gpusTakenBack: 4 });
  const two = await p.preempt({ Pod: asked(cache, 'train-2', 2), NodeNameToMetaVictims: offer({ n2: ['uid-fresh2'] }) });
  t.same(two, { NodeNameToMetaVictims: offer({ n2: ['uid-past-declared'] }) }, 'the pod past its declared 30m goes first');
  // Within their time (the clock 65 minutes earlier: past-max has run 55 of its 60), the fewest GPUs taken back decide again.
  const early = new Preempter({ cache, queues: store.queues, sinks: [], log, metrics: new Metrics({ defaultMetrics: false }), now: () => NOW - 65 * 60_000 });
  const three = await early.preempt({ Pod: asked(cache, 'train-3', 2), NodeNameToMetaVictims: offer({ n1: ['uid-fresh'], n2: ['uid-fresh2'] }) });
  t.same(
    Object.values(three.NodeNameToMetaVictims ?? {}).flatMap((v) => v.Pods.map((x) => x.UID)),
    ['uid-fresh'],
    'nothing overdue: 2 GPUs taken back beat 4 (fresh is the smaller UID list of the two equal nodes)',
  );
});
