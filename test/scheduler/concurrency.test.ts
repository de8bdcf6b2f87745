// 200 binds fired at once at a small cluster never put more GPUs on a node than it has,
// and a bind the apiserver rejects gives its GPUs back.
import t from 'tap';
import { gpuNode, gpuPod, unreachableKubeConfig } from '../helpers/k8s.js';
import { startServer } from '../helpers/server.js';
import { ClusterCache } from '../../cluster/cache.js';
import { KubeBinder } from '../../scheduler/binder.js';
import { Extender } from '../../scheduler/extender.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { Writable } from 'node:stream';

t.test('200 concurrent binds over HTTP: exactly the GPUs there are', async (t) => {
  const nodes = [gpuNode('g1', { gpus: 8 }), gpuNode('g2', { gpus: 4 }), gpuNode('g3', { gpus: 2 })];
  const pending = Array.from({ length: 200 }, (_, i) => gpuPod(`p${i}`, { gpus: 1 + (i % 3), uid: `u${i}` }));
  const s = await startServer({ nodes, pods: [gpuPod('holder', { node: 'g1', gpus: 3 }), ...pending] });
  t.teardown(() => s.close());
  const targets = ['g1', 'g2', 'g3'];
  const results = await Promise.all(
    pending.map((p, i) =>
      s.post<{ Error: string }>('/scheduler/bind', { PodName: p.metadata!.name, PodNamespace: 'team-a', PodUID: p.metadata!.uid, Node: targets[i % 3] }),
    ),
  );
  const inv = new Map(s.running.cache.inventory().map((n) => [n.name, n]));
  for (const n of targets) {
    const x = inv.get(n)!;
    t.ok(x.used + x.assumed <= x.total, `${n}: ${x.used + x.assumed} of ${x.total} GPUs placed, never more`);
  }
  const bound = results.filter((r) => r.body.Error === '');
  const asked = (i: number): number => 1 + (i % 3);
  const placed = new Map<string, number>();
  results.forEach((r, i) => {
    if (r.body.Error === '') placed.set(targets[i % 3]!, (placed.get(targets[i % 3]!) ?? 0) + asked(i));
  });
  t.equal((placed.get('g1') ?? 0) + 3, inv.get('g1')!.used + inv.get('g1')!.assumed, 'g1 accounting matches the binds that succeeded');
  t.ok(bound.length > 0 && bound.length < 200, `${bound.length} binds succeeded, the rest were refused`);
  t.ok(
    results.filter((r) => r.body.Error).every((r) => /free, pod needs|in all, pod needs/.test(r.body.Error)),
    'refusals say why',
  );
  // Every node ends up full or with less free than the smallest ask that was refused there.
  t.equal(inv.get('g2')!.free < 3, true);
});

t.test('a bind the apiserver cannot take is rolled back', async (t) => {
  const kc = unreachableKubeConfig();
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 10 });
  cache.replaceAll([gpuNode('g1', { gpus: 8 })], [gpuPod('p', { gpus: 4, uid: 'u-p' })]);
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write: (c: Buffer, _e, d) => (lines.push(c.toString()), d()) }));
  const ext = new Extender({ cache, binder: new KubeBinder(kc), defaultPolicy: 'binpack', log, metrics: new Metrics({ defaultMetrics: false }) });
  const r = await ext.bind({ PodName: 'p', PodNamespace: 'team-a', PodUID: 'u-p', Node: 'g1' });
  t.match(r.Error, /ECONNREFUSED|connect|fetch failed/i, `the API error comes back: ${r.Error}`);
  t.equal(cache.assumedCount, 0);
  t.equal(cache.inventory()[0]!.free, 8, 'the GPUs are free again');
  t.ok(lines.some((l) => l.includes('assumption rolled back')));
});
