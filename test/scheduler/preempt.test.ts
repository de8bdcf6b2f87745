// The preempt verb over HTTP on hand-made clusters: bad input, the assume ledger between
// eviction and bind, two nodes full of best-effort pods and a guaranteed 8-GPU job.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import type { ExtenderPreemptionResult } from '../../scheduler/wire.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';
import { startServer, type TestServer } from '../helpers/server.js';

const BE = { 'sluice.io/queue': 'team-a', 'sluice.io/qos': 'best-effort' };
const G = { 'sluice.io/queue': 'team-b', 'sluice.io/qos': 'guaranteed' };
const be = (name: string, node: string, gpus: number, created = '2026-11-22T10:00:00Z'): V1Pod => {
  const p = gpuPod(name, { node, gpus, uid: `uid-${name}`, labels: { ...BE } });
  p.spec!.priority = 100;
  p.metadata!.creationTimestamp = created as unknown as Date;
  return p;
};
const guaranteed = (name: string, node: string | undefined, gpus: number): V1Pod => {
  const p = gpuPod(name, { node, gpus, uid: `uid-${name}`, labels: { ...G } });
  p.spec!.priority = 1000;
  return p;
};
const metaFor = (nodes: Record<string, string[]>) =>
  Object.fromEntries(Object.entries(nodes).map(([n, uids]) => [n, { Pods: uids.map((UID) => ({ UID })), NumPDBViolations: 0 }]));
const preempt = (s: TestServer, body: unknown) => s.post<ExtenderPreemptionResult & { error?: string }>('/scheduler/preempt', body);

async function withServer(nodes: string[], pods: V1Pod[], fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startServer({ nodes: nodes.map((n) => gpuNode(n)), pods });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

t.test('malformed bodies get a 400 that says what is wrong, and change nothing', async (t) => {
  await withServer(['n1'], [be('a', 'n1', 8)], async (s) => {
    const pre = guaranteed('p', undefined, 8);
    const cases: Array<[string, unknown]> = [
      ['not JSON', '{"Pod":'],
      ['no Pod', { NodeNameToMetaVictims: {} }],
      ['victims map is a string', { Pod: pre, NodeNameToMetaVictims: 'n1' }],
      ['UID is a number', { Pod: pre, NodeNameToMetaVictims: { n1: { Pods: [{ UID: 7 }], NumPDBViolations: 0 } } }],
      ['meta pod without UID', { Pod: pre, NodeNameToMetaVictims: { n1: { Pods: [{}], NumPDBViolations: 0 } } }],
    ];
    for (const [what, body] of cases) {
      const r = await preempt(s, body);
      t.equal(r.status, 400, what);
      t.type(r.body.error, 'string', `${what}: says why`);
    }
    const half = guaranteed('half', undefined, 1);
    half.spec!.containers[0]!.resources = { limits: { 'nvidia.com/gpu': '500m' } };
    const r = await preempt(s, { Pod: half, NodeNameToMetaVictims: metaFor({ n1: ['uid-a'] }) });
    t.equal(r.status, 400);
    t.match(r.body.error, /GPU counts must be whole numbers/);
    t.equal(s.running.cache.pod('uid-a')?.nodeName, 'n1', 'the victim candidate is untouched');
    const metrics = await (await fetch(`${s.ops}/metrics`)).text();
    t.match(
      metrics,
      /sluice_extender_requests_total\{verb="preempt",outcome="bad_request"\} 5/,
      'every one but the unparsable body, which fastify refuses before any route',
    );
  });
});

t.test('odd but well-formed bodies get a well-formed answer', async (t) => {
  await withServer(['n1', 'n2'], [be('a', 'n1', 8), guaranteed('g', 'n2', 4), be('b', 'n2', 4), guaranteed('p', undefined, 8)], async (s) => {
    const pre = guaranteed('p', undefined, 8);
    const empty = { NodeNameToMetaVictims: {} };
    t.same((await preempt(s, { Pod: pre, NodeNameToMetaVictims: {} })).body, empty, 'empty victim map');
    t.same((await preempt(s, { Pod: pre, NodeNameToMetaVictims: null, NodeNameToVictims: null })).body, empty, 'both maps null');
    t.same((await preempt(s, { Pod: pre, NodeNameToMetaVictims: metaFor({ ghost: ['uid-x'] }) })).body, empty, 'only an unknown node');
    t.same(
      (await preempt(s, { Pod: pre, NodeNameToMetaVictims: { n1: null } })).body,
      { NodeNameToMetaVictims: metaFor({ n1: ['uid-a'] }) },
      'a null entry: sluice picks from its cache',
    );
    const r = await preempt(s, { Pod: pre, NodeNameToMetaVictims: metaFor({ ghost: ['uid-x'], n1: ['uid-unknown'], n2: ['uid-g', 'uid-b'] }) });
    t.equal(r.status, 200);
    t.same(
      r.body,
      { NodeNameToMetaVictims: metaFor({ n1: ['uid-a'] }) },
      'unknown pods ignored; n2 holds a guaranteed pod, so 4 best-effort GPUs cannot make 8',
    );
    t.notOk(JSON.stringify(r.body).includes('uid-g'), 'never a guaranteed victim');
    s.running.cache.deleteNode('n1');
    t.same((await preempt(s, { Pod: pre, NodeNameToMetaVictims: metaFor({ n1: ['uid-a'] }) })).body, empty, 'a node deleted before the call is dropped');
    const cpuOnly = gpuPod('cpu', { gpus: 0, labels: { ...G } });
    t.same((await preempt(s, { Pod: cpuOnly, NodeNameToMetaVictims: metaFor({ n2: ['uid-b'] }) })).body, empty, 'a pod asking no GPU preempts nothing');
    const unmanaged = gpuPod('u', { gpus: 4 });
    unmanaged.spec!.priority = 5000;
    t.same((await preempt(s, { Pod: unmanaged, NodeNameToMetaVictims: metaFor({ n2: ['uid-b'] }) })).body, empty, 'a pod of no queue preempts nothing');
  });
});

t.test('two nodes full of best-effort pods, a guaranteed 8-GPU job: exactly the fewest victims', async (t) => {
  // n1: eight 1-GPU pods. n2: a 4-GPU pod and two 2-GPU pods. n3: a guaranteed 4-GPU pod and
  // a 4-GPU best-effort pod. Every node frees 8 only by emptying it; n3 cannot (guaranteed).
  // n1 and n2 both take back 8 GPUs; n2 loses 3 pods, n1 8: n2.
  const pods = [
    ...Array.from({ length: 8 }, (_, i) => be(`one-${i}`, 'n1', 1)),
    be('four', 'n2', 4),
    be('two-a', 'n2', 2),
    be('two-b', 'n2', 2),
    guaranteed('keep', 'n3', 4),
    be('other', 'n3', 4),
  ];
  await withServer(['n1', 'n2', 'n3'], [...pods, guaranteed('train', undefined, 8)], async (s) => {
    const pre = guaranteed('train', undefined, 8);
    // kube-scheduler proposes every lower-priority pod of each node (it would take keep too if it could).
    const all = (node: string) => pods.filter((p) => p.spec!.nodeName === node).map((p) => p.metadata!.uid!);
    const r = await preempt(s, { Pod: pre, NodeNameToMetaVictims: metaFor({ n1: all('n1'), n2: all('n2'), n3: all('n3') }) });
    t.same(r.body, { NodeNameToMetaVictims: metaFor({ n2: ['uid-four', 'uid-two-a', 'uid-two-b'] }) });
    t.equal(s.running.cache.pod('uid-keep')?.nodeName, 'n3', 'the guaranteed pod is untouched');
  });
});

t.test('no overcommit between eviction and bind: victims count until the watch shows them gone', async (t) => {
  await withServer(['n1'], [be('a', 'n1', 4), be('b', 'n1', 4)], async (s) => {
    const cache = s.running.cache;
    const pre = guaranteed('train', undefined, 4);
    cache.upsertPod(pre);
    const r = await preempt(s, { Pod: pre, NodeNameToMetaVictims: metaFor({ n1: ['uid-a'] }) });
    const victims = r.body.NodeNameToMetaVictims.n1!.Pods.map((p) => p.UID);
    t.equal(victims.length, 1);
    t.equal(cache.nodeView('n1', 'nvidia.com/gpu')!.gpus!.freeWhole, 0, 'preempting frees nothing in the ledger');
    const bind = { PodName: 'train', PodNamespace: 'team-a', PodUID: pre.metadata!.uid, Node: 'n1' };
    const early = await s.post<{ Error: string }>('/scheduler/bind', bind);
    t.match(early.body.Error, /node n1: 0 of 8 nvidia.com\/gpu free, pod needs 4/, 'a bind before the victim is gone is refused');
    // The victim is being deleted (deletionTimestamp set): still holding its GPUs.
    const victim = [be('a', 'n1', 4), be('b', 'n1', 4)].find((p) => p.metadata!.uid === victims[0])!;
    victim.metadata!.deletionTimestamp = new Date();
    cache.upsertPod(victim);
    t.match((await s.post<{ Error: string }>('/scheduler/bind', bind)).body.Error, /0 of 8/, 'still refused while it terminates');
    // A second preemptor now must not be promised the terminating pod's GPUs.
    const second = guaranteed('train-2', undefined, 4);
    cache.upsertPod(second);
    const r2 = await preempt(s, { Pod: second, NodeNameToMetaVictims: metaFor({ n1: ['uid-a', 'uid-b'] }) });
    t.same(
      r2.body.NodeNameToMetaVictims.n1!.Pods.map((p) => p.UID),
      ['uid-a', 'uid-b'].filter((u) => u !== victims[0]),
      'the other pod, not the one already going',
    );
    cache.deletePod(victims[0]!);
    t.equal((await s.post<{ Error: string }>('/scheduler/bind', bind)).body.Error, '', 'bound once the watch shows the victim gone');
    t.equal(cache.nodeView('n1', 'nvidia.com/gpu')!.gpus!.freeWhole, 0, 'the freed GPUs went to the preemptor, nothing else');
  });
});
