// GPU shares bound through HAMi's device-plugin protocol, on the stand-in apiserver with the
// informers, the real binder, and a node agent that does what HAMi's plugin does on
// Allocate (test/helpers/hami-agent.ts, written from HAMi's source apart from sluice's code).
import t from 'tap';
import { Writable } from 'node:stream';
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { ClusterCache } from '../../cluster/cache.js';
import { ClusterWatcher } from '../../cluster/informers.js';
import { KubeBinder } from '../../scheduler/binder.js';
import { Extender } from '../../scheduler/extender.js';
import { HamiNodeLocks, lockValue, watchAllocationOutcomes } from '../../scheduler/hami-bind.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import type { PolicyName } from '../../config/schema.js';
import { HamiAgent, hamiNode, sharePod } from '../helpers/hami-agent.js';

const quiet = createLogger('error', new Writable({ write: (_c, _e, d) => d() }));
const NAMES = { resource: 'nvidia.com/gpu', memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' };

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function setup(t: { teardown: (fn: () => unknown) => void }, nodes: string[], o: { policy?: PolicyName; lockWaitMs?: number; gpus?: number } = {}) {
  const api = await StandInApiserver.start();
  for (const n of nodes) api.create('nodes', hamiNode(n, { gpus: o.gpus ?? 2 }));
  const kc = api.kubeConfig();
  const metrics = new Metrics({ defaultMetrics: false });
  const cache = new ClusterCache({
    resources: ['nvidia.com/gpu'],
    assumeTtlMs: 30000,
    recentPodWindow: 100,
    sharing: { names: NAMES, handshakeTimeoutMs: 60000 },
  });
  const watcher = new ClusterWatcher(kc, cache, quiet, metrics);
  watcher.start();
  await until('cache sync', () => watcher.synced());
  const binder = new KubeBinder(kc);
  const locks = new HamiNodeLocks({ api: binder, lockExpireMs: 300000, lockWaitMs: o.lockWaitMs ?? 10000, peekLock: (n) => cache.hamiLock(n) });
  cache.onChange((c) => c.kind === 'node' && locks.nodeChanged(c.name));
  const ext = new Extender({ cache, binder, defaultPolicy: o.policy ?? 'binpack', log: quiet, metrics, shares: { locks, api: binder } });
  t.teardown(async () => {
    await watcher.stop();
    await api.close();
  });
  return { api, kc, cache, ext, binder };
}

/** Creates the pod, waits for the cache to see it, then filters, prioritizes and binds it
 * as kube-scheduler would (the best-scored node). */
async function schedule(s: Awaited<ReturnType<typeof setup>>, pod: V1Pod, nodes: string[]): Promise<{ node: string; error: string }> {
  const created = s.api.create<V1Pod>('pods', pod);
  const uid = created.metadata!.uid!;
  await until(`pod ${pod.metadata!.name}`, () => !!s.cache.pod(uid));
  const f = await s.ext.filter({ Pod: created, NodeNames: nodes });
  const passed = f.NodeNames ?? [];
  if (passed.length === 0) return { node: '', error: Object.values(f.FailedNodes).concat(Object.values(f.FailedAndUnresolvableNodes)).join(' | ') };
  const scores = await s.ext.prioritize({ Pod: created, NodeNames: passed });
  const best = scores.reduce((a, b) => (b.Score > a.Score ? b : a)).Host;
  const r = await s.ext.bind({ PodName: pod.metadata!.name!, PodNamespace: 'team-a', PodUID: uid, Node: best });
  return { node: best, error: r.Error ?? '' };
}

const annotations = (s: Awaited<ReturnType<typeof setup>>, name: string): Record<string, string> =>
  s.api.get<V1Pod>('pods', 'team-a', name)?.metadata?.annotations ?? {};

t.test('four quarter-GPU pods share one GPU; the fifth goes to the next; the plugin reads what sluice wrote', async (t) => {
  const s = await setup(t, ['h1']);
  const agent = new HamiAgent(s.kc);
  const stop = agent.run(['h1']);
  t.teardown(stop);
  for (let i = 0; i < 5; i++) {
    const r = await schedule(s, sharePod(`q${i}`, { memMiB: 4096, cores: 25 }), ['h1']);
    t.equal(r.error, '', `q${i} bound`);
    await until(`q${i} allocated`, () => annotations(s, `q${i}`)['hami.io/bind-phase'] === 'success');
  }
  const gpuOf = (name: string): string => annotations(s, name)['hami.io/vgpu-devices-allocated']!.split(',')[0]!;
  t.same(
    [0, 1, 2, 3].map((i) => gpuOf(`q${i}`)),
    Array(4).fill('GPU-h1-0'),
    'q0..q3 on GPU 0',
  );
  t.equal(gpuOf('q4'), 'GPU-h1-1', 'q4 on GPU 1');
  const a = annotations(s, 'q0');
  t.equal(a['hami.io/vgpu-node'], 'h1');
  t.match(a['hami.io/vgpu-time'], /^\d{10}$/, 'vgpu-time in Unix seconds');
  t.match(a['hami.io/bind-time'], /^\d{10}$/, 'bind-time in Unix seconds');
  t.equal(a['hami.io/vgpu-devices-allocated'], 'GPU-h1-0,NVIDIA,4096,25:;');
  // HAMi's decoder keeps the empty entry after the last ";" (its Allocate skips empty ones).
  t.same(
    agent.allocations[0]!.devices,
    [[{ uuid: 'GPU-h1-0', type: 'NVIDIA', mem: 4096, cores: 25 }], []],
    "the plugin's decoding gives the chosen GPU, memory and cores",
  );
  await until('lock released', () => s.api.get('nodes', undefined, 'h1')?.metadata?.annotations?.['hami.io/mutex.lock'] === undefined);
  const inv = s.cache.inventory().find((n) => n.name === 'h1')!;
  t.same(
    inv.gpus!.map((g) => [g.usedMemMiB, g.usedCores, g.usedSlots]),
    [
      [16384, 100, 4],
      [4096, 25, 1],
    ],
    'per-GPU usage from the pods',
  );
  const sixth = await schedule(s, sharePod('big', { memMiB: 16000 }), ['h1']);
  t.match(
    sixth.error,
    /GPU 0 \(GPU-h1-0\): 0 of 16384 MiB free, pod needs 16000 MiB/,
    `a pod too big for what is left is refused naming the GPU: ${sixth.error}`,
  );
});

t.test('a burst of concurrent binds never overcommits a GPU', async (t) => {
  const s = await setup(t, ['h1', 'h2']);
  const stop = new HamiAgent(s.kc).run(['h1', 'h2']);
  t.teardown(stop);
  const pods = Array.from({ length: 24 }, (_, i) => s.api.create<V1Pod>('pods', sharePod(`b${i}`, { memMiB: 6000, cores: 10 })));
  await until('pods seen', () => pods.every((p) => !!s.cache.pod(p.metadata!.uid!)));
  // Every bind aims at h1 or h2 at once, as kube-scheduler's parallel binding cycles would.
  const results = await Promise.all(
    pods.map((p, i) => s.ext.bind({ PodName: p.metadata!.name!, PodNamespace: 'team-a', PodUID: p.metadata!.uid!, Node: i % 2 ? 'h2' : 'h1' })),
  );
  const ok = results.filter((r) => r.Error === '').length;
  t.equal(ok, 8, '2 nodes x 2 GPUs x 2 pods of 6000 MiB on 16384 MiB GPUs');
  t.ok(
    results.filter((r) => r.Error).every((r) => /MiB free/.test(r.Error!)),
    'the others are refused for memory',
  );
  await until('all allocated', () => pods.filter((p) => annotations(s, p.metadata!.name!)['hami.io/bind-phase'] === 'success').length === 8, 10000);
  const perGpu = new Map<string, number>();
  for (const p of pods) {
    const list = annotations(s, p.metadata!.name!)['hami.io/vgpu-devices-allocated'];
    if (!list) continue;
    const [uuid, , mem] = list.split(',');
    perGpu.set(uuid!, (perGpu.get(uuid!) ?? 0) + Number(mem));
  }
  t.ok(
    [...perGpu.values()].every((m) => m <= 16384),
    `no GPU over its memory: ${JSON.stringify([...perGpu])}`,
  );
});

t.test('a failed allocation frees the GPUs and raises an Event', async (t) => {
  const s = await setup(t, ['h1'], { gpus: 1 });
  const agent = new HamiAgent(s.kc, (pod) => (pod.metadata!.name === 'bad' ? 'failed' : 'success'));
  const stop = agent.run(['h1']);
  t.teardown(stop);
  const events: CoreV1Event[] = [];
  const failed: Array<{ pod: string; node: string; message: string }> = [];
  watchAllocationOutcomes(
    (fn) => s.cache.onChange(fn),
    async (_ns, e) => events.push(e),
    quiet,
    (f) => failed.push({ pod: `${f.pod.namespace}/${f.pod.name}`, node: f.node, message: f.message }),
  );
  const r = await schedule(s, sharePod('bad', { memMiB: 12000 }), ['h1']);
  t.equal(r.error, '');
  await until('failed', () => annotations(s, 'bad')['hami.io/bind-phase'] === 'failed');
  await until('released in the cache', () => s.cache.inventory()[0]!.gpus![0]!.usedMemMiB === 0);
  await until('event', () => events.length === 1);
  t.equal(events[0]!.reason, 'GPUAllocationFailed');
  t.match(events[0]!.message, /node h1/);
  t.same(
    failed,
    [{ pod: 'team-a/bad', node: 'h1', message: events[0]!.message }],
    'the caller is told which pod failed where (counted and recorded in bind_failures)',
  );
  const next = await schedule(s, sharePod('good', { memMiB: 12000 }), ['h1']);
  t.equal(next.error, '', 'the freed memory is placed again');
});

t.test('a stale node lock is taken over; a live one is waited for, up to lockWait', async (t) => {
  const s = await setup(t, ['h1'], { lockWaitMs: 300 });
  const node = s.api.get('nodes', undefined, 'h1')!;
  // A lock whose pod does not exist (HAMi's LockNode releases it): taken over.
  s.api.update('nodes', {
    ...node,
    metadata: { ...node.metadata, annotations: { ...node.metadata!.annotations, 'hami.io/mutex.lock': lockValue(Date.now(), 'team-a', 'gone') } },
  });
  const r1 = await schedule(s, sharePod('p1', { memMiB: 1000 }), ['h1']);
  t.equal(r1.error, '', 'bound over a lock of a pod that is gone');
  t.match(s.api.get('nodes', undefined, 'h1')?.metadata?.annotations?.['hami.io/mutex.lock'], /,team-a,p1$/, 'p1 holds the lock until the plugin allocates');
  // No agent runs: p1's lock stays, so p2 waits and then fails with a reason.
  const r2 = await schedule(s, sharePod('p2', { memMiB: 1000 }), ['h1']);
  t.match(r2.error, /node h1 is locked .* by another pod HAMi's device plugin has not finished allocating for/);
  t.equal(annotations(s, 'p2')['hami.io/vgpu-node'], undefined, 'p2 was not annotated');
  await until('p2 ledger rolled back', () => s.cache.inventory()[0]!.gpus!.reduce((m, g) => m + g.usedMemMiB, 0) === 1000);
});

t.test('after a restart between the annotation and the binding, the GPUs stay booked', async (t) => {
  const s = await setup(t, ['h1'], { gpus: 1 });
  // What a sluice killed after step 2 leaves behind: a pod annotated for h1, not bound.
  const p = sharePod('cut', { memMiB: 10000 });
  p.metadata!.annotations = {
    'hami.io/vgpu-node': 'h1',
    'hami.io/bind-phase': 'allocating',
    'hami.io/bind-time': '1700000000',
    'hami.io/vgpu-time': '1700000000',
    'hami.io/vgpu-devices-to-allocate': 'GPU-h1-0,NVIDIA,10000,0:;',
    'hami.io/vgpu-devices-allocated': 'GPU-h1-0,NVIDIA,10000,0:;',
  };
  const cut = s.api.create<V1Pod>('pods', p);
  await until('seen', () => !!s.cache.pod(cut.metadata!.uid!));
  t.equal(s.cache.inventory()[0]!.gpus![0]!.usedMemMiB, 10000, 'the fresh cache counts the half-bound pod');
  const other = await schedule(s, sharePod('other', { memMiB: 10000 }), ['h1']);
  t.match(other.error, /6384 of 16384 MiB free/, 'another pod cannot take the same memory');
  // kube-scheduler retries the cut pod: its own hold does not count against it.
  const again = await s.ext.bind({ PodName: 'cut', PodNamespace: 'team-a', PodUID: cut.metadata!.uid!, Node: 'h1' });
  t.equal(again.Error, '', 'the retried bind of the same pod succeeds');
  await until('bound', () => s.api.get<V1Pod>('pods', 'team-a', 'cut')?.spec?.nodeName === 'h1');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(s.cache.inventory()[0]!.gpus![0]!.usedMemMiB, 10000, 'counted once');
});
