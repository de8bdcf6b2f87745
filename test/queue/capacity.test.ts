// Capacity: placement of every pod of a unit onto real nodes with the same fit() the
// extender uses; best-effort GPUs are free for guaranteed units only; selectors, cordon
// and health respected. And the check the issue requires: the queue's fit answer for a
// node equals the extender's filter answer for the same node and pod.
import t from 'tap';
import { Writable } from 'node:stream';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { Extender } from '../../scheduler/extender.js';
import { KubeBinder } from '../../scheduler/binder.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { CapacityModel, type CapacityNode } from '../../queue/capacity.js';
import { buildState, capacityNodes as capacityNodesOf } from '../../queue/state.js';
import { unitPod } from '../../queue/units.js';
import type { ClusterCache } from '../../cluster/cache.js';
import { gpuNode, gpuPod, unreachableKubeConfig } from '../helpers/k8s.js';
import { hamiNode } from '../helpers/hami-agent.js';
import { deviceMisfit, placeContainers } from '../../placement/shares.js';
import { GPU, T0, keys, newCache, newShareCache, pass, queuedPod, queuedShare, unitPodOf, waitOf } from './helpers.js';

const H100 = 'NVIDIA-H100-80GB-HBM3';
const A10 = 'NVIDIA-A10';

t.test('a guaranteed unit fits on a node full of best-effort pods; a best-effort unit does not', async (t) => {
  const fullOfBe = Array.from({ length: 8 }, (_, i) => queuedPod(`be${i}`, { qos: 'best-effort', node: 'n1' }));
  const cache = newCache(
    [gpuNode('n1', { gpus: 8 })],
    [...fullOfBe, queuedPod('g', { gpus: 4, created: T0 }), queuedPod('be-new', { gpus: 1, qos: 'best-effort', created: T0 })],
  );
  const { ev } = pass(cache, 'unlimited', T0 + 1000);
  t.same(keys(ev), ['team-a/g/g']);
  const be = waitOf(ev, 'team-a/be-new/be-new')!;
  t.equal(be.waitingFor, 'capacity');
  t.match(be.reason, /no node has 1 idle nvidia\.com\/gpu free now/);

  // Guaranteed units reclaim what is there and no more: 8 best-effort GPUs, two 4-GPU
  // guaranteed jobs fit, a third does not.
  const three = newCache([gpuNode('n1', { gpus: 8 })], [...fullOfBe, ...[0, 1, 2].map((i) => queuedPod(`g${i}`, { gpus: 4, created: T0 + i }))]);
  t.same(keys(pass(three, 'unlimited', T0 + 1000).ev), ['team-a/g0/g0', 'team-a/g1/g1']);

  // Pods sluice does not manage, and guaranteed pods, are not reclaimable.
  const others = [gpuPod('unmanaged', { node: 'n1', gpus: 4 }), queuedPod('g-run', { node: 'n1', gpus: 4 })];
  const c2 = newCache([gpuNode('n1', { gpus: 8 })], [...others, queuedPod('g', { gpus: 1 })]);
  t.same(keys(pass(c2, 'unlimited', T0).ev), []);
});

t.test('node selectors and required node affinity are respected', async (t) => {
  const nodes = [gpuNode('a', { gpus: 8, labels: { zone: 'a' } }), gpuNode('b', { gpus: 8, labels: { zone: 'b' } })];
  const affinity = (op: string, values: string[]) => ({
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: op, values }] }] } },
  });
  const cache = newCache(nodes, [
    queuedPod('fill-b', { node: 'b', gpus: 6 }), // b has 2 free, a 8
    queuedPod('sel-b', { gpus: 4, nodeSelector: { zone: 'b' }, created: T0 }),
    queuedPod('aff-notin-a', { gpus: 4, affinity: affinity('NotIn', ['a']), created: T0 + 1 }),
    queuedPod('aff-in-b', { gpus: 2, affinity: affinity('In', ['b']), created: T0 + 2 }),
    queuedPod('sel-a', { gpus: 8, nodeSelector: { zone: 'a' }, created: T0 + 3 }),
  ]);
  const { ev } = pass(cache, 'unlimited', T0 + 1000);
  t.same(keys(ev), ['team-a/aff-in-b/aff-in-b', 'team-a/sel-a/sel-a'], 'a had 8 free, but not for pods that must run on b');
  for (const k of ['team-a/sel-b/sel-b', 'team-a/aff-notin-a/aff-notin-a']) {
    t.match(waitOf(ev, k)!.reason, /no node has 4 nvidia\.com\/gpu free now/, `${k}: waiting helps (b could take it once empty)`);
  }
  const nowhere = newCache(nodes, [queuedPod('mars', { nodeSelector: { zone: 'mars' } })]);
  t.match(waitOf(pass(nowhere, 'unlimited', T0).ev, 'team-a/mars/mars')!.reason, /no node could ever take 1 nvidia\.com\/gpu/);
});

t.test('cordoned, NotReady and GPU-disabled nodes are never used', async (t) => {
  const cache = newCache(
    [
      gpuNode('cordoned', { gpus: 8, cordoned: true }),
      gpuNode('notready', { gpus: 8, ready: false }),
      gpuNode('disabled', { gpus: 8, labels: { 'sluice.io/gpu-disabled': 'true' } }),
    ],
    [queuedPod('p', { gpus: 1 })],
  );
  const { ev } = pass(cache, 'unlimited', T0);
  t.same(keys(ev), []);
  t.match(waitOf(ev, 'team-a/p/p')!.reason, /no node could ever take/);
  cache.upsertNode(gpuNode('cordoned', { gpus: 8 })); // uncordoned
  t.same(keys(pass(cache, 'unlimited', T0).ev), ['team-a/p/p']);
});

t.test('binpack: the fullest node that fits is taken, so whole nodes stay free for big jobs', async (t) => {
  const node = (name: string, free: number): CapacityNode => ({
    name,
    product: 'NVIDIA-A100-SXM4-80GB',
    unusable: null,
    labels: {},
    capacity: { [GPU]: 8 },
    free: { [GPU]: free },
    bestEffort: {},
  });
  const m = new CapacityModel([node('empty', 8), node('half', 4), node('almost', 1)]);
  t.match(m.place([unitPodOf('a', 1)], 'guaranteed'), { ok: true, nodes: ['almost'] });
  t.match(m.place([unitPodOf('b', 3)], 'guaranteed'), { ok: true, nodes: ['half'] });
  t.match(m.place([unitPodOf('c', 8)], 'guaranteed'), { ok: true, nodes: ['empty'] });
  t.match(m.place([unitPodOf('d', 1)], 'guaranteed'), { ok: true, nodes: ['half'] });
  t.equal(m.idleGpus(GPU), 0);
  t.match(m.place([unitPodOf('e', 1)], 'guaranteed'), { ok: false, resolvable: true });
});

t.test('a model kept across passes: takenBy says what a placed pod took, giveBack returns it exactly', async (t) => {
  const node = (name: string, free: number, be = 0): CapacityNode => ({
    name,
    product: 'NVIDIA-A100-SXM4-80GB',
    unusable: null,
    labels: {},
    capacity: { [GPU]: 8 },
    free: { [GPU]: free },
    bestEffort: { [GPU]: be },
  });
  const start = [node('a', 2, 6), node('b', 0)];
  const m = new CapacityModel(start);
  const g = unitPodOf('g', 4);
  const placed = m.place([g], 'guaranteed');
  t.match(placed, { ok: true, nodes: ['a'] });
  // 2 idle GPUs, then 2 reclaimed from best-effort pods.
  t.same(m.takenBy(g), { node: 'a', taken: [{ resource: GPU, delta: { idle: -2, bestEffort: -2 } }] });
  const big = unitPodOf('big', 8);
  t.match(m.place([big], 'guaranteed'), { ok: false, resolvable: true }, 'nothing has 8 now (remembered for this shape)');
  m.giveBack('a', m.takenBy(g)!.taken);
  t.same(m.nodeList(), start, 'the model is as it was');
  // A running best-effort pod ends: its GPUs come back idle.
  m.giveBack('a', [{ resource: GPU, delta: { idle: -6, bestEffort: 6 } }]);
  t.match(m.place([big], 'guaranteed'), { ok: true, nodes: ['a'] }, 'the shape that failed fits once GPUs came back');
  m.giveBack('a', m.takenBy(big)!.taken);
  // An undone placement leaves nothing behind.
  const u = unitPodOf('u', 1);
  const r = m.place([u], 'best-effort');
  t.ok(r.ok);
  if (r.ok) r.undo();
  t.equal(m.takenBy(u), undefined);
  // More best-effort GPUs given back than the node counts: never below zero.
  m.giveBack('b', [{ resource: GPU, delta: { idle: -1, bestEffort: 3 } }]);
  t.same(m.nodeList().find((n) => n.name === 'b')!.bestEffort, { [GPU]: 0 });
});

t.test('a search made inside a tentative placement is not taken for current after it is undone', async (t) => {
  // wouldPlace() put the version back after its undo; numbers were reused, so the search
  // for the second 4-GPU pod (made with 4 GPUs taken) passed for current when a later
  // what-if had taken 8: 12 GPUs "fitted" an 8-GPU node.
  const m = new CapacityModel([
    { name: 'n1', product: 'NVIDIA-A100-SXM4-80GB', unusable: null, labels: {}, capacity: { [GPU]: 8 }, free: { [GPU]: 8 }, bestEffort: {} },
  ]);
  t.ok(m.wouldPlace([unitPodOf('a', 4), unitPodOf('b', 4)], 'guaranteed'), 'two 4-GPU pods fit');
  t.notOk(m.wouldPlace([unitPodOf('z', 8), unitPodOf('c', 4)], 'guaranteed'), '8 + 4 do not fit 8');
  t.same(m.nodeList()[0]!.free, { [GPU]: 8 }, 'what-ifs leave the node as it was');
});

t.test('released pods not yet bound take their GPUs before anyone else', async (t) => {
  const cache = newCache([gpuNode('n1', { gpus: 4 })], [queuedPod('released', { gated: false, gpus: 4 }), queuedPod('w', { gpus: 1 })]);
  const { ev } = pass(cache, 'unlimited', T0);
  t.same(keys(ev), []);
  t.equal(waitOf(ev, 'team-a/w/w')!.waitingFor, 'capacity');
});

t.test('a guaranteed unit takes idle GPUs before reclaiming best-effort ones, as kube-scheduler would', async (t) => {
  // x: 4 GPUs, all held by best-effort pods. y: 8 idle GPUs. Guaranteed j1 (4) and j2 (8).
  // kube-scheduler preempts only when no node fits: j1 lands on y (4 idle there), after
  // which j2 (8) fits nowhere (x has only 4 GPUs in all). Only j1 may be released.
  const cache = newCache(
    [gpuNode('x', { gpus: 4 }), gpuNode('y', { gpus: 8 })],
    [
      ...[0, 1, 2, 3].map((i) => queuedPod(`be${i}`, { qos: 'best-effort', node: 'x' })),
      queuedPod('j1', { gpus: 4, created: T0 }),
      queuedPod('j2', { gpus: 8, created: T0 + 1 }),
    ],
  );
  const s = buildState(cache, 'unlimited', new Set());
  t.match(s.capacity.place([unitPodOf('j1', 4)], 'guaranteed'), { ok: true, nodes: ['y'] }, 'no preemption when a node has idle GPUs');
  const { ev } = pass(cache, 'unlimited', T0 + 1000);
  t.same(keys(ev), ['team-a/j1/j1'], 'j2 would be released and then sit unschedulable');
});

// ---- the queue's fit answer equals the extender's filter answer ----------------------

function extenderFor(cache: ClusterCache): Extender {
  const log = createLogger('silent', new Writable({ write: (_c, _e, d) => d() }));
  return new Extender({
    cache,
    binder: new KubeBinder(unreachableKubeConfig()),
    defaultPolicy: 'binpack',
    log,
    metrics: new Metrics({ defaultMetrics: false }),
  });
}

/** Nodes as buildState builds them (same inventory, labels, shared GPUs), best-effort none. */
const capacityNodes = (cache: ClusterCache): CapacityNode[] => [...capacityNodesOf(cache).values()];

t.test('queue fit == extender filter, node by node, for every pod shape', async (t) => {
  const nodes: V1Node[] = [
    gpuNode('empty8', { gpus: 8 }),
    gpuNode('used5of8', { gpus: 8 }),
    gpuNode('full4', { gpus: 4 }),
    gpuNode('h100', { gpus: 8, product: H100 }),
    gpuNode('a10', { gpus: 2, product: A10 }),
    gpuNode('cordoned', { gpus: 8, cordoned: true }),
    gpuNode('notready', { gpus: 8, ready: false }),
    gpuNode('disabled', { gpus: 8, labels: { 'sluice.io/gpu-disabled': 'true' } }),
    gpuNode('cpu-only', { gpus: 0 }),
    gpuNode('assumed', { gpus: 8 }),
  ];
  const running = [gpuPod('r1', { node: 'used5of8', gpus: 5 }), gpuPod('r2', { node: 'full4', gpus: 4 })];
  const shapes: V1Pod[] = [];
  for (const gpus of [1, 2, 3, 4, 6, 8, 9]) {
    for (const model of ['', 'a100', 'h100', 'a10', 'NVIDIA-A100-SXM4-80GB', 'a100,h100', 'v100']) {
      shapes.push(queuedPod(`p${gpus}-${model.replace(/[^a-z0-9]/gi, '') || 'any'}`, { gpus, model }));
    }
  }
  const cache = newCache(nodes, [...running, ...shapes]);
  t.ok(cache.assume('in-flight', 'assumed', [{ resource: GPU, count: 6 }]).ok, 'a bind in flight holds 6 GPUs on node "assumed"');
  const ext = extenderFor(cache);
  const capNodes = capacityNodes(cache);
  t.equal(capNodes.length, nodes.length - 1, 'every GPU node is modelled (the CPU-only node has nothing to place)');
  const model = new CapacityModel(capNodes);
  let compared = 0;
  let passedBoth = 0;
  let mismatches = 0;
  for (const pod of shapes) {
    const up = unitPod(cache.pod(pod.metadata!.uid!)!);
    for (const n of nodes) {
      const name = n.metadata!.name!;
      const r = await ext.filter({ Pod: pod, NodeNames: [name] });
      const extOk = r.NodeNames?.includes(name) ?? false;
      const extResolvable = name in r.FailedNodes;
      const cn = capNodes.find((c) => c.name === name);
      for (const qos of ['guaranteed', 'best-effort'] as const) {
        // The CPU-only node is not in the model: nothing can be placed there.
        const m = cn ? model.misfit(cn, up, qos) : { resolvable: false };
        // And through a whole pass of buildState on a cluster of just that node.
        const single = newCache([n], [...running.filter((p) => p.spec!.nodeName === name)]);
        if (name === 'assumed') single.assume('in-flight', 'assumed', [{ resource: GPU, count: 6 }]);
        const placed = buildState(single, 'unlimited', new Set()).capacity.wouldPlace([up], qos);
        const queueOk = m === null;
        const same = queueOk === extOk && placed === extOk && (extOk || m!.resolvable === extResolvable);
        if (!same) {
          mismatches++;
          t.fail(
            `${pod.metadata!.name} on ${name} (${qos}): extender ${extOk ? 'fits' : extResolvable ? 'resolvable' : 'unresolvable'}, queue misfit ${JSON.stringify(m)}, wouldPlace ${placed}`,
          );
        }
        compared++;
        if (extOk) passedBoth++;
      }
    }
  }
  t.equal(mismatches, 0, `${compared} (pod, node, QoS) answers compared, ${passedBoth} fits`);
  t.ok(passedBoth > 20 && passedBoth < compared / 2, 'the cases mix fits and misfits');
});

t.test('with best-effort pods on a node the answers differ only for guaranteed pods, and only where the extender says preemption can help', async (t) => {
  const nodes = [gpuNode('n', { gpus: 8 })];
  const be = [0, 1, 2, 3, 4, 5].map((i) => queuedPod(`be${i}`, { qos: 'best-effort', node: 'n' }));
  const shapes = [1, 2, 3, 4, 8].map((g) => queuedPod(`p${g}`, { gpus: g }));
  const cache = newCache(nodes, [...be, ...shapes]);
  const ext = extenderFor(cache);
  for (const pod of shapes) {
    const up = unitPod(cache.pod(pod.metadata!.uid!)!);
    const r = await ext.filter({ Pod: pod, NodeNames: ['n'] });
    const extOk = r.NodeNames?.includes('n') ?? false;
    const bePlace = buildState(cache, 'unlimited', new Set()).capacity.wouldPlace([up], 'best-effort');
    const gPlace = buildState(cache, 'unlimited', new Set()).capacity.wouldPlace([up], 'guaranteed');
    t.equal(bePlace, extOk, `${pod.metadata!.name}: best-effort answer == extender`);
    t.equal(gPlace, true, `${pod.metadata!.name}: guaranteed fits by reclaiming best-effort GPUs`);
    if (!extOk) t.ok('n' in r.FailedNodes, `${pod.metadata!.name}: the extender marks the node resolvable, so kube-scheduler preempts`);
  }
});

// ---- the same for GPU shares on nodes HAMi's device plugin splits ---------------------

/** Places a share bind in flight on `node` (the assume ledger holds its memory, cores, slot). */
function assumeShare(cache: ClusterCache, uid: string, node: string, memMiB: number): boolean {
  const ask = { count: 1, memMiB, memPercent: 0, cores: 0 };
  return cache.assume(uid, node, [{ resource: GPU, count: 1 }], (ds) => {
    const placed = placeContainers(ds, [ask], (c, a) => c.find((d) => deviceMisfit(d, a) === null) ?? null);
    return 'misfit' in placed ? placed : { uses: placed.uses.flat() };
  }).ok;
}

t.test('queue fit == extender filter for GPU shares: memory, cores, slots, in-flight binds, health', async (t) => {
  const unhealthy = hamiNode('unhealthy', { gpus: 1, form: '9' });
  unhealthy.metadata!.annotations!['hami.io/node-nvidia-register'] = unhealthy.metadata!.annotations!['hami.io/node-nvidia-register']!.replace(
    ',true,',
    ',false,',
  );
  const cordoned = hamiNode('cordoned', { gpus: 2 });
  cordoned.spec = { unschedulable: true };
  const nodes: V1Node[] = [
    hamiNode('idle', { gpus: 2, memMiB: 16384, split: 10 }),
    hamiNode('part', { gpus: 2, memMiB: 16384, split: 10 }),
    hamiNode('slots', { gpus: 1, memMiB: 16384, split: 2 }),
    hamiNode('big', { gpus: 1, memMiB: 81920, split: 4, product: 'NVIDIA-A100-SXM4-80GB' }),
    hamiNode('assumed', { gpus: 1, memMiB: 16384, split: 10 }),
    unhealthy,
    cordoned,
    gpuNode('plain', { gpus: 4 }),
  ];
  const on = (name: string, node: string, index: number, memMiB: number, cores = 0) =>
    queuedShare(name, { queue: 'team-b', memMiB, cores, node, onGpu: { index, memMiB } });
  const running = [
    on('r1', 'part', 0, 12000),
    on('r2', 'part', 1, 4000, 60),
    on('r3', 'slots', 0, 100),
    on('r4', 'slots', 0, 100),
    on('r5', 'big', 0, 30000, 100),
  ];
  const shapes: V1Pod[] = [];
  const asks: Array<{ memMiB?: number; percent?: number; cores?: number; gpus?: number }> = [
    { memMiB: 1000 },
    { memMiB: 4000, cores: 30 },
    { memMiB: 8000 },
    { memMiB: 13000 },
    { memMiB: 20000 },
    { memMiB: 90000 },
    { percent: 10, cores: 10 },
    { percent: 50, cores: 50 },
    { percent: 100 },
    { cores: 100, memMiB: 1000 },
    { cores: 50, memMiB: 2000 },
    { gpus: 2, memMiB: 4000 },
    { gpus: 2, percent: 50 },
    {},
  ];
  asks.forEach((a, i) => {
    for (const model of ['', 'a100', 't4']) shapes.push(queuedShare(`s${i}-${model || 'any'}`, { ...a, model }));
  });
  const cache = newShareCache(nodes, [...running, ...shapes]);
  t.ok(assumeShare(cache, 'in-flight', 'assumed', 10000), 'a share bind in flight holds 10000 MiB on node "assumed"');
  const ext = extenderFor(cache);
  const capNodes = capacityNodes(cache);
  t.ok(capNodes.filter((n) => n.shared).length === nodes.length - 1, 'every HAMi node is modelled with its GPUs');
  const model = new CapacityModel(capNodes);
  let compared = 0;
  let passedBoth = 0;
  let mismatches = 0;
  for (const pod of shapes) {
    const up = unitPod(cache.pod(pod.metadata!.uid!)!, (p) => cache.gpuEquivalents(p));
    for (const n of nodes) {
      const name = n.metadata!.name!;
      const r = await ext.filter({ Pod: pod, NodeNames: [name] });
      const extOk = r.NodeNames?.includes(name) ?? false;
      const extResolvable = name in r.FailedNodes;
      const cn = capNodes.find((c) => c.name === name)!;
      for (const qos of ['guaranteed', 'best-effort'] as const) {
        const m = model.misfit(cn, up, qos);
        const single = newShareCache(
          [n],
          running.filter((p) => p.spec!.nodeName === name),
        );
        if (name === 'assumed') assumeShare(single, 'in-flight', 'assumed', 10000);
        const placed = buildState(single, 'unlimited', new Set()).capacity.wouldPlace([up], qos);
        const same = (m === null) === extOk && placed === extOk && (extOk || m!.resolvable === extResolvable);
        if (!same) {
          mismatches++;
          t.fail(
            `${pod.metadata!.name} on ${name} (${qos}): extender ${extOk ? 'fits' : extResolvable ? 'resolvable' : 'unresolvable'}, queue misfit ${JSON.stringify(m)}, wouldPlace ${placed}`,
          );
        }
        compared++;
        if (extOk) passedBoth++;
      }
    }
  }
  t.equal(mismatches, 0, `${compared} (pod, node, QoS) answers compared, ${passedBoth} fits`);
  t.ok(passedBoth > 30 && passedBoth < compared / 2, 'the cases mix fits and misfits');
});

t.test('best-effort shares on a GPU: the answers differ only for guaranteed pods, only where the extender says preemption can help', async (t) => {
  const nodes = [hamiNode('n', { gpus: 1, memMiB: 16384, split: 10 })];
  const be = [0, 1, 2].map((i) =>
    queuedShare(`be${i}`, { queue: 'team-b', qos: 'best-effort', memMiB: 5000, cores: 30, node: 'n', onGpu: { index: 0, memMiB: 5000 } }),
  );
  const shapes = [1000, 2000, 6000, 12000, 16384, 20000].map((m) => queuedShare(`p${m}`, { memMiB: m }));
  const cache = newShareCache(nodes, [...be, ...shapes]);
  const ext = extenderFor(cache);
  for (const pod of shapes) {
    const up = unitPod(cache.pod(pod.metadata!.uid!)!);
    const r = await ext.filter({ Pod: pod, NodeNames: ['n'] });
    const extOk = r.NodeNames?.includes('n') ?? false;
    const bePlace = buildState(cache, 'unlimited', new Set()).capacity.wouldPlace([up], 'best-effort');
    const gPlace = buildState(cache, 'unlimited', new Set()).capacity.wouldPlace([up], 'guaranteed');
    const name = pod.metadata!.name!;
    t.equal(bePlace, extOk, `${name}: best-effort answer == extender`);
    t.equal(gPlace, name !== 'p20000', `${name}: guaranteed fits by reclaiming best-effort shares, unless no GPU could ever hold it`);
    if (!extOk && gPlace) t.ok('n' in r.FailedNodes, `${name}: the extender marks the node resolvable, so kube-scheduler preempts`);
    if (!gPlace) t.ok('n' in r.FailedAndUnresolvableNodes, `${name}: unresolvable at the extender too`);
  }
});
