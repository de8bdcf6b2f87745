// Concurrent share binds spread over nodes (docs/gpu-sharing.md "Bind throughput"): a share
// bind holds its node's HAMi lock until the device plugin answers, so prioritize ranks the
// nodes with the fewest share binds in flight first (scheduler/extender.ts rule 1), counting
// binds taken in and the node it ranked first for a share pod whose bind has not come yet.
import t from 'tap';
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { ClusterCache } from '../../cluster/cache.js';
import { BIND_PICK_TTL_MS } from '../../cluster/share-binds-in-flight.js';
import { ClusterWatcher } from '../../cluster/informers.js';
import { KubeBinder } from '../../scheduler/binder.js';
import { Extender } from '../../scheduler/extender.js';
import { HamiNodeLocks } from '../../scheduler/hami-bind.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { deviceMisfit, placeContainers } from '../../placement/shares.js';
import { HamiAgent, hamiNode, sharePod } from '../helpers/hami-agent.js';
import { gpuNode, gpuPod, unreachableKubeConfig } from '../helpers/k8s.js';

const quiet = createLogger('error', new Writable({ write: (_c, _e, d) => d() }));
const NAMES = { resource: 'nvidia.com/gpu', memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' };
const NODES = ['h0', 'h1', 'h2'];

let seq = 0;
const pending = (name: string, memMiB = 1000): V1Pod => {
  const p = sharePod(name, { memMiB, cores: 1 });
  p.metadata!.uid = `uid-${name}-${++seq}`;
  return p;
};

/** A cache with three HAMi nodes, h0 partly used, and two extenders on it: one binding
 * shares through HAMi's lock (share binds on), one without. */
function setup(now: () => number = Date.now) {
  const cache = new ClusterCache({
    resources: ['nvidia.com/gpu'],
    assumeTtlMs: 30000,
    recentPodWindow: 100,
    now,
    sharing: { names: NAMES, handshakeTimeoutMs: 60000 },
  });
  const fill = pending('fill', 8000);
  fill.spec!.nodeName = 'h0';
  fill.metadata!.annotations = { 'hami.io/vgpu-node': 'h0', 'hami.io/bind-phase': 'success', 'hami.io/vgpu-devices-allocated': 'GPU-h0-0,NVIDIA,8000,1:;' };
  fill.status = { phase: 'Running' };
  cache.replaceAll(
    NODES.map((n) => hamiNode(n, { gpus: 2, memMiB: 16384 })),
    [fill],
  );
  const binder = new KubeBinder(unreachableKubeConfig());
  const locks = new HamiNodeLocks({ api: binder, lockExpireMs: 300000, lockWaitMs: 1000, peekLock: (n) => cache.hamiLock(n) });
  const metrics = new Metrics({ defaultMetrics: false });
  const locked = new Extender({ cache, binder, defaultPolicy: 'binpack', log: quiet, metrics, shares: { locks, api: binder } });
  const plain = new Extender({ cache, binder, defaultPolicy: 'binpack', log: quiet, metrics });
  return { cache, locked, plain };
}

const scores = async (ext: Extender, pod: V1Pod): Promise<number[]> => (await ext.prioritize({ Pod: pod, NodeNames: NODES })).map((h) => h.Score);

t.test('nothing in flight: the policy alone ranks, as without share binds', async (t) => {
  const { cache, locked, plain } = setup();
  const p = pending('p');
  cache.upsertPod(p);
  const want = await scores(plain, p);
  t.same(await scores(locked, p), want);
  t.same(await scores(locked, p), want, "a pod's own pick never counts against it");
  const top = NODES[want.indexOf(Math.max(...want))]!;
  t.same(
    NODES.map((n) => cache.shareBindsInFlight(n)),
    NODES.map((n) => (n === top ? 1 : 0)),
    'but counts for others: its pick is the node ranked first',
  );
});

t.test('a pick counts its node as busy for other share pods until the bind comes, or for BIND_PICK_TTL_MS', async (t) => {
  let now = 1_000_000;
  const { cache, locked, plain } = setup(() => now);
  const pods = ['a', 'b', 'c', 'd'].map((n) => pending(n));
  for (const p of pods) cache.upsertPod(p);
  const first = await scores(plain, pods[0]!);
  const tops: string[] = [];
  for (const p of pods) {
    const s = await scores(locked, p);
    const picked = new Set(tops);
    if (picked.size > 0 && picked.size < NODES.length) {
      t.ok(
        NODES.every((n, i) => (picked.has(n) ? s[i] === 0 : s[i]! >= 1)),
        `${p.metadata!.name}: the nodes picked before score 0, the others at least 1: ${s}`,
      );
    } else {
      t.same(s, first, `${p.metadata!.name}: ${picked.size ? 'every node equally busy' : 'nothing in flight'}: the policy alone`);
    }
    tops.push(NODES[s.indexOf(Math.max(...s))]!);
  }
  t.same(new Set(tops.slice(0, 3)).size, 3, `one pick per node: ${tops}`);
  t.equal(tops[3], tops[0], 'then the least busy again, by the policy');
  const x = tops[0]!;
  t.same(
    NODES.map((n) => cache.shareBindsInFlight(n)),
    NODES.map((n) => (n === x ? 2 : 1)),
  );
  t.same(await scores(plain, pending('whole-gpu-extender')), first, 'an extender without share binds ranks by the policy alone');

  // a's bind comes for its node: a is in flight there by its bind (the assume ledger), not its pick.
  const place = (ds: Parameters<typeof placeContainers>[0]) => {
    const r = placeContainers(ds, [{ count: 1, memMiB: 1000, memPercent: 0, cores: 1 }], (c, want) => c.find((d) => deviceMisfit(d, want) === null) ?? null);
    return 'misfit' in r ? r : { uses: r.uses.flat() };
  };
  t.ok(cache.assume(pods[0]!.metadata!.uid!, x, [{ resource: 'nvidia.com/gpu', count: 1 }], place).ok);
  t.same(
    NODES.map((n) => cache.shareBindsInFlight(n)),
    NODES.map((n) => (n === x ? 2 : 1)),
    'still 2 there: the bind replaced the pick',
  );
  // The watch shows the annotations and the binding, bind phase allocating: still in flight.
  const a = { ...pods[0]!, spec: { ...pods[0]!.spec!, nodeName: x } };
  a.metadata = {
    ...a.metadata!,
    annotations: { 'hami.io/vgpu-node': x, 'hami.io/bind-phase': 'allocating', 'hami.io/vgpu-devices-allocated': `GPU-${x}-0,NVIDIA,1000,1:;` },
  };
  cache.upsertPod(a);
  t.equal(cache.shareBindsInFlight(x), 2, 'allocating: the plugin has not answered');
  a.metadata = { ...a.metadata, annotations: { ...a.metadata.annotations, 'hami.io/bind-phase': 'success' } };
  cache.upsertPod(a);
  t.equal(cache.shareBindsInFlight(x), 1, 'success: the lock is released, a is no longer in flight');
  now += BIND_PICK_TTL_MS;
  t.same(
    NODES.map((n) => cache.shareBindsInFlight(n)),
    [0, 0, 0],
    'picks whose bind never came expire',
  );
  t.same(await scores(locked, pending('late')), await scores(plain, pending('late2')), 'and the policy alone ranks again');
});

t.test('no pick for a pod sluice does not know, a bound pod, or a node it does not know', async (t) => {
  const { cache, locked } = setup();
  await scores(locked, pending('not-in-cache'));
  t.same(
    NODES.map((n) => cache.shareBindsInFlight(n)),
    [0, 0, 0],
    'a prioritize body alone (anyone may send one) counts nothing',
  );
  cache.pickForBind('uid-fill-1', 'h1');
  t.equal(cache.shareBindsInFlight('h1'), 0, 'the pod is bound already');
  const p = pending('x');
  cache.upsertPod(p);
  cache.pickForBind(p.metadata!.uid!, 'nowhere');
  t.equal(cache.shareBindsInFlight('nowhere'), 0);
  // Whole-GPU pods of other resources are not bound through the lock: no pick, no rule.
  const w = gpuPod('w', { uid: 'uid-w' });
  cache.upsertNode(gpuNode('plain', { gpus: 8 }));
  cache.upsertPod(w);
  t.ok((await locked.prioritize({ Pod: w, NodeNames: ['plain'] })).length === 1);
});

t.test('a burst over the stand-in apiserver spreads over the nodes instead of queueing on one lock', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  for (const n of NODES) api.create('nodes', hamiNode(n, { gpus: 2, memMiB: 16384 }));
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
  t.teardown(() => watcher.stop());
  while (!watcher.synced()) await new Promise((r) => setTimeout(r, 10));
  const binder = new KubeBinder(kc);
  const locks = new HamiNodeLocks({ api: binder, lockExpireMs: 300000, lockWaitMs: 10000, peekLock: (n) => cache.hamiLock(n) });
  cache.onChange((c) => c.kind === 'node' && locks.nodeChanged(c.name));
  const ext = new Extender({ cache, binder, defaultPolicy: 'binpack', log: quiet, metrics, shares: { locks, api: binder } });
  const stop = new HamiAgent(kc).run(NODES, 20);
  t.teardown(stop);
  const pods = Array.from({ length: 6 }, (_, i) => api.create<V1Pod>('pods', sharePod(`s${i}`, { memMiB: 1000, cores: 1 })));
  while (!pods.every((p) => cache.pod(p.metadata!.uid!))) await new Promise((r) => setTimeout(r, 10));
  // As kube-scheduler with parallel binding: each pod filtered and prioritized, then bound
  // to its best node, all six at once.
  const bound = await Promise.all(
    pods.map(async (p) => {
      const passed = (await ext.filter({ Pod: p, NodeNames: NODES })).NodeNames ?? [];
      const s = await ext.prioritize({ Pod: p, NodeNames: passed });
      const node = s.reduce((a, b) => (b.Score > a.Score ? b : a)).Host;
      const r = await ext.bind({ PodName: p.metadata!.name!, PodNamespace: 'team-a', PodUID: p.metadata!.uid!, Node: node });
      return { node, error: r.Error };
    }),
  );
  t.same(
    bound.map((b) => b.error),
    Array(6).fill(''),
    'all bound',
  );
  const per = new Map<string, number>();
  for (const b of bound) per.set(b.node, (per.get(b.node) ?? 0) + 1);
  t.same([...per.values()].sort(), [2, 2, 2], `two per node: ${JSON.stringify([...per])}`);
});
