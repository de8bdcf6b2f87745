// Bad input gets a 400 (or an Error in the result) and changes nothing in the cache.
import t from 'tap';
import { fixture, gpuNode, gpuPod } from '../helpers/k8s.js';
import { startServer } from '../helpers/server.js';
import type { ExtenderArgs, ExtenderFilterResult, HostPriority } from '../../scheduler/wire.js';

const nodes = [gpuNode('g1', { gpus: 8 }), gpuNode('g2', { gpus: 4 })];
const pods = [gpuPod('running', { node: 'g1', gpus: 3 })];
const good = (): ExtenderArgs => {
  const a = fixture<ExtenderArgs>('scheduler-extender/filter-1.json');
  a.NodeNames = ['g1', 'g2'];
  return a;
};

t.test('malformed requests: 400 with a message, cache untouched', async (t) => {
  const s = await startServer({ nodes, pods }, { limits: { extenderBodyBytes: 64 * 1024 } });
  t.teardown(() => s.close());
  const before = JSON.stringify(s.running.cache.inventory());
  const cases: Array<[string, string, unknown, RegExp]> = [
    ['not JSON', '/scheduler/filter', '{"Pod": ', /not valid JSON/],
    ['no Pod', '/scheduler/filter', { NodeNames: ['g1'] }, /must have required property 'Pod'/],
    ['Pod without spec', '/scheduler/filter', { Pod: { metadata: {} }, NodeNames: ['g1'] }, /must have required property 'spec'/],
    ['containers not a list', '/scheduler/prioritize', { Pod: { metadata: {}, spec: { containers: 'x' } }, NodeNames: [] }, /containers must be array/],
    ['NodeNames not a list', '/scheduler/filter', { ...good(), NodeNames: 'g1' }, /NodeNames must be array,null/],
    ['Nodes items not objects', '/scheduler/filter', { ...good(), NodeNames: null, Nodes: { items: [1] } }, /must be object/],
    ['bind without Node', '/scheduler/bind', { PodName: 'a', PodNamespace: 'b', PodUID: 'c' }, /must have required property 'Node'/],
    ['bind with empty names', '/scheduler/bind', { PodName: '', PodNamespace: 'b', PodUID: 'c', Node: 'g1' }, /must NOT have fewer than 1 characters/],
    ['a JSON array', '/scheduler/filter', [], /must be object/],
  ];
  for (const [what, path, body, msg] of cases) {
    const r = await s.post<{ error: string }>(path, body);
    t.equal(r.status, 400, `${what}: 400`);
    t.match(r.body.error, msg, `${what}: says what is wrong`);
  }
  const big = await fetch(s.api + '/scheduler/filter', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...good(), pad: 'x'.repeat(100 * 1024) }),
  });
  t.equal(big.status, 413, 'oversized body: 413');
  t.equal(JSON.stringify(s.running.cache.inventory()), before, 'cache unchanged');
});

t.test('a pod with malformed GPU requests: an Error in the filter result, 400 on prioritize', async (t) => {
  const s = await startServer({ nodes, pods });
  t.teardown(() => s.close());
  const a = good();
  a.Pod.spec!.containers[0]!.resources = { limits: { 'nvidia.com/gpu': '1.5' } };
  const r = await s.post<ExtenderFilterResult>('/scheduler/filter', a);
  t.equal(r.status, 200);
  t.match(r.body.Error, /container .* asks "1.5" nvidia.com\/gpu; GPU counts must be whole numbers/);
  const p = await s.post<{ error: string }>('/scheduler/prioritize', a);
  t.equal(p.status, 400);
  t.match(p.body.error, /whole numbers/);
});

t.test('unknown nodes and nodes deleted mid-cycle', async (t) => {
  const s = await startServer({ nodes, pods: [...pods, good().Pod] }); // the pod waits, as the informer shows it
  t.teardown(() => s.close());
  const a = good();
  a.NodeNames = ['g1', 'ghost'];
  const r = await s.post<ExtenderFilterResult>('/scheduler/filter', a);
  t.same(r.body.NodeNames, ['g1']);
  t.same(r.body.FailedAndUnresolvableNodes, { ghost: "not in sluice's cache (deleted, or not seen yet)" });

  // g2 passes filter, then disappears before prioritize and bind.
  a.NodeNames = ['g1', 'g2'];
  t.same((await s.post<ExtenderFilterResult>('/scheduler/filter', a)).body.NodeNames, ['g1', 'g2']);
  s.running.cache.deleteNode('g2');
  const p = await s.post<HostPriority[]>('/scheduler/prioritize', a);
  t.same(
    p.body.find((h) => h.Host === 'g2'),
    { Host: 'g2', Score: 0 },
    'a vanished node scores 0',
  );
  const b = await s.post<{ Error: string }>('/scheduler/bind', { PodName: 'low-1', PodNamespace: 'team-a', PodUID: a.Pod.metadata!.uid, Node: 'g2' });
  t.equal(b.body.Error, "node g2 is not in sluice's cache (deleted, or not seen yet)");
  t.equal(s.running.cache.assumedCount, 0, 'nothing assumed');
});

t.test('a bind for a pod sluice never saw, without an apiserver, is refused clearly', async (t) => {
  const s = await startServer({ nodes, pods });
  t.teardown(() => s.close());
  const b = await s.post<{ Error: string }>('/scheduler/bind', { PodName: 'who', PodNamespace: 'team-a', PodUID: 'nope', Node: 'g1' });
  t.equal(b.body.Error, 'cannot read pod team-a/who before binding it: pod team-a/who is not in the cluster snapshot (sluice runs without an apiserver)');
});

t.test('a pod asking no GPU passes every node with a neutral score', async (t) => {
  const s = await startServer({ nodes: [...nodes, gpuNode('cpu', { gpus: 0 })], pods });
  t.teardown(() => s.close());
  const a = good();
  a.NodeNames = ['g1', 'cpu'];
  a.Pod.spec!.containers[0]!.resources = { requests: { cpu: '1' } };
  a.Pod.metadata!.resourceVersion = 'cpu-only';
  t.same((await s.post<ExtenderFilterResult>('/scheduler/filter', a)).body.NodeNames, ['g1', 'cpu']);
  t.same((await s.post<HostPriority[]>('/scheduler/prioritize', a)).body, [
    { Host: 'g1', Score: 5 },
    { Host: 'cpu', Score: 5 },
  ]);
});

t.test('ops endpoints: health, readiness, metrics', async (t) => {
  const s = await startServer({ nodes, pods });
  t.teardown(() => s.close());
  t.same(await (await fetch(s.ops + '/healthz')).json(), { status: 'ok' });
  t.match(await (await fetch(s.ops + '/readyz')).json(), { status: 'ready' });
  await s.post('/scheduler/filter', good());
  await s.post('/scheduler/filter', '{bad');
  const m = await (await fetch(s.ops + '/metrics')).text();
  t.match(m, /sluice_gpus\{resource="nvidia.com\/gpu",state="allocatable"\} 12/);
  t.match(m, /sluice_gpus\{resource="nvidia.com\/gpu",state="used"\} 3/);
  t.match(m, /sluice_extender_requests_total\{verb="filter",outcome="ok"\} 1/);
  t.match(m, /sluice_extender_duration_seconds_count\{verb="filter"\} 1/);
});

t.test('shapes that were 500s (issue 12): a 400 naming the field, cache untouched', async (t) => {
  const s = await startServer({ nodes, pods });
  t.teardown(() => s.close());
  const before = JSON.stringify(s.running.cache.inventory());
  const withPod = (edit: (p: any) => void): ExtenderArgs => {
    const a = good();
    edit(a.Pod);
    return a;
  };
  const withNode = (edit: (n: any) => void): ExtenderArgs => {
    const n: any = gpuNode('g1', { gpus: 8 });
    edit(n);
    return { ...good(), NodeNames: null, Nodes: { items: [n] } };
  };
  const cases: Array<[string, ExtenderArgs, RegExp]> = [
    ['containers: [null]', withPod((p) => (p.spec.containers = [null])), /body\/Pod\/spec\/containers\/0 must be object/],
    ['initContainers: 5', withPod((p) => (p.spec.initContainers = 5)), /body\/Pod\/spec\/initContainers must be array,null/],
    ['gpu-model annotation: 5', withPod((p) => (p.metadata.annotations = { 'sluice.io/gpu-model': 5 })), /annotations\/sluice.io~1gpu-model must be string/],
    ['status.conditions: 5', withNode((n) => (n.status.conditions = 5)), /conditions must be array,null/],
    ['status.conditions: [null]', withNode((n) => (n.status.conditions = [null])), /conditions\/0 must be object/],
  ];
  for (const [what, body, msg] of cases) {
    for (const verb of ['filter', 'prioritize']) {
      const r = await s.post<{ error: string }>(`/scheduler/${verb}`, body);
      t.equal(r.status, 400, `${what} (${verb}): 400`);
      t.match(r.body.error, msg, `${what} (${verb}): names the field`);
    }
  }
  // A node nested 10,000 deep: JSON.stringify cannot echo it back (stack overflow).
  const deep = JSON.stringify(withNode((n) => (n.metadata.deep = 'DEEP'))).replace('"DEEP"', '{"x":'.repeat(10000) + '1' + '}'.repeat(10000));
  const r = await s.post<{ error: string }>('/scheduler/filter', deep);
  t.equal(r.status, 400, 'a node nested 10,000 deep: 400');
  t.match(r.body.error, /nested too deeply/);
  t.equal(JSON.stringify(s.running.cache.inventory()), before, 'cache unchanged');
});

t.test('more nodes than limits.extenderMaxNodes: 400 before any work', async (t) => {
  const s = await startServer({ nodes, pods }, { limits: { extenderMaxNodes: 100 } });
  t.teardown(() => s.close());
  const r = await s.post<{ error: string }>('/scheduler/filter', { ...good(), NodeNames: Array.from({ length: 101 }, (_, i) => `n${i}`) });
  t.equal(r.status, 400);
  t.match(r.body.error, /NodeNames must NOT have more than 100 items/);
});
