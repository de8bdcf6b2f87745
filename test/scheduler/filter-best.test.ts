// scheduler.filterBest: filter passes only the k nodes the pod's policy places it best on
// (the full-precision score prioritize scales to 0..10; equal scores to the smallest node
// name), the other fitting nodes fail as resolvable with one shared reason; pods asking
// no GPUs are untouched. The expected sets are computed here by sorting, independently of
// placement/best-nodes.ts.
import t from 'tap';
import { Writable } from 'node:stream';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { ClusterCache } from '../../cluster/cache.js';
import { podHostRequests } from '../../cluster/pod-request.js';
import { Extender, NODES_PER_SLICE } from '../../scheduler/extender.js';
import type { PodBinder } from '../../scheduler/binder.js';
import { podAsk } from '../../scheduler/pod-ask.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { POLICY_BY_NAME } from '../../placement/policies.js';
import type { PolicyName } from '../../placement/types.js';
import type { ExtenderFilterResult } from '../../scheduler/wire.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';
import { startServer } from '../helpers/server.js';

const RES = 'nvidia.com/gpu';
const noBinder = { bind: () => Promise.reject(new Error('not in this test')) } as unknown as PodBinder;
const quiet = () => createLogger('error', new Writable({ write: (_c, _e, d) => d() }));

// 14 nodes: mixed sizes and fills, so scores differ, and four empty 8-GPU nodes that tie.
// Names are not in score order, and the request lists them shuffled.
function cluster(): { nodes: V1Node[]; pods: V1Pod[] } {
  const sizes = [8, 4, 8, 2, 8, 4, 8, 8, 4, 2, 8, 8, 8, 8];
  const used = [5, 1, 0, 1, 3, 3, 7, 0, 2, 0, 6, 0, 1, 0];
  const nodes = sizes.map((g, i) => gpuNode(`node-${String.fromCharCode(110 - i)}`, { gpus: g }));
  const pods: V1Pod[] = [];
  used.forEach((u, i) => {
    for (let k = 0; k < u; k++) pods.push(gpuPod(`run-${i}-${k}`, { node: nodes[i]!.metadata!.name!, gpus: 1, phase: 'Running' }));
  });
  // A few 2- and 4-GPU pods in the recent mix, so fragmentation sees more than one shape.
  pods.push(gpuPod('run-big-1', { node: 'node-n', gpus: 2, phase: 'Running' }));
  return { nodes, pods };
}

function extender(filterBest: number, defaultPolicy: PolicyName = 'fragmentation'): { ext: Extender; cache: ClusterCache; metrics: Metrics; names: string[] } {
  const { nodes, pods } = cluster();
  const cache = new ClusterCache({ resources: [RES], assumeTtlMs: 30000, recentPodWindow: 1000 });
  cache.replaceAll(nodes, pods);
  const metrics = new Metrics({ defaultMetrics: false });
  const ext = new Extender({ cache, binder: noBinder, defaultPolicy, log: quiet(), metrics, filterBest });
  const names = nodes.map((n) => n.metadata!.name!);
  // A fixed shuffle of the request order.
  names.sort((a, b) => ((a.charCodeAt(5) * 7) % 13) - ((b.charCodeAt(5) * 7) % 13));
  return { ext, cache, metrics, names };
}

/** The k best by the policy's full-precision score, equal scores to the smaller name. */
function expectedBest(cache: ClusterCache, pod: V1Pod, names: readonly string[], k: number, policy: PolicyName): string[] {
  const ask = podAsk(pod, [RES]).asks[0]!;
  const host = podHostRequests(pod);
  const main = { ...ask, cpuMilli: host.cpuMilli, memMiB: host.memMiB };
  const mix = cache.sizeMix();
  const scored = names
    .map((n) => ({ n, v: cache.nodeView(n, RES)! }))
    .filter(({ v }) => v.gpus !== undefined && v.gpus.freeWhole >= main.count)
    .map(({ n, v }) => ({ n, s: POLICY_BY_NAME[policy].score(v as typeof v & { gpus: NonNullable<typeof v.gpus> }, main, mix) }));
  scored.sort((a, b) => b.s - a.s || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
  return scored.slice(0, k).map((x) => x.n);
}

for (const policy of ['fragmentation', 'binpack'] as const) {
  t.test(`${policy}: filter keeps exactly the k nodes prioritize ranks highest`, async (t) => {
    for (const k of [1, 3]) {
      for (const gpus of [1, 2, 4]) {
        const { ext, cache, metrics, names } = extender(k, policy);
        const pod = gpuPod(`incoming-${gpus}`, { gpus });
        const r = await ext.filter({ Pod: pod, NodeNames: names });
        const fitting = names.filter((n) => cache.nodeView(n, RES)!.gpus!.freeWhole >= gpus);
        t.ok(fitting.length > k, `${gpus} GPU(s): more fitting nodes (${fitting.length}) than k = ${k}`);
        const want = expectedBest(cache, pod, names, k, policy);
        t.same([...r.NodeNames!].sort(), [...want].sort(), `k=${k}, ${gpus} GPU(s): the ${k} best by full-precision score, ties to the smallest name`);
        t.same(
          r.NodeNames,
          names.filter((n) => want.includes(n)),
          'in request order',
        );
        const dropped = fitting.filter((n) => !want.includes(n));
        t.same(
          Object.keys(r.FailedNodes).filter((n) => fitting.includes(n)),
          [],
          'the other fitting nodes are left out: not failed',
        );
        t.same(
          Object.keys(r.FailedAndUnresolvableNodes).filter((n) => fitting.includes(n)),
          [],
          'and not unresolvable: preemption still considers them',
        );
        const misfits = names.filter((n) => !fitting.includes(n));
        t.same(
          [...Object.keys(r.FailedNodes), ...Object.keys(r.FailedAndUnresolvableNodes)].sort(),
          [...misfits].sort(),
          'the failed lists hold exactly the nodes that do not fit, as without filterBest',
        );
        t.equal(r.Error, '');
        // The same ranking as prioritize: no dropped node scores above a kept one there.
        const pr = await ext.prioritize({ Pod: pod, NodeNames: names });
        const score = new Map(pr.map((h) => [h.Host, h.Score]));
        const worstKept = Math.min(...want.map((n) => score.get(n)!));
        const bestDropped = Math.max(...dropped.map((n) => score.get(n)!));
        t.ok(worstKept >= bestDropped, `prioritize: kept score ${worstKept} >= dropped ${bestDropped}`);
        if (k === 1) t.equal(score.get(want[0]!), Math.max(...pr.map((h) => h.Score)), "k=1: the kept node has prioritize's top score");
        const m = await metrics.registry.getSingleMetricAsString('sluice_filter_rejections_total');
        t.match(m, new RegExp(`reason="not_best"} ${dropped.length}\\b`), 'counted under not_best');
      }
    }
  });
}

t.test('ties go to the smallest node name', async (t) => {
  // Four empty 8-GPU nodes (node-l, node-g, node-c, node-a) tie for an 8-GPU pod under binpack.
  const { ext, names } = extender(2, 'binpack');
  const r = await ext.filter({ Pod: gpuPod('eight', { gpus: 8 }), NodeNames: names });
  t.same([...r.NodeNames!].sort(), ['node-a', 'node-c']);
});

t.test('pods asking no GPUs are untouched', async (t) => {
  const { ext, names } = extender(1);
  const r = await ext.filter({ Pod: gpuPod('cpu-only', { gpus: 0 }), NodeNames: names });
  t.same(r.NodeNames, names, 'every node passes');
  t.same(r.FailedNodes, {});
});

t.test('k at or above the fitting nodes: all of them pass, as without filterBest', async (t) => {
  const pod = gpuPod('four', { gpus: 4 });
  const off = await extender(0).ext.filter({ Pod: pod, NodeNames: extender(0).names });
  for (const k of [off.NodeNames!.length, off.NodeNames!.length + 5, 1000]) {
    const { ext, names } = extender(k);
    const r = await ext.filter({ Pod: pod, NodeNames: names });
    t.same(r.NodeNames, off.NodeNames, `k=${k}: the same nodes pass`);
    t.same(r.FailedNodes, off.FailedNodes, `k=${k}: the same failures and reasons`);
  }
});

t.test('Nodes form: the kept node objects are echoed', async (t) => {
  const { nodes, pods } = cluster();
  const cache = new ClusterCache({ resources: [RES], assumeTtlMs: 30000, recentPodWindow: 1000 });
  cache.replaceAll(nodes, pods);
  const ext = new Extender({
    cache,
    binder: noBinder,
    defaultPolicy: 'fragmentation',
    log: quiet(),
    metrics: new Metrics({ defaultMetrics: false }),
    filterBest: 2,
  });
  const pod = gpuPod('two', { gpus: 2 });
  const r = await ext.filter({ Pod: pod, Nodes: { items: nodes } });
  const want = expectedBest(
    cache,
    pod,
    nodes.map((n) => n.metadata!.name!),
    2,
    'fragmentation',
  );
  t.same(r.Nodes!.items.map((n) => n.metadata!.name).sort(), [...want].sort());
  t.equal(r.NodeNames, null);
});

t.test('a bad k is refused when the extender is made', async (t) => {
  const { nodes, pods } = cluster();
  const cache = new ClusterCache({ resources: [RES], assumeTtlMs: 30000, recentPodWindow: 1000 });
  cache.replaceAll(nodes, pods);
  for (const k of [-1, 1.5, Number.NaN])
    t.throws(
      () => new Extender({ cache, binder: noBinder, defaultPolicy: 'binpack', log: quiet(), metrics: new Metrics({ defaultMetrics: false }), filterBest: k }),
      /filterBest must be a whole number >= 0/,
    );
});

t.test('more nodes than one slice: the same k best as a single pass would give', async (t) => {
  const n = NODES_PER_SLICE + 200;
  const nodes = Array.from({ length: n }, (_, i) => gpuNode(`big-${String(i).padStart(5, '0')}`, { gpus: 8 }));
  const pods: V1Pod[] = [];
  // Every 97th node has some GPUs in use, so binpack prefers those: the fullest win.
  for (let i = 0; i < n; i += 97)
    for (let g = 0; g < 1 + (i % 5); g++) pods.push(gpuPod(`r${i}-${g}`, { node: nodes[i]!.metadata!.name!, gpus: 1, phase: 'Running' }));
  const cache = new ClusterCache({ resources: [RES], assumeTtlMs: 30000, recentPodWindow: 1000 });
  cache.replaceAll(nodes, pods);
  const ext = new Extender({ cache, binder: noBinder, defaultPolicy: 'binpack', log: quiet(), metrics: new Metrics({ defaultMetrics: false }), filterBest: 3 });
  const names = nodes.map((x) => x.metadata!.name!).reverse();
  const pod = gpuPod('one', { gpus: 1 });
  const r = await ext.filter({ Pod: pod, NodeNames: names });
  t.same([...r.NodeNames!].sort(), [...expectedBest(cache, pod, names, 3, 'binpack')].sort());
  t.same(r.FailedNodes, {}, 'every node fits: none failed, the ones not kept are left out');
});

t.test('through the server: scheduler.filterBest from the config reaches filter', async (t) => {
  const { nodes, pods } = cluster();
  const s = await startServer({ nodes, pods }, { defaultPolicy: 'fragmentation', scheduler: { filterBest: 1 } });
  t.teardown(() => s.close());
  const pod = gpuPod('via-http', { gpus: 1 });
  const names = nodes.map((n) => n.metadata!.name!);
  const r = await s.post<ExtenderFilterResult>('/scheduler/filter', { Pod: pod, NodeNames: names });
  t.equal(r.status, 200);
  t.equal(r.body.NodeNames!.length, 1, 'one node passes');
  t.same(r.body.FailedNodes, {}, 'the others are left out of the answer');
});
