// The queue manager and the extender together: best-effort pods fill two nodes, a
// guaranteed 8-GPU job arrives. The manager releases it at once (best-effort GPUs count as
// free for guaranteed work), and the extender's preempt verb, offered every pod on both
// nodes by kube-scheduler, keeps exactly the fewest best-effort pods as victims and never a
// guaranteed one.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { gpuNode } from '../helpers/k8s.js';
import { waitFor } from '../store/helpers.js';
import { startLive } from './harness.js';

t.test('guaranteed job over best-effort-filled nodes: released, then the fewest best-effort pods are the victims', async (t) => {
  const live = await startLive({
    nodes: [gpuNode('g1', { gpus: 8 }), gpuNode('g2', { gpus: 8 })],
    queues: {
      lab: { limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 0, bestEffortCap: 16, perJobMax: 0, perUserMax: 0 }] },
      prod: { limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 16, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }] },
    },
  });
  t.teardown(() => live.close());
  // g1: a guaranteed 2-GPU pod and three 2-GPU best-effort pods; g2: 4 + 2 + 2 best-effort.
  const placed: Array<[string, string, number, 'guaranteed' | 'best-effort', string]> = [
    ['g-keep', 'g1', 2, 'guaranteed', 'prod'],
    ['be-a', 'g1', 2, 'best-effort', 'lab'],
    ['be-b', 'g1', 2, 'best-effort', 'lab'],
    ['be-c', 'g1', 2, 'best-effort', 'lab'],
    ['be-d', 'g2', 4, 'best-effort', 'lab'],
    ['be-e', 'g2', 2, 'best-effort', 'lab'],
    ['be-f', 'g2', 2, 'best-effort', 'lab'],
  ];
  for (const [name, node, gpus, qos, queue] of placed) {
    live.submit(name, { queue, gpus, qos });
    await waitFor(() => !live.gated(name), 15000);
    live.bind(name, node);
  }
  t.ok(
    placed.every(([n]) => !live.gated(n)),
    'the cluster is full: 16 of 16 GPUs',
  );

  live.submit('train', { queue: 'prod', gpus: 8, priority: 1000 });
  t.ok((await waitFor(() => !live.gated('train'), 15000)) >= 0, 'the guaranteed job is released although no GPU is idle (best-effort GPUs count as free)');

  const pod = (n: string): V1Pod => live.api.get<V1Pod>('pods', 'team-a', n)!;
  const uid = (n: string): string => pod(n).metadata!.uid!;
  const victims = (names: string[]) => ({ Pods: names.map((n) => ({ UID: uid(n) })), NumPDBViolations: 0 });
  const res = await fetch(`${live.running.apiUrl}/scheduler/preempt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      Pod: pod('train'),
      NodeNameToVictims: null,
      NodeNameToMetaVictims: { g1: victims(['g-keep', 'be-a', 'be-b', 'be-c']), g2: victims(['be-d', 'be-e', 'be-f']) },
    }),
  });
  t.equal(res.status, 200);
  const body = (await res.json()) as { NodeNameToMetaVictims: Record<string, { Pods: Array<{ UID: string }> }> };
  t.same(Object.keys(body.NodeNameToMetaVictims), ['g2'], 'only g2 can free 8 GPUs with best-effort pods alone (g1 holds a guaranteed pod)');
  t.same(
    body.NodeNameToMetaVictims.g2!.Pods.map((p) => p.UID).sort(),
    [uid('be-d'), uid('be-e'), uid('be-f')].sort(),
    'its three best-effort pods, 8 GPUs: no more than needed',
  );
  const all = Object.values(body.NodeNameToMetaVictims).flatMap((v) => v.Pods.map((p) => p.UID));
  t.notOk(all.includes(uid('g-keep')), 'the guaranteed pod is never a victim');
});
