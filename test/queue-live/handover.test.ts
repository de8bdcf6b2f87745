// Two replicas: one Lease holder serves the extender and runs the queue manager, labels its
// own pod sluice.io/leader=true; the follower refuses extender calls with a retryable error.
// When the leader shuts down, the follower takes over: the gap is measured.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';
import { randomSchema, waitFor } from '../store/helpers.js';
import { startLive, type Live } from './harness.js';

t.test('leader hand-over: one replica decides at a time, the follower takes over on shutdown', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  api.create('nodes', gpuNode('g1', { gpus: 8 }));
  const pending = api.create<V1Pod>('pods', gpuPod('p1', { gpus: 1 }));
  const schema = randomSchema();
  const prefix = `h${Date.now().toString(36)}`;
  const a = await startLive({ api, schema, prefix, podName: 'sluice-a' });
  t.teardown(() => a.close());
  await waitFor(() => a.running.metrics.leader.get !== undefined && leaderOf(api) !== null, 15000);
  const b = await startLive({ api, schema, prefix, podName: 'sluice-b' });
  t.teardown(() => b.close());
  await waitFor(() => leaderOf(api) !== null, 15000);
  t.equal(leaderOf(api), 'sluice-a', 'the first replica holds the Lease and labels its pod');

  const filter = (l: Live) =>
    fetch(`${l.running.apiUrl}/scheduler/filter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ Pod: pending, NodeNames: ['g1'] }),
    }).then((r) => r.json() as Promise<{ Error: string; NodeNames: string[] | null }>);
  t.same((await filter(a)).NodeNames, ['g1'], 'the leader decides');
  t.match((await filter(b)).Error, /not the leader/, 'the follower answers a retryable error, never a decision');

  const start = Date.now();
  await a.close();
  let gap = -1;
  while (Date.now() - start < 15000) {
    const r = await filter(b);
    if (r.Error === '') {
      gap = Date.now() - start;
      break;
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  t.ok(gap >= 0, `the follower decides ${gap} ms after the leader shut down`);
  t.comment(`hand-over gap (graceful shutdown, retryPeriod 1 s): ${gap} ms`);
  await waitFor(() => leaderOf(api) === 'sluice-b', 15000);
  t.equal(leaderOf(api), 'sluice-b', 'the label moved to the new leader');
  t.equal(labelOf(api, 'sluice-a'), undefined, 'and is gone from the old one');
});

function labelOf(api: StandInApiserver, pod: string): string | undefined {
  return api.get<V1Pod>('pods', 'sluice-system', pod)?.metadata?.labels?.['sluice.io/leader'];
}

function leaderOf(api: StandInApiserver): string | null {
  const leaders = ['sluice-a', 'sluice-b'].filter((p) => labelOf(api, p) === 'true');
  return leaders.length === 1 ? leaders[0]! : null;
}
