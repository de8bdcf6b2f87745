// One policy, not two: the extender's prioritize and the trace simulator's scoring of
// sluice's policy rank the same cluster alike for the same pod. The cluster is built
// twice from the same figures: as V1 objects in the extender's cache (CPU and memory
// from the pods' requests, the size mix from the pods seen) and as trace rows in the
// simulator's node views. And the same placements: node and GPU index for share pods
// (the last test, through the whole live bind).
import t from 'tap';
import { Writable } from 'node:stream';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { ClusterCache } from '../../cluster/cache.js';
import { Extender } from '../../scheduler/extender.js';
import type { PodBinder } from '../../scheduler/binder.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { sluiceScore, traceAsk, traceNodeClasses, traceView } from '../../bench/simulate/engine.js';
import { withScarcity } from '../../placement/scarcity.js';
import type { TraceNode, TracePod } from '../../bench/simulate/trace.js';
import { fits } from '../../placement/fit.js';
import { applyChoice, toExtenderScores } from '../../placement/policies.js';

const RES = 'nvidia.com/gpu';

function node(n: TraceNode): V1Node {
  const alloc = { cpu: `${n.cpuMilli}m`, memory: `${n.memMiB}Mi`, pods: '110', [RES]: String(n.gpus) };
  return {
    metadata: { name: n.name, labels: { 'nvidia.com/gpu.product': n.model } },
    spec: {},
    status: { allocatable: alloc, capacity: alloc, conditions: [{ type: 'Ready', status: 'True' }] },
  } as V1Node;
}

let uid = 0;
function pod(p: TracePod, nodeName?: string, initCpuMilli = Math.floor(p.cpuMilli / 2)): V1Pod {
  // Split across a container, a sidecar and an init container (which, with the sidecar
  // started before it, peaks at the pod's CPU unless told otherwise).
  const half = Math.floor(p.cpuMilli / 2);
  return {
    metadata: { name: `p${++uid}`, namespace: 'ns', uid: `u${uid}`, annotations: p.models.length ? { 'sluice.io/gpu-model': p.models.join(',') } : {} },
    spec: {
      nodeName,
      containers: [
        { name: 'main', resources: { requests: { cpu: `${half}m`, memory: `${p.memMiB}Mi`, [RES]: String(p.numGpu) }, limits: { [RES]: String(p.numGpu) } } },
      ],
      initContainers: [
        { name: 'side', restartPolicy: 'Always', resources: { requests: { cpu: `${p.cpuMilli - half}m` } } },
        { name: 'init', resources: { requests: { cpu: `${initCpuMilli}m`, memory: '1Mi' } } },
      ],
    },
    status: { phase: nodeName ? 'Running' : 'Pending' },
  } as V1Pod;
}

/** The simulator's 0..10 scores of every view for the ask (0 where it does not fit), as the
 * extender's prioritize scales them, with which views fit and their raw scores. */
function simulatorScores(views: ReturnType<typeof traceView>[], ask: ReturnType<typeof traceAsk>, mix: ReturnType<ClusterCache['sizeMix']>) {
  const feasible = views.map((v) => fits(v, ask));
  const raw = views.filter((_, i) => feasible[i]).map((v) => sluiceScore(v, ask, mix).score);
  const scaled = toExtenderScores(raw, 'levels');
  let j = 0;
  return { feasible, raw, want: views.map((_, i) => (feasible[i] ? scaled[j++]! : 0)) };
}

const noBinder: PodBinder = { bind: () => Promise.reject(new Error('not in this test')) } as unknown as PodBinder;

t.test('extender prioritize and the simulator scoring rank nodes identically', async (t) => {
  // Deterministic small cluster: mixed models, GPU counts, CPU and memory.
  const models = ['A100', 'T4', 'V100'];
  const nodes: TraceNode[] = Array.from({ length: 24 }, (_, i) => ({
    name: `n${String(i).padStart(2, '0')}`,
    cpuMilli: [32000, 64000, 96000][i % 3]!,
    memMiB: [131072, 262144][i % 2]!,
    gpus: [2, 4, 8][(i >> 1) % 3]!,
    model: models[i % 3]!,
  }));
  const shapes: TracePod[] = [
    { cpuMilli: 4000, memMiB: 16384, numGpu: 1, gpuMilli: 1000, models: [], gpuSpec: '' },
    { cpuMilli: 16000, memMiB: 65536, numGpu: 2, gpuMilli: 1000, models: [], gpuSpec: '' },
    { cpuMilli: 24000, memMiB: 98304, numGpu: 4, gpuMilli: 1000, models: ['T4'], gpuSpec: 'T4' },
    { cpuMilli: 8000, memMiB: 32768, numGpu: 1, gpuMilli: 1000, models: ['A100', 'V100'], gpuSpec: 'A100|V100' },
    { cpuMilli: 40000, memMiB: 131072, numGpu: 8, gpuMilli: 1000, models: [], gpuSpec: '' },
  ];
  // Pods already running, placed first-fit in the simulator's views and given to the cache.
  const views = nodes.map(traceView);
  const running: V1Pod[] = [];
  for (let k = 0; k < 40; k++) {
    const p = shapes[(k * 7) % shapes.length]!;
    const ask = traceAsk(p, RES);
    const i = views.findIndex((v, j) => (j * 5 + k) % 3 !== 0 && fits(v, ask));
    if (i < 0) continue;
    const v = views[i]!;
    v.gpus = applyChoice(v.gpus, ask, { on: 'whole' });
    v.cpuFreeMilli! -= p.cpuMilli;
    v.memFreeMiB! -= p.memMiB;
    running.push(pod(p, v.name));
  }
  t.ok(running.length >= 30, `${running.length} pods running`);

  const cache = new ClusterCache({ resources: [RES], assumeTtlMs: 30000, recentPodWindow: 1000 });
  cache.replaceAll(nodes.map(node), running);
  const log = createLogger('error', new Writable({ write: (_c, _e, d) => d() }));
  const ext = new Extender({ cache, binder: noBinder, defaultPolicy: 'fragmentation', log, metrics: new Metrics({ defaultMetrics: false }) });
  const mix = cache.sizeMix();
  t.ok(
    mix.some((e) => e.cpuMilli !== undefined && e.memMiB !== undefined && e.models !== undefined),
    'the size mix keeps CPU, memory and models',
  );
  // The simulator weighs its mix by scarcity on its own node list (engine.ts); the cache,
  // on the nodes it was given: the same cluster gives the same weights.
  const unweighed = mix.map(({ scarcity: _, ...e }) => e);
  t.same(withScarcity(unweighed, traceNodeClasses(nodes)), mix, "scarcity from the trace nodes equals the cache's");
  t.ok(new Set(mix.map((e) => e.scarcity)).size > 1, 'the shapes differ in scarcity');

  for (const p of shapes) {
    const incoming = pod(p);
    const got = await ext.prioritize({ Pod: incoming, NodeNames: nodes.map((n) => n.name) });
    const ask = traceAsk(p, RES);
    const { feasible, raw, want } = simulatorScores(views, ask, mix);
    t.same(
      got.map((h) => h.Score),
      want,
      `${p.numGpu} GPU(s), ${p.cpuMilli}m, models ${p.models.join('|') || 'any'}: the same 0..10 scores`,
    );
    // And the same order: the simulator's best node gets the extender's best score, and no
    // pair of nodes is ranked one way by the simulator and the other way by the extender.
    const rawAll = views.map((v, i) => (feasible[i] ? sluiceScore(v, ask, mix).score : -Infinity));
    let inversions = 0;
    for (let a = 0; a < views.length; a++) for (let b = 0; b < views.length; b++) if (rawAll[a]! > rawAll[b]! && got[a]!.Score < got[b]!.Score) inversions++;
    t.equal(inversions, 0, 'no ranking inversions');
    if (raw.length > 1) t.ok(new Set(raw).size > 1, 'the scores discriminate');
  }
});

t.test('CPU and memory are counted as kube-scheduler counts them', async (t) => {
  const cache = new ClusterCache({ resources: [RES], assumeTtlMs: 30000, recentPodWindow: 10 });
  const n: TraceNode = { name: 'n', cpuMilli: 16000, memMiB: 65536, gpus: 4, model: 'T4' };
  const p = pod({ cpuMilli: 3000, memMiB: 1024, numGpu: 1, gpuMilli: 1000, models: [], gpuSpec: '' }, 'n', 3000);
  p.spec!.overhead = { cpu: '250m', memory: '64Mi' };
  cache.replaceAll([node(n)], [p]);
  const v = cache.nodeView('n', RES)!;
  // containers 1500m + sidecar 1500m = 3000m; init peak = sidecar 1500m + 3000m = 4500m; + 250m overhead.
  t.equal(v.cpuFreeMilli, 16000 - 4750);
  // memory: max(1024 + 0, 0 + 1) + 64 overhead.
  t.equal(v.memFreeMiB, 65536 - 1088);
  cache.deletePod(p.metadata!.uid!);
  t.equal(cache.nodeView('n', RES)!.cpuFreeMilli, 16000, 'freed when the pod goes');
});

// GPU shares: nodes whose GPUs HAMi's device plugin splits (16000 MiB, 100 cores), partly
// used by share pods. The extender reads them from the registration and the pods' device
// lists; the simulator holds the same GPUs as free milli. A share asks memory and cores
// in proportion (milli x 16 MiB, milli / 10 cores), so both sides see the same share.
t.test('shares on partly used GPUs: the same scores, and the bind picks the GPU the simulator would', async (t) => {
  const { hamiNode } = await import('../helpers/hami-agent.js');
  const { POLICY_BY_NAME, choicesFor } = await import('../../placement/policies.js');
  const { placeContainers, policyPick, freeShareMilli } = await import('../../placement/shares.js');
  const GPU_MIB = 16000;
  const nodes: TraceNode[] = Array.from({ length: 12 }, (_, i) => ({
    name: `h${String(i).padStart(2, '0')}`,
    cpuMilli: [32000, 64000][i % 2]!,
    memMiB: 262144,
    gpus: [2, 4, 8][i % 3]!,
    model: 'T4',
  }));
  const v1Nodes = nodes.map((n) => {
    const v = hamiNode(n.name, { gpus: n.gpus, memMiB: GPU_MIB, split: 10, product: 'T4' });
    v.status!.allocatable = { ...v.status!.allocatable, cpu: `${n.cpuMilli}m`, memory: `${n.memMiB}Mi` };
    return v;
  });
  const views = nodes.map(traceView);
  const shareOf = (milli: number) => ({ mem: milli * 16, cores: milli / 10 });
  const running: V1Pod[] = [];
  // Deterministic partial use: GPU g of node i gets shares from this list while they fit.
  const sizes = [250, 500, 300, 100, 700, 200];
  let k = 0;
  nodes.forEach((n, i) => {
    const v = views[i]!;
    const partial: number[] = [];
    let idle = 0;
    for (let g = 0; g < n.gpus; g++) {
      if ((i + g) % 3 === 0) {
        idle++;
        continue;
      }
      let used = 0;
      const want = 1 + ((i * 7 + g) % 3);
      for (let j = 0; j < want; j++) {
        const m = sizes[k++ % sizes.length]!;
        if (used + m >= 1000) break;
        used += m;
        const { mem, cores } = shareOf(m);
        const p = pod({ cpuMilli: 2000, memMiB: 8192, numGpu: 1, gpuMilli: m, models: [], gpuSpec: '' }, n.name);
        p.spec!.containers[0]!.resources!.limits = { [RES]: '1', 'nvidia.com/gpumem': String(mem), 'nvidia.com/gpucores': String(cores) };
        const list = `GPU-${n.name}-${g},NVIDIA,${mem},${cores}:;`;
        p.metadata!.annotations = {
          ...p.metadata!.annotations,
          'hami.io/vgpu-node': n.name,
          'hami.io/bind-phase': 'success',
          'hami.io/vgpu-devices-allocated': list,
        };
        running.push(p);
        v.cpuFreeMilli! -= 2000;
        v.memFreeMiB! -= 8192;
      }
      if (used > 0) partial.push(1000 - used);
      else idle++;
    }
    v.gpus = { capacity: n.gpus, freeWhole: idle, partialFree: partial };
  });
  t.ok(running.length >= 20, `${running.length} share pods running`);

  const cache = new ClusterCache({
    resources: [RES],
    assumeTtlMs: 30000,
    recentPodWindow: 1000,
    sharing: {
      names: { resource: RES, memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' },
      handshakeTimeoutMs: 60000,
    },
  });
  cache.replaceAll(v1Nodes, running);
  for (let i = 0; i < nodes.length; i++) {
    const cv = cache.nodeView(nodes[i]!.name, RES)!;
    t.same(
      [cv.gpus!.freeWhole, [...cv.gpus!.partialFree].sort()],
      [views[i]!.gpus.freeWhole, [...views[i]!.gpus.partialFree].sort()],
      `${nodes[i]!.name}: the same free GPUs and shares`,
    );
  }
  const log = createLogger('error', new Writable({ write: (_c, _e, d) => d() }));
  const ext = new Extender({ cache, binder: noBinder, defaultPolicy: 'fragmentation', log, metrics: new Metrics({ defaultMetrics: false }) });
  // And with share binds through HAMi's node lock on, as sluice runs with sharing: its
  // prioritize first ranks nodes by share binds in flight (scheduler/extender.ts rule 1).
  // The simulator binds each pod before it scores the next, so nothing is ever in flight
  // there; with nothing in flight here (these pods are not in the cache, so no pick is
  // counted for them) rule 1 keeps every node and the scores must be the same.
  const { HamiNodeLocks } = await import('../../scheduler/hami-bind.js');
  const { KubeBinder } = await import('../../scheduler/binder.js');
  const { unreachableKubeConfig } = await import('../helpers/k8s.js');
  const hamiApi = new KubeBinder(unreachableKubeConfig());
  const locks = new HamiNodeLocks({ api: hamiApi, lockExpireMs: 300000, lockWaitMs: 4000, peekLock: (n) => cache.hamiLock(n) });
  const locked = new Extender({
    cache,
    binder: hamiApi,
    defaultPolicy: 'fragmentation',
    log,
    metrics: new Metrics({ defaultMetrics: false }),
    shares: { locks, api: hamiApi },
  });
  const mix = cache.sizeMix();
  t.ok(
    mix.some((e) => e.milli < 1000),
    'the size mix holds the shares',
  );
  const incoming: TracePod[] = [250, 500, 400, 100, 1000].map((m) => ({ cpuMilli: 2000, memMiB: 8192, numGpu: 1, gpuMilli: m, models: [], gpuSpec: '' }));
  incoming.push({ cpuMilli: 4000, memMiB: 16384, numGpu: 2, gpuMilli: 1000, models: [], gpuSpec: '' });
  for (const p of incoming) {
    const q = pod(p);
    const limits: Record<string, string> = { [RES]: String(p.numGpu) };
    if (p.gpuMilli < 1000)
      Object.assign(limits, { 'nvidia.com/gpumem': String(shareOf(p.gpuMilli).mem), 'nvidia.com/gpucores': String(shareOf(p.gpuMilli).cores) });
    q.spec!.containers[0]!.resources!.limits = limits;
    const got = await ext.prioritize({ Pod: q, NodeNames: nodes.map((n) => n.name) });
    const ask = traceAsk(p, RES);
    const { feasible, raw, want } = simulatorScores(views, ask, mix);
    t.same(
      got.map((h) => h.Score),
      want,
      `${p.numGpu} x ${p.gpuMilli}m: the same 0..10 scores`,
    );
    t.same(
      (await locked.prioritize({ Pod: q, NodeNames: nodes.map((n) => n.name) })).map((h) => h.Score),
      want,
      `${p.numGpu} x ${p.gpuMilli}m: the same with share binds on, nothing in flight`,
    );
    t.same(
      nodes.map((n) => cache.shareBindsInFlight(n.name)),
      nodes.map(() => 0),
      'nothing in flight',
    );
    if (raw.length > 1) t.ok(new Set(raw).size > 1, 'the scores discriminate');
    if (p.numGpu !== 1 || p.gpuMilli >= 1000) continue;
    // On every feasible node: the GPU the bind picks is the one the simulator's choice names
    // (the choice its score was for), the bind given the node's and the pod's figures.
    for (let i = 0; i < views.length; i++) {
      if (!feasible[i]) continue;
      const choice = sluiceScore(views[i]!, ask, mix).choice;
      t.ok(
        choicesFor(views[i]!.gpus, ask).some((c) => JSON.stringify(c) === JSON.stringify(choice)),
        'a valid choice',
      );
      const devices = cache.inventory().find((n) => n.name === nodes[i]!.name)!.gpus!;
      const s = { count: 1, memMiB: shareOf(p.gpuMilli).mem, memPercent: 0, cores: shareOf(p.gpuMilli).cores };
      const cv = cache.nodeView(nodes[i]!.name, RES)!;
      const onNode = { host: { cpuFreeMilli: cv.cpuFreeMilli, memFreeMiB: cv.memFreeMiB, product: cv.product }, cpuMilli: p.cpuMilli, memMiB: p.memMiB };
      const placed = placeContainers(devices, [s], policyPick(POLICY_BY_NAME.fragmentation, mix, RES, onNode));
      if (!('uses' in placed)) {
        t.fail(`bind found no GPU on ${nodes[i]!.name}`);
        continue;
      }
      const d = devices.find((x) => x.uuid === placed.uses[0]![0]!.uuid)!;
      const idle = d.usedSlots === 0;
      const wantGpu = choice.on === 'idle' ? 'idle' : choice.on === 'partial' ? choice.free : 'whole';
      t.equal(idle ? 'idle' : freeShareMilli(d), wantGpu, `${nodes[i]!.name}, ${p.gpuMilli}m: GPU ${d.index}`);
    }
  }
});

// The same placements, GPU index included: a sequence of share pods scheduled live (the
// stand-in apiserver, the informers, the extender's filter, prioritize and bind through
// HAMi's protocol, and a node agent doing what HAMi's plugin does on Allocate) and replayed
// by the simulator's engine (simulate(), the live path's choose for the GPU within the
// node). kube-scheduler's part is played as it plays it: its CPU/memory filter before the
// extender's, and the best score (the first listed, by name, among equals) bound.
//
// The size mix is the cache's (the simulator is given it): the ring holds exactly one
// period of the sequence, filled first by pods that stay pending, so every pod that arrives
// evicts one of its own shape and the mix stays the same throughout (checked at each step).
t.test('a sequence of share pods: the extender and the simulator place each on the same node and GPU', async (t) => {
  const { StandInApiserver } = await import('../../bench/apiserver/standin.js');
  const { ClusterWatcher } = await import('../../cluster/informers.js');
  const { KubeBinder } = await import('../../scheduler/binder.js');
  const { HamiNodeLocks } = await import('../../scheduler/hami-bind.js');
  const { HamiAgent, hamiNode } = await import('../helpers/hami-agent.js');
  const { simulate } = await import('../../bench/simulate/engine.js');
  const GPU_MIB = 16000;
  const nodes: TraceNode[] = [
    { name: 'h0', cpuMilli: 16000, memMiB: 65536, gpus: 2, model: 'T4' },
    { name: 'h1', cpuMilli: 24000, memMiB: 131072, gpus: 4, model: 'T4' },
    { name: 'h2', cpuMilli: 12000, memMiB: 65536, gpus: 2, model: 'T4' },
    { name: 'h3', cpuMilli: 32000, memMiB: 131072, gpus: 4, model: 'T4' },
  ];
  // One period: shares of 100..700 milli (as memory and cores in proportion) and a whole
  // GPU asked as a share of all its memory and cores; CPU heavy enough to run out.
  const period: TracePod[] = [
    [250, 2000],
    [500, 4000],
    [300, 8000],
    [100, 2000],
    [700, 6000],
    [200, 4000],
    [1000, 8000],
  ].map(([milli, cpuMilli]) => ({ cpuMilli: cpuMilli!, memMiB: 8192, numGpu: 1, gpuMilli: milli!, models: [], gpuSpec: '' }));
  const sequence = [...period, ...period, ...period];

  const api = await StandInApiserver.start();
  for (const n of nodes) {
    const v = hamiNode(n.name, { gpus: n.gpus, memMiB: GPU_MIB, split: 10, product: 'T4' });
    v.status!.allocatable = { ...v.status!.allocatable, cpu: `${n.cpuMilli}m`, memory: `${n.memMiB}Mi` };
    v.status!.capacity = v.status!.allocatable;
    api.create('nodes', v);
  }
  const kc = api.kubeConfig();
  const metrics = new Metrics({ defaultMetrics: false });
  const log = createLogger('error', new Writable({ write: (_c, _e, d) => d() }));
  const names = { resource: RES, memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' };
  const cache = new ClusterCache({ resources: [RES], assumeTtlMs: 30000, recentPodWindow: period.length, sharing: { names, handshakeTimeoutMs: 60000 } });
  const watcher = new ClusterWatcher(kc, cache, log, metrics);
  watcher.start();
  const stopAgent = new HamiAgent(kc).run(nodes.map((n) => n.name));
  t.teardown(async () => {
    stopAgent();
    await watcher.stop();
    await api.close();
  });
  const until = async (what: string, ok: () => boolean, ms = 10000): Promise<void> => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await until('cache sync', () => watcher.synced());
  const binder = new KubeBinder(kc);
  const locks = new HamiNodeLocks({ api: binder, lockExpireMs: 300000, lockWaitMs: 10000, peekLock: (n) => cache.hamiLock(n) });
  cache.onChange((c) => c.kind === 'node' && locks.nodeChanged(c.name));
  const ext = new Extender({ cache, binder, defaultPolicy: 'fragmentation', log, metrics, shares: { locks, api: binder } });

  const sharePodOf = (name: string, p: TracePod): V1Pod =>
    ({
      metadata: { name, namespace: 'team-a' },
      spec: {
        containers: [
          {
            name: 'main',
            image: 'registry.k8s.io/pause:3.9',
            resources: {
              requests: { cpu: `${p.cpuMilli}m`, memory: `${p.memMiB}Mi` },
              limits: { [RES]: '1', 'nvidia.com/gpumem': String((p.gpuMilli * GPU_MIB) / 1000), 'nvidia.com/gpucores': String(p.gpuMilli / 10) },
            },
          },
        ],
      },
    }) as V1Pod;
  const create = async (name: string, p: TracePod): Promise<V1Pod> => {
    const created = api.create<V1Pod>('pods', sharePodOf(name, p));
    await until(`pod ${name} seen`, () => !!cache.pod(created.metadata!.uid!));
    return created;
  };
  // The ring: one period of pods that never run.
  for (let i = 0; i < period.length; i++) await create(`history-${i}`, period[i]!);
  const mix = cache.sizeMix();
  t.equal(mix.length, period.length, "the mix: the period's shapes");

  const live: { node: string | null; gpus: number[] }[] = [];
  for (let i = 0; i < sequence.length; i++) {
    const p = sequence[i]!;
    const pod = await create(`s${i}`, p);
    t.same(cache.sizeMix(), mix, `pod ${i}: the same mix`);
    // kube-scheduler's NodeResourcesFit first, then the extender's filter and prioritize.
    const roomy = nodes
      .map((n) => n.name)
      .filter((n) => {
        const v = cache.nodeView(n, RES)!;
        return v.cpuFreeMilli! >= p.cpuMilli && v.memFreeMiB! >= p.memMiB;
      });
    const passed = roomy.length ? ((await ext.filter({ Pod: pod, NodeNames: roomy })).NodeNames ?? []) : [];
    if (passed.length === 0) {
      live.push({ node: null, gpus: [] });
      continue;
    }
    const scores = await ext.prioritize({ Pod: pod, NodeNames: passed });
    const best = scores.reduce((a, b) => (b.Score > a.Score ? b : a)).Host;
    const r = await ext.bind({ PodName: `s${i}`, PodNamespace: 'team-a', PodUID: pod.metadata!.uid!, Node: best });
    t.equal(r.Error ?? '', '', `s${i} bound to ${best}`);
    await until(`s${i} allocated`, () => cache.pod(pod.metadata!.uid!)?.annotations['hami.io/bind-phase'] === 'success');
    const uuid = api.get<V1Pod>('pods', 'team-a', `s${i}`)!.metadata!.annotations!['hami.io/vgpu-devices-allocated']!.split(',')[0]!;
    live.push({ node: best, gpus: [Number(uuid.slice(`GPU-${best}-`.length))] });
  }

  const sim = simulate({ nodes, pods: sequence, policy: 'fragmentation', seed: 1, mix, ties: 'name', asListed: true, recordPlacements: true });
  t.same(sim.placements, live, 'the same node and GPU index for every pod');
  const placed = live.filter((x) => x.node !== null);
  t.ok(live.length - placed.length > 0, `some pods find no node with CPU left (${live.length - placed.length}): failures agree too`);
  const gpuKey = (x: { node: string | null; gpus: number[] }): string => `${x.node}/${x.gpus[0]}`;
  t.ok(placed.length > new Set(placed.map(gpuKey)).size, 'GPUs are shared: the index within the node is exercised');
  t.ok(new Set(placed.map((x) => x.gpus[0])).size > 1, 'and not always GPU 0');
});
