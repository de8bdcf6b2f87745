// Job records left open by jobs whose pods were all deleted while no replica watched: a
// replica that becomes leader closes them once its cache has synced, and only them; the
// real Postgres, the real queue manager, JobRecorder and cluster cache.
import t from 'tap';
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import pg from 'pg';
import { ClusterCache } from '../../cluster/cache.js';
import { SOLE_LEADER } from '../../cluster/leader.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { GONE_UNSEEN_REASON, GoneJobSweep } from '../../queue/gone-jobs.js';
import { QueueManager } from '../../queue/manager.js';
import { JobRecorder, openJobRecords, type JobRecord } from '../../store/jobs.js';
import type { Store } from '../../store/store.js';
import { gpuNode } from '../helpers/k8s.js';
import { DATABASE_URL, makeStore, PgRelay, waitFor } from '../store/helpers.js';
import { GPU, limit, queuedPod } from './helpers.js';

type T = { teardown(fn: () => unknown): void };

const base: JobRecord = {
  namespace: 'team-a',
  name: 'x',
  queue: 'team-a',
  qos: 'guaranteed',
  user: 'alice',
  resource: GPU,
  model: '',
  gangSize: 1,
  gpusPerPod: 1,
  gpus: 1,
  state: 'running',
  reason: '',
  waitingFor: '',
  priority: 0,
  podsSeen: 1,
  submittedAt: new Date('2026-11-01T10:00:00Z'),
  releasedAt: new Date('2026-11-01T10:01:00Z'),
  finishedAt: null,
};

async function migrated(t: T, over: Parameters<typeof makeStore>[0] = {}): Promise<{ store: Store; metrics: Metrics }> {
  const made = makeStore(over);
  t.teardown(async () => {
    await made.store.dropSchema().catch(() => undefined);
    await made.store.close();
  });
  await made.store.migrate();
  return made;
}

/** Records as the leader left them before sluice stopped watching. */
async function recordJobs(store: Store, records: JobRecord[]): Promise<void> {
  const rec = new JobRecorder({ pool: store.pool, log: createLogger('silent') });
  for (const r of records) rec.observe(r);
  await rec.flush();
  if (rec.pending > 0) throw new Error('records not written');
}

interface Row {
  name: string;
  state: string;
  reason: string;
  finished_at: Date | null;
}
const rows = async (store: Store): Promise<Row[]> => (await store.pool.query<Row>('SELECT name, state, reason, finished_at FROM jobs ORDER BY name, id')).rows;
const open = async (store: Store): Promise<string[]> => (await rows(store)).filter((r) => r.finished_at === null).map((r) => r.name);

function manager(t: T, cache: ClusterCache, store: Store, o: { log?: Logger; metrics?: Metrics; resyncSeconds?: number } = {}): QueueManager {
  const m = new QueueManager({
    cache,
    source: { listQueues: () => store.listQueues(), onQueueChanged: () => undefined },
    releaser: null,
    records: new JobRecorder({ pool: store.pool, log: createLogger('silent') }),
    openRecords: openJobRecords(store.pool),
    events: null,
    leadership: SOLE_LEADER,
    log: o.log ?? createLogger('silent'),
    metrics: o.metrics ?? new Metrics({ defaultMetrics: false }),
    backfillGuardSeconds: 600,
    debounceMs: 1,
    resyncSeconds: o.resyncSeconds ?? 3600,
    waitEventIntervalSeconds: 60,
  });
  t.teardown(() => m.stop());
  return m;
}

function lines(): { log: Logger; text: string[] } {
  const text: string[] = [];
  return { log: createLogger('info', new Writable({ write: (c: Buffer, _e, d) => (text.push(c.toString()), d()) })), text };
}

t.test('becoming leader closes the records of jobs with no pod left, and only those', async (t) => {
  const { store } = await migrated(t);
  await store.putQueue('team-a', { limits: [limit({ guaranteed: 8 })] });
  const longPod = 'p'.repeat(253); // its job, pod-<253 chars>, is stored cut: it must still be found
  await recordJobs(store, [
    { ...base, name: 'gone-running' },
    { ...base, name: 'gone-queued', state: 'queued', reason: 'queue team-a: 8 of 8 guaranteed in use', waitingFor: 'quota', releasedAt: null },
    { ...base, name: 'alive' },
    { ...base, name: 'finished-pods-left' },
    { ...base, name: `pod-${longPod}` },
    { ...base, namespace: 'team-b', name: 'alive' }, // same job name, other namespace, no pod
    { ...base, name: 'done-before', state: 'finished', finishedAt: new Date('2026-11-01T11:00:00Z') },
  ]);
  // The preemption path marked this one; its last pod went unseen too.
  await store.pool.query(`UPDATE jobs SET state = 'preempted', preempted_by = 'prod/train' WHERE name = 'gone-running'`);
  const before = (await rows(store)).find((r) => r.name === 'done-before')!;

  const cache = new ClusterCache({ resources: [GPU], assumeTtlMs: 30_000, recentPodWindow: 100 });
  const pods: V1Pod[] = [
    queuedPod('alive-0', { job: 'alive', node: 'g1', phase: 'Running' }),
    queuedPod('finished-pods-left-0', { job: 'finished-pods-left', node: 'g1', phase: 'Succeeded' }),
    queuedPod(longPod, { job: '', node: 'g1', phase: 'Running' }),
  ];
  delete pods[2]!.metadata!.labels!['sluice.io/job']; // a bare pod: its job is pod-<name>
  const metrics = new Metrics({ defaultMetrics: false });
  const { log, text } = lines();
  const m = manager(t, cache, store, { log, metrics });
  await m.start();
  await m.startLeading();
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await open(store)).length, 6, 'the cache has not synced: nothing is closed (every job would look gone)');

  cache.replaceAll([gpuNode('g1', { gpus: 8 })], pods);
  m.trigger('test');
  t.ok((await waitFor(async () => (await open(store)).length === 3, 5000)) >= 0, 'closed once the cache synced');
  const after = await rows(store);
  const of = (name: string) => after.find((r) => r.name === name);
  t.same(
    (await open(store)).map((n) => (n.startsWith('pod-p') ? n.replace(/^pod-p+\.\.\. \(4 more characters cut\)$/, 'pod-<long, stored cut>') : n)),
    ['alive', 'finished-pods-left', 'pod-<long, stored cut>'],
    'jobs with a pod left keep their record (finished pods too: the manager records their end; a name stored cut is matched cut)',
  );
  t.equal(of('gone-queued')?.state, 'deleted');
  t.equal(of('gone-queued')?.reason, GONE_UNSEEN_REASON, 'the reason says what happened');
  t.equal(of('gone-running')?.state, 'preempted', 'a preempted record keeps its state');
  const teamB = (await store.pool.query<Row>(`SELECT name, state, reason, finished_at FROM jobs WHERE namespace = 'team-b'`)).rows[0]!;
  t.equal(teamB.state, 'deleted', 'a job of the same name in another namespace is another job');
  t.ok(teamB.finished_at, 'and is closed');
  t.same(
    after.find((r) => r.name === 'done-before'),
    before,
    'a finished record is untouched',
  );
  const counted = (await metrics.jobRecords.get()).values.find((v) => v.labels.result === 'closed_gone')?.value;
  t.equal(counted, 3, 'counted in sluice_job_records_total{result="closed_gone"}');
  t.ok(
    text.some((l) => l.includes('closed 3 job records whose jobs were gone while sluice was not watching')),
    'logged with the count',
  );

  // Once per leadership: a record left open later is not the sweep's (the manager closes what it sees go).
  await recordJobs(store, [{ ...base, name: 'later' }]);
  m.evaluateNow();
  await new Promise((r) => setTimeout(r, 200));
  t.ok((await open(store)).includes('later'), 'no second sweep within the same leadership');
});

t.test('the sweep reads and closes in bounded pages, and every page is decided against the cache', async (t) => {
  const { store } = await migrated(t);
  const names = Array.from({ length: 23 }, (_, i) => `j${String(i).padStart(2, '0')}`);
  await recordJobs(
    store,
    names.map((name) => ({ ...base, name })),
  );
  const live = new Set(names.filter((_, i) => i % 3 === 0).map((n) => `team-a/${n}`));
  const pages: number[] = [];
  const records = openJobRecords(store.pool);
  const sweep = new GoneJobSweep({
    records: {
      list: async (after, limit) => {
        const page = await records.list(after, limit);
        pages.push(page.records.length);
        return page;
      },
      closeGone: (ids, asOf, reason) => records.closeGone(ids, asOf, reason),
    },
    liveJobs: () => live,
    log: createLogger('silent'),
    batchSize: 5,
    pauseMs: 0,
  });
  t.equal(await sweep.run(new AbortController().signal), 15, 'every gone job closed');
  t.same(pages, [5, 5, 5, 5, 3], 'pages of at most 5 (closed records leave the unfinished set; paging goes on by key)');
  t.same((await open(store)).sort(), [...live].map((k) => k.slice('team-a/'.length)).sort());
});

t.test('a record written after its page was read is not closed (the manager saw a pod meanwhile)', async (t) => {
  const { store } = await migrated(t);
  await recordJobs(store, [
    { ...base, name: 'a' },
    { ...base, name: 'b' },
  ]);
  const records = openJobRecords(store.pool);
  const page = await records.list(null, 10);
  t.same(
    page.records.map((r) => r.name),
    ['a', 'b'],
  );
  await store.pool.query(`UPDATE jobs SET updated_at = clock_timestamp() WHERE name = 'a'`);
  t.equal(
    await records.closeGone(
      page.records.map((r) => r.id),
      page.asOf,
      GONE_UNSEEN_REASON,
    ),
    1,
  );
  t.same(await open(store), ['a'], 'a was written after the read: left open');
});

t.test('with Postgres down the sweep changes nothing and runs again at the next resync', async (t) => {
  const relay = new PgRelay();
  await relay.start();
  t.teardown(() => relay.stop());
  const { store } = await migrated(t, { url: relay.url() });
  const direct = new pg.Pool({ connectionString: DATABASE_URL, max: 1 }); // the same database, not through the relay
  t.teardown(() => direct.end());
  await store.putQueue('team-a', { limits: [limit({ guaranteed: 8 })] });
  await recordJobs(store, [{ ...base, name: 'gone' }]);
  const read = async (): Promise<Row[]> => (await direct.query<Row>(`SELECT name, state, reason, finished_at FROM "${store.schema}".jobs`)).rows;

  const { log, text } = lines();
  const metrics = new Metrics({ defaultMetrics: false });
  const cache = new ClusterCache({ resources: [GPU], assumeTtlMs: 30_000, recentPodWindow: 100 });
  cache.replaceAll([gpuNode('g1', { gpus: 8 })], []);
  const m = manager(t, cache, store, { log, metrics, resyncSeconds: 1 });
  await m.start(); // queues read while Postgres answers
  await relay.stop();
  await m.startLeading();
  t.ok(
    (await waitFor(() => text.some((l) => l.includes('cannot check job records for jobs gone while sluice was not watching')), 10000)) >= 0,
    'the failure is logged',
  );
  t.same(
    (await read()).map((r) => [r.state, r.finished_at]),
    [['running', null]],
    'nothing changed',
  );
  await relay.start();
  t.ok((await waitFor(async () => (await read())[0]?.finished_at !== null, 10000)) >= 0, 'closed at a resync once Postgres answers');
  t.equal((await read())[0]?.reason, GONE_UNSEEN_REASON);
  t.equal(text.filter((l) => l.includes('cannot check job records')).length, 1, 'the failure is logged once, not at every try');
});
