// The preempt verb for GPU shares with the real Postgres store: a guaranteed share's quota
// counts fractions of a GPU, the victims are the best-effort shares that make room on a GPU
// with the fewest GPU-equivalents, and the record keeps the fractions.
import t from 'tap';
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { ClusterCache } from '../../cluster/cache.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { Preempter } from '../../scheduler/preempt.js';
import { hamiNode } from '../helpers/hami-agent.js';
import { makeStore, waitFor } from '../store/helpers.js';

const R = 'nvidia.com/gpu';
const NAMES = { resource: R, memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' };
const MIB = 16000;

/** A share pod of `memMiB`; bound to GPU `gpu` of node h when given (allocated by the plugin). */
function share(name: string, memMiB: number, o: { qos: 'guaranteed' | 'best-effort'; queue: string; gpu?: number; started?: string }): V1Pod {
  const bound = o.gpu !== undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'team-a',
      uid: `uid-${name}`,
      labels: { 'sluice.io/queue': o.queue, 'sluice.io/qos': o.qos, 'sluice.io/user': 'ann' },
      annotations: bound
        ? { 'hami.io/vgpu-node': 'h', 'hami.io/bind-phase': 'success', 'hami.io/vgpu-devices-allocated': `GPU-h-${o.gpu},NVIDIA,${memMiB},0:;` }
        : {},
    },
    spec: {
      ...(bound ? { nodeName: 'h' } : {}),
      priority: o.qos === 'guaranteed' ? 1000 : 100,
      containers: [{ name: 'main', image: 'x', resources: { limits: { [R]: '1', [NAMES.memory]: String(memMiB) } } }],
    },
    status: { phase: bound ? 'Running' : 'Pending', ...(o.started ? { startTime: o.started as unknown as Date } : {}) },
  } as V1Pod;
}
const offer = (uids: string[]) => ({ h: { Pods: uids.map((UID) => ({ UID })), NumPDBViolations: 0 } });

t.test('a guaranteed share preempts the best-effort shares with the fewest GPU-equivalents, within its fractional quota', async (t) => {
  const { store } = makeStore();
  t.teardown(async () => {
    await store.dropSchema();
    await store.close();
  });
  await store.migrate();
  await store.putQueue('team-b', { limits: [{ resource: R, model: '', guaranteed: 1, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }] });
  await store.putQueue('team-a', { limits: [{ resource: R, model: '', guaranteed: 0, bestEffortCap: 4, perJobMax: 0, perUserMax: 0 }] });
  const cache = new ClusterCache({ resources: [R], assumeTtlMs: 30000, recentPodWindow: 100, sharing: { names: NAMES, handshakeTimeoutMs: 60000 } });
  // One GPU of 16000 MiB, full: team-b's guaranteed 0.5, best-effort 0.25 (b1), 0.125 + 0.125 (s1, s2).
  cache.replaceAll(
    [hamiNode('h', { gpus: 1, memMiB: MIB, split: 10 })],
    [
      share('g1', 8000, { qos: 'guaranteed', queue: 'team-b', gpu: 0 }),
      share('b1', 4000, { qos: 'best-effort', queue: 'team-a', gpu: 0, started: '2026-12-01T10:00:00Z' }),
      share('s1', 2000, { qos: 'best-effort', queue: 'team-a', gpu: 0, started: '2026-12-01T11:00:00Z' }),
      share('s2', 2000, { qos: 'best-effort', queue: 'team-a', gpu: 0, started: '2026-12-01T11:00:00Z' }),
    ],
  );
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger(
    'info',
    new Writable({
      write(c: Buffer, _e, done) {
        for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    }),
  );
  const p = new Preempter({ cache, queues: store.queues, sinks: [store.preemptions], log, metrics: new Metrics({ defaultMetrics: false }) });
  const ask = (name: string, memMiB: number): V1Pod => {
    const pod = share(name, memMiB, { qos: 'guaranteed', queue: 'team-b' });
    cache.upsertPod(pod);
    return pod;
  };

  // team-b holds 0.5 of 1: a 0.75 share would exceed it, a 0.25 one does not.
  t.same(await p.preempt({ Pod: ask('big', 12000), NodeNameToMetaVictims: offer(['uid-b1', 'uid-s1', 'uid-s2']) }), { NodeNameToMetaVictims: {} });
  t.match(lines.at(-1), { outcome: 'over_quota', reason: 'queue team-b uses 0.5 of its 1 guaranteed nvidia.com/gpu; 0.75 more would exceed it' });

  // 2000 MiB needed: one eighth (s1 or s2) is enough; the later-started, then the smaller UID.
  const small = await p.preempt({ Pod: ask('small', 2000), NodeNameToMetaVictims: offer(['uid-b1', 'uid-s1', 'uid-s2']) });
  t.same(small, { NodeNameToMetaVictims: offer(['uid-s1']) }, 'an eighth of a GPU, not the quarter');
  // 4000 MiB: b1 (0.25) and s1 + s2 (0.25) tie on GPUs taken back; rule 3 (later start)
  // comes before rule 4 (fewer pods): s1 and s2 started later than b1.
  const quarter = await p.preempt({ Pod: ask('quarter', 4000), NodeNameToMetaVictims: offer(['uid-b1', 'uid-s1', 'uid-s2']) });
  t.same(quarter, { NodeNameToMetaVictims: offer(['uid-s1', 'uid-s2']) }, 'the same 0.25 GPU taken back; the later-started pods go (rule 3 before 4)');
  t.match(lines.at(-1), { gpusFreed: 0.25, gpusTakenBack: 0.25, victims: ['team-a/s1', 'team-a/s2'] });

  cache.deletePod('uid-s1');
  cache.deletePod('uid-s2');
  t.ok((await waitFor(async () => (await store.preemptions.flush()) === 0, 5000)) >= 0);
  const rows = await store.pool.query('SELECT preemptor_pod, gpus_freed, gpus_taken_back, victims FROM preemptions ORDER BY id');
  t.match(
    rows.rows,
    [
      {
        preemptor_pod: 'quarter',
        gpus_freed: 0.25,
        gpus_taken_back: 0.25,
        victims: [
          { pod: 's1', gpus: 1, share: 0.125 },
          { pod: 's2', gpus: 1, share: 0.125 },
        ],
      },
    ],
    'fractions kept in Postgres (migration 005)',
  );
  t.equal(rows.rowCount, 1, 'the preemption kube-scheduler never carried out is not recorded');
});
