// Replays the preempt requests kube-scheduler sent in the capture runs (../shared/fixtures/
// scheduler-extender/preempt*.json) through the real server, the cache holding the cluster
// of that moment (../shared/fixtures/cluster-state). The captured cluster's low-N pods are
// labelled sluice.io/qos=best-effort (priority 10), urgent-N guaranteed (priority 1000).
import t from 'tap';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { ExtenderPreemptionArgs, ExtenderPreemptionResult } from '../../scheduler/wire.js';
import { fixture } from '../helpers/k8s.js';
import { startServer, type TestServer } from '../helpers/server.js';

type Item = V1Node & V1Pod & { kind: string };
type List = { items: Item[] };
const state1 = fixture<List>('cluster-state/before-preempt-1.json');
const state2 = fixture<List>('cluster-state/before-preempt-2.json');
const nodesOf = (l: List): V1Node[] => l.items.filter((i) => i.kind === 'Node');
const podsOf = (l: List): V1Pod[] => l.items.filter((i) => i.kind === 'Pod');
const args = (f: string): ExtenderPreemptionArgs => fixture<ExtenderPreemptionArgs>(`scheduler-extender/${f}`);
const uidOf = (l: List, name: string): string => podsOf(l).find((p) => p.metadata!.name === name)!.metadata!.uid!;

/** The preemptors of the captured calls, pending pods of the captured cluster (sluice checks that the preemptor exists). */
const preemptors = (pods: V1Pod[]): V1Pod[] =>
  ['preempt-1.json', 'preempt-2.json', 'preempt-full-nodes-1.json']
    .map((f) => args(f).Pod)
    .filter((p) => !pods.some((q) => q.metadata?.uid === p.metadata?.uid));

async function withServer(nodes: V1Node[], pods: V1Pod[], fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startServer({ nodes, pods: [...pods, ...preemptors(pods)] });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

const preempt = (s: TestServer, body: unknown) => s.post<ExtenderPreemptionResult>('/scheduler/preempt', body);
const meta = (node: string, uids: string[]) => ({ [node]: { Pods: uids.sort().map((UID) => ({ UID })), NumPDBViolations: 0 } });

t.test('preempt-1.json: urgent-1 (4 GPUs) over two full nodes of best-effort pods', async (t) => {
  await withServer(nodesOf(state1), podsOf(state1), async (s) => {
    const r = await preempt(s, args('preempt-1.json'));
    t.equal(r.status, 200);
    // kube-scheduler proposed low-1 (4 GPUs, started first) on gpu-node-1 and low-2 on
    // gpu-node-2. Each node can also free 4 GPUs with its two 2-GPU pods, which started
    // later: same GPUs, same priority, less work lost (rule 3). Both nodes tie on rules 1-4;
    // the smaller UID list (low-4's 0532... before low-3's 7803...) picks gpu-node-1.
    t.same(r.body, { NodeNameToMetaVictims: meta('gpu-node-1', [uidOf(state1, 'low-4'), uidOf(state1, 'low-6')]) });
    const line = s.logs.find((l) => l.msg === 'preemption: best-effort pods give their GPUs back');
    t.match(line, { pod: 'team-a/urgent-1', queue: 'team-a', node: 'gpu-node-1', victims: ['team-a/low-4', 'team-a/low-6'], gpusFreed: 4, gpusTakenBack: 4 });
    const metrics = await (await fetch(`${s.ops}/metrics`)).text();
    t.match(metrics, /sluice_preemptions_total\{queue="team-a",reason="preempted"\} 1/);
    t.match(metrics, /sluice_preempted_gpus_total 4/);
    t.match(metrics, /sluice_extender_requests_total\{verb="preempt",outcome="ok"\} 1/);
  });
});

t.test('preempt-2.json: urgent-2 (8 GPUs): only gpu-node-1 holds no guaranteed pod; all three go', async (t) => {
  await withServer(nodesOf(state2), podsOf(state2), async (s) => {
    const r = await preempt(s, args('preempt-2.json'));
    t.equal(r.status, 200);
    t.same(r.body, {
      NodeNameToMetaVictims: meta(
        'gpu-node-1',
        ['low-1', 'low-4', 'low-6'].map((n) => uidOf(state2, n)),
      ),
    });
  });
  // Offered gpu-node-2 as well, sluice still never takes urgent-1 (guaranteed) there.
  await withServer(nodesOf(state2), podsOf(state2), async (s) => {
    const body = args('preempt-2.json');
    body.NodeNameToMetaVictims = {
      ...body.NodeNameToMetaVictims,
      'gpu-node-2': { Pods: ['low-3', 'low-5', 'urgent-1'].map((n) => ({ UID: uidOf(state2, n) })), NumPDBViolations: 0 },
    };
    const r = await preempt(s, body);
    t.same(Object.keys(r.body.NodeNameToMetaVictims), ['gpu-node-1']);
    t.notOk(JSON.stringify(r.body).includes(uidOf(state2, 'urgent-1')), 'the guaranteed pod is never a victim');
  });
});

t.test('preempt-full-nodes-1.json: full victim pods (nodeCacheCapable false) are read by UID', async (t) => {
  // The second capture run has no cluster-state file; it was the first run's cluster made
  // again. Rebuild it: state1, with low-1 and low-2 as the body sends them.
  const body = args('preempt-full-nodes-1.json');
  const sent = Object.values(body.NodeNameToVictims!).flatMap((v) => v.Pods);
  const pods = podsOf(state1)
    .filter((p) => !['low-1', 'low-2'].includes(p.metadata!.name!))
    .concat(sent);
  await withServer(nodesOf(state1), pods, async (s) => {
    const r = await preempt(s, body);
    t.equal(r.status, 200);
    // The body's low-2 was created in the second run, 25 s after the first run's pods: alone
    // it frees the 4 GPUs and has run the shortest, so it beats every pair (rule 3).
    const low2 = body.NodeNameToVictims!['gpu-node-2']!.Pods[0]!;
    t.equal(low2.metadata!.name, 'low-2');
    t.same(r.body, { NodeNameToMetaVictims: meta('gpu-node-2', [low2.metadata!.uid!]) });
  });
  // Only the victims known (nothing else on the nodes): 4 of 8 GPUs are free on each, so GPUs
  // are not what is short; kube-scheduler's own best-effort victims stand.
  const full = nodesOf(state1);
  await withServer(full, sent, async (s) => {
    const r = await preempt(s, body);
    const [node] = Object.keys(r.body.NodeNameToMetaVictims);
    t.equal(Object.keys(r.body.NodeNameToMetaVictims).length, 1);
    t.same(
      r.body.NodeNameToMetaVictims[node!]!.Pods.map((p) => p.UID),
      body.NodeNameToVictims![node!]!.Pods.map((p) => p.metadata!.uid),
    );
  });
});

t.test('the same cluster without best-effort labels: nothing is preempted', async (t) => {
  const unlabel = (p: V1Pod): V1Pod => {
    const labels = { ...(p.metadata!.labels ?? {}) };
    delete labels['sluice.io/qos'];
    return { ...p, metadata: { ...p.metadata, labels } };
  };
  await withServer(nodesOf(state1), podsOf(state1).map(unlabel), async (s) => {
    const r = await preempt(s, args('preempt-1.json'));
    t.equal(r.status, 200);
    t.same(r.body, { NodeNameToMetaVictims: {} }, 'pods of a queue without qos=best-effort count as guaranteed');
  });
  const guaranteed = (p: V1Pod): V1Pod =>
    p.metadata!.labels?.['sluice.io/qos'] ? { ...p, metadata: { ...p.metadata, labels: { ...p.metadata!.labels, 'sluice.io/qos': 'guaranteed' } } } : p;
  await withServer(nodesOf(state2), podsOf(state2).map(guaranteed), async (s) => {
    const r = await preempt(s, args('preempt-2.json'));
    t.same(r.body, { NodeNameToMetaVictims: {} });
  });
});

t.test('a best-effort preemptor preempts nothing', async (t) => {
  await withServer(nodesOf(state1), podsOf(state1), async (s) => {
    const body = args('preempt-1.json');
    body.Pod.metadata!.labels = { ...body.Pod.metadata!.labels, 'sluice.io/qos': 'best-effort' };
    const r = await preempt(s, body);
    t.same(r.body, { NodeNameToMetaVictims: {} });
    const metrics = await (await fetch(`${s.ops}/metrics`)).text();
    t.match(metrics, /sluice_preemptions_total\{queue="team-a",reason="best_effort_preemptor"\} 1/);
  });
});
