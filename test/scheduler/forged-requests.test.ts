// What a bind counts comes from the pod as the apiserver has it (the informer's copy, or
// one read), never from an earlier request body (issue 12, defect 2: a forged filter with
// an empty container made a bind of an 8-GPU pod count 0 GPUs, and the node held 16 of 8).
import t from 'tap';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import { startFakeApiserver } from '../helpers/fake-apiserver.js';
import { gpuNode, gpuPod, kubeConfigFor } from '../helpers/k8s.js';
import { startServer } from '../helpers/server.js';

t.test('a forged filter body does not change what a bind counts', async (t) => {
  const big = gpuPod('big', { gpus: 8, uid: 'u-big' });
  const s = await startServer({ nodes: [gpuNode('g1', { gpus: 8 })], pods: [gpuPod('holder', { node: 'g1', gpus: 8 }), big] });
  t.teardown(() => s.close());
  const forged = structuredClone(big);
  forged.spec!.containers = [{ name: 'main', image: 'x' }];
  const f = await s.post<{ NodeNames: string[] }>('/scheduler/filter', { Pod: forged, NodeNames: ['g1'] });
  t.same(f.body.NodeNames, ['g1'], 'the forged pod (no GPUs) passes filter, as it should for what it claims');
  const b = await s.post<{ Error: string }>('/scheduler/bind', { PodName: 'big', PodNamespace: 'team-a', PodUID: 'u-big', Node: 'g1' });
  t.equal(b.body.Error, 'node g1: 0 of 8 nvidia.com/gpu free, pod needs 8', 'the bind counts the 8 GPUs the pod really asks');
  const inv = s.running.cache.inventory()[0]!;
  t.equal(inv.used + inv.assumed, 8, 'g1 still holds 8 of 8');
});

t.test('a bind whose UID is not the pod of that name is refused', async (t) => {
  const a = gpuPod('a', { gpus: 1, uid: 'u-a' });
  const b = gpuPod('b', { gpus: 4, uid: 'u-b' });
  const s = await startServer({ nodes: [gpuNode('g1', { gpus: 8 })], pods: [a, b] });
  t.teardown(() => s.close());
  const r = await s.post<{ Error: string }>('/scheduler/bind', { PodName: 'a', PodNamespace: 'team-a', PodUID: 'u-b', Node: 'g1' });
  t.match(r.body.Error, /pod u-b is team-a\/b, not team-a\/a; refusing to bind/);
  t.equal(s.running.cache.inventory()[0]!.used + s.running.cache.assumedCount, 0, 'nothing placed');
});

t.test('a pod the informer has not seen: counted from one apiserver read, UID checked', async (t) => {
  const apiserver = await startFakeApiserver({ nodes: [gpuNode('g1', { gpus: 8 })], pods: [gpuPod('holder', { node: 'g1', gpus: 4, uid: 'u-holder' })] });
  t.teardown(() => apiserver.close());
  const config = loadConfig({
    env: {},
    base: {
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: '' },
      logLevel: 'silent',
      leaderElection: false,
      queue: { enabled: false },
    },
  });
  const running = await serve(config, { log: createLogger('silent'), kubeConfig: kubeConfigFor(apiserver.url) });
  t.teardown(() => running.close());
  for (let i = 0; i < 250 && !running.cache.synced; i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(running.cache.synced, 'informers synced');
  // Created after the list, and (this stand-in sends no ADDED events) never delivered by the watch.
  const late = gpuPod('late', { gpus: 8, uid: 'u-late' });
  apiserver.pods.set('team-a/late', late);
  const bind = (uid: string) =>
    fetch(running.apiUrl + '/scheduler/bind', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ PodName: 'late', PodNamespace: 'team-a', PodUID: uid, Node: 'g1' }),
    }).then((r) => r.json() as Promise<{ Error: string }>);
  t.match((await bind('u-other')).Error, /pod team-a\/late has UID u-late at the apiserver, not u-other; refusing to bind/);
  t.equal((await bind('u-late')).Error, 'node g1: 4 of 8 nvidia.com/gpu free, pod needs 8', 'the read pod asks 8 GPUs');
  t.same(apiserver.bindings, []);
});

// Issue 22, defect 5: bind checked only the GPU count. A bind (which needs no filter
// before it) must pass everything filter checks, and the node selector and affinity
// kube-scheduler checks, from the real pod.
t.test('bind re-checks model, health, cordon, node selector and affinity from the real pod', async (t) => {
  const h100Only = gpuPod('h100-only', { gpus: 1, uid: 'u-h100', annotations: { 'sluice.io/gpu-model': 'NVIDIA-H100-80GB-HBM3' } });
  const pinned = gpuPod('pinned', { gpus: 1, uid: 'u-pinned' });
  pinned.spec!.nodeSelector = { 'sluice.io/pool': 'notebooks' };
  const affine = gpuPod('affine', { gpus: 1, uid: 'u-affine' });
  affine.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'sluice.io/pool', operator: 'In', values: ['notebooks'] }] }],
      },
    },
  };
  const plain = gpuPod('plain', { gpus: 1, uid: 'u-plain' });
  const s = await startServer({
    nodes: [
      gpuNode('a100', { gpus: 8 }),
      gpuNode('h100', { gpus: 8, product: 'NVIDIA-H100-80GB-HBM3', labels: { 'sluice.io/pool': 'notebooks' } }),
      gpuNode('cordoned', { gpus: 8, cordoned: true }),
      gpuNode('down', { gpus: 8, ready: false }),
    ],
    pods: [h100Only, pinned, affine, plain],
  });
  t.teardown(() => s.close());
  const bind = async (name: string, uid: string, node: string): Promise<string> =>
    (await s.post<{ Error: string }>('/scheduler/bind', { PodName: name, PodNamespace: 'team-a', PodUID: uid, Node: node })).body.Error;
  t.equal(await bind('h100-only', 'u-h100', 'a100'), 'node a100 has NVIDIA-A100-SXM4-80GB, pod accepts only NVIDIA-H100-80GB-HBM3', 'model');
  t.equal(await bind('plain', 'u-plain', 'cordoned'), 'node cordoned: node is cordoned', 'cordon');
  t.equal(await bind('plain', 'u-plain', 'down'), 'node down: node is NotReady (KubeletNotReady)', 'health');
  t.equal(await bind('pinned', 'u-pinned', 'a100'), "node a100 does not match the pod's spec.nodeSelector or required node affinity", 'node selector');
  t.equal(await bind('affine', 'u-affine', 'a100'), "node a100 does not match the pod's spec.nodeSelector or required node affinity", 'affinity');
  t.equal(
    await bind('nope', 'u-nope', 'a100'),
    'cannot read pod team-a/nope before binding it: pod team-a/nope is not in the cluster snapshot (sluice runs without an apiserver)',
  );
  t.equal(s.running.cache.assumedCount + s.running.cache.inventory().reduce((a, n) => a + n.used, 0), 0, 'nothing placed by the refused binds');
  t.equal(await bind('h100-only', 'u-h100', 'h100'), '', 'the right node binds');
  t.equal(await bind('pinned', 'u-pinned', 'h100'), '', 'the selected node binds');
  t.equal(await bind('affine', 'u-affine', 'h100'), '', 'the affine node binds');
});
