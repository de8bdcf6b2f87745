// The bind call: posts pods/binding over one kept-alive connection (client-node opened a
// new TLS connection per call), and reports the apiserver's refusals in its own words.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { errorText } from '../../scheduler/extender.js';
import { KubeBinder } from '../../scheduler/binder.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';

t.test('30 binds reuse one connection; refusals carry the apiserver message', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  api.create('nodes', gpuNode('g1', { gpus: 64 }));
  const pods = Array.from({ length: 30 }, (_, i) => api.create<V1Pod>('pods', gpuPod(`p${i}`, { gpus: 1 })));
  const binder = new KubeBinder(api.kubeConfig('secret-token'));
  const before = api.connections;
  for (const p of pods) await binder.bind('team-a', p.metadata!.name!, p.metadata!.uid!, 'g1');
  t.ok(
    pods.every((p) => api.get<V1Pod>('pods', 'team-a', p.metadata!.name!)?.spec?.nodeName === 'g1'),
    'every pod bound to g1',
  );
  t.equal(api.connections - before, 1, 'one TCP connection for 30 binds');
  const posted = api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/binding'));
  t.equal(posted.length, 30);
  t.same(
    posted[0]!.body,
    {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: 'p0', namespace: 'team-a', uid: pods[0]!.metadata!.uid },
      target: { apiVersion: 'v1', kind: 'Node', name: 'g1' },
    },
    'the Binding kube-scheduler itself would post',
  );

  const again = await binder.bind('team-a', 'p0', pods[0]!.metadata!.uid!, 'g1').catch((e: unknown) => e);
  t.match(errorText(again), /already|bound|assigned/i, `a second bind is refused in the apiserver's words: ${errorText(again)}`);
  const missing = await binder.bind('team-a', 'nope', 'uid-x', 'g1').catch((e: unknown) => e);
  t.match(errorText(missing), /not found/i, `a missing pod: ${errorText(missing)}`);
});

t.test('an unreachable apiserver is an error, not a hang', async (t) => {
  const api = await StandInApiserver.start();
  const kc = api.kubeConfig();
  await api.close();
  const err = await new KubeBinder(kc).bind('team-a', 'p', 'u', 'g1').catch((e: unknown) => e);
  t.match(String((err as Error).message), /ECONNREFUSED|connect/);
});
