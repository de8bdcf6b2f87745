// Replays every request kube-scheduler sent in the capture runs (../shared/fixtures/
// scheduler-extender) through the real server, with sluice's cache holding the cluster as
// it was at that moment (rebuilt from ../shared/fixtures/cluster-state).
import t from 'tap';
import { readdirSync } from 'node:fs';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { ExtenderArgs, ExtenderFilterResult, HostPriority } from '../../scheduler/wire.js';
import { fixture } from '../helpers/k8s.js';
import { sharedPath } from '../helpers/shared.js';
import { startServer, type TestServer } from '../helpers/server.js';

type List = { items: Array<V1Node & V1Pod & { kind: string }> };
const state1 = fixture<List>('cluster-state/before-preempt-1.json');
const state2 = fixture<List>('cluster-state/before-preempt-2.json');
const nodes = state1.items.filter((i) => i.kind === 'Node') as V1Node[];
const podsOf = (l: List, keep: (name: string) => boolean): V1Pod[] => l.items.filter((i) => i.kind === 'Pod' && keep(i.metadata!.name!)) as V1Pod[];

// low-1..low-6 were created in order, so "the cluster when low-N arrived" holds low-1..low-(N-1).
const before = (n: number): V1Pod[] => podsOf(state1, (name) => name === 'cpu-only' || (/^low-\d$/.test(name) && Number(name.slice(4)) < n));
// urgent-1 after its preemption: low-2 (its victim on gpu-node-2) is gone.
const afterPreempt1 = (): V1Pod[] => podsOf(state2, (name) => name !== 'urgent-1');

const args = (f: string): ExtenderArgs => fixture<ExtenderArgs>(`scheduler-extender/${f}`);
// The pods those requests were about, as the pod informer holds them while they wait: a bind
// counts the pod sluice's cache has, never one from a filter body.
const pendingOf = (...files: string[]): V1Pod[] => files.map((f) => args(f).Pod);

async function withServer(pods: V1Pod[], fn: (s: TestServer) => Promise<void>, base: Record<string, unknown> = {}): Promise<void> {
  const s = await startServer({ nodes, pods }, base);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

t.test('every captured extender request is covered here', async (t) => {
  const files = readdirSync(sharedPath('fixtures/scheduler-extender')).sort();
  const src = (await import('node:fs')).readFileSync(new URL(import.meta.url), 'utf8');
  const preemptSrc = (await import('node:fs')).readFileSync(new URL('./preempt-replay.test.ts', import.meta.url), 'utf8');
  for (const f of files) {
    // preempt bodies are replayed in preempt-replay.test.ts
    t.ok((f.startsWith('preempt') ? preemptSrc : src).includes(`${f}'`), `${f} is replayed`);
  }
});

t.test('filter-1.json: low-1 (4 GPUs), both GPU nodes empty: both pass', async (t) => {
  await withServer(before(1), async (s) => {
    const r = await s.post<ExtenderFilterResult>('/scheduler/filter', args('filter-1.json'));
    t.equal(r.status, 200);
    t.same(r.body, { Nodes: null, NodeNames: ['gpu-node-1', 'gpu-node-2'], FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: '' });
  });
});

t.test('filter-full-nodes-1.json: same, full Node objects in and out', async (t) => {
  await withServer(before(1), async (s) => {
    const body = args('filter-full-nodes-1.json');
    const r = await s.post<ExtenderFilterResult>('/scheduler/filter', body);
    t.equal(r.status, 200);
    t.equal(r.body.NodeNames, null);
    t.same(
      r.body.Nodes!.items.map((n) => n.metadata!.name),
      ['gpu-node-1', 'gpu-node-2'],
    );
    t.same(r.body.Nodes!.items[0], body.Nodes!.items![0], 'the node object comes back as sent');
  });
});

t.test('filter-2.json: low-6 (2 GPUs) takes the last 2 free GPUs of gpu-node-1', async (t) => {
  await withServer(before(6), async (s) => {
    const r = await s.post<ExtenderFilterResult>('/scheduler/filter', args('filter-2.json'));
    t.same(r.body.NodeNames, ['gpu-node-1']);
    t.same(r.body.FailedNodes, {});
  });
  // Once low-6 is there too, the node is full: a resolvable failure with the numbers.
  await withServer(before(7), async (s) => {
    const r = await s.post<ExtenderFilterResult>('/scheduler/filter', args('filter-2.json'));
    t.same(r.body.NodeNames, []);
    t.same(r.body.FailedNodes, { 'gpu-node-1': 'node gpu-node-1: 0 of 8 nvidia.com/gpu free, pod needs 2' });
    t.same(r.body.FailedAndUnresolvableNodes, {});
  });
});

t.test('filter-full-nodes-2.json: same with a full Node', async (t) => {
  await withServer(before(6), async (s) => {
    const r = await s.post<ExtenderFilterResult>('/scheduler/filter', args('filter-full-nodes-2.json'));
    t.same(
      r.body.Nodes!.items.map((n) => n.metadata!.name),
      ['gpu-node-1'],
    );
  });
});

t.test('filter-3.json and filter-full-nodes-3.json: urgent-1 after preemption fits gpu-node-2', async (t) => {
  await withServer(afterPreempt1(), async (s) => {
    const r = await s.post<ExtenderFilterResult>('/scheduler/filter', args('filter-3.json'));
    t.same(r.body.NodeNames, ['gpu-node-2']);
    const full = await s.post<ExtenderFilterResult>('/scheduler/filter', args('filter-full-nodes-3.json'));
    t.same(
      full.body.Nodes!.items.map((n) => n.metadata!.name),
      ['gpu-node-2'],
    );
  });
  // Before the victims left, it fitted nowhere.
  await withServer(before(7), async (s) => {
    const r = await s.post<ExtenderFilterResult>('/scheduler/filter', args('filter-3.json'));
    t.same(r.body.FailedNodes, { 'gpu-node-2': 'node gpu-node-2: 0 of 8 nvidia.com/gpu free, pod needs 4' });
    t.ok(
      s.logs.some((l) => l.msg === 'no node fits the pod' && l.pod === 'team-a/urgent-1'),
      'the decision is logged with pod and reasons',
    );
  });
});

t.test('prioritize-1.json / prioritize-full-nodes-1.json: two empty nodes score alike', async (t) => {
  await withServer(before(1), async (s) => {
    for (const f of ['prioritize-1.json', 'prioritize-full-nodes-1.json']) {
      const r = await s.post<HostPriority[]>('/scheduler/prioritize', args(f));
      t.equal(r.status, 200);
      t.same(
        r.body,
        [
          { Host: 'gpu-node-1', Score: 5 },
          { Host: 'gpu-node-2', Score: 5 },
        ],
        `${f}: binpack, 4 of 8 free after`,
      );
    }
  });
});

t.test('prioritize-2.json: low-3 with 4 GPUs used on each node; then with an uneven cluster', async (t) => {
  await withServer(before(3), async (s) => {
    const r = await s.post<HostPriority[]>('/scheduler/prioritize', args('prioritize-2.json'));
    t.same(r.body, [
      { Host: 'gpu-node-1', Score: 8 },
      { Host: 'gpu-node-2', Score: 8 },
    ]);
  });
  // low-1 (4) and low-4 (2) on gpu-node-1, low-2 (4) on gpu-node-2: binpack picks the fuller node.
  const uneven = podsOf(state1, (n) => ['low-1', 'low-2', 'low-4'].includes(n));
  await withServer(uneven, async (s) => {
    const r = await s.post<HostPriority[]>('/scheduler/prioritize', args('prioritize-2.json'));
    t.same(r.body, [
      { Host: 'gpu-node-1', Score: 10 },
      { Host: 'gpu-node-2', Score: 8 },
    ]);
    // The pod's sluice.io/policy annotation overrides the default.
    const spread = args('prioritize-2.json');
    spread.Pod.metadata!.annotations = { 'sluice.io/policy': 'spread' };
    spread.Pod.metadata!.resourceVersion = 'spread';
    const r2 = await s.post<HostPriority[]>('/scheduler/prioritize', spread);
    t.same(r2.body, [
      { Host: 'gpu-node-1', Score: 0 },
      { Host: 'gpu-node-2', Score: 3 },
    ]);
  });
});

t.test('prioritize-3.json: low-5 with 2 GPUs free on each node', async (t) => {
  await withServer(before(5), async (s) => {
    const r = await s.post<HostPriority[]>('/scheduler/prioritize', args('prioritize-3.json'));
    t.same(r.body, [
      { Host: 'gpu-node-1', Score: 10 },
      { Host: 'gpu-node-2', Score: 10 },
    ]);
  });
});

t.test('bind-1.json / bind-full-nodes-1.json: binding counts at once; a second bind of the same pod is refused', async (t) => {
  await withServer([...before(1), ...pendingOf('filter-1.json', 'filter-full-nodes-1.json')], async (s) => {
    await s.post('/scheduler/filter', args('filter-1.json')); // kube-scheduler filters before it binds
    const r = await s.post<{ Error: string }>('/scheduler/bind', fixture('scheduler-extender/bind-1.json'));
    t.same(r.body, { Error: '' });
    const inv = s.running.cache.inventory().find((n) => n.name === 'gpu-node-1')!;
    t.equal(inv.free, 4, 'gpu-node-1 has 4 of 8 free right after the bind');
    const again = await s.post<{ Error: string }>('/scheduler/bind', fixture('scheduler-extender/bind-1.json'));
    t.match(again.body.Error, /already bound to node gpu-node-1/);
    const log = s.logs.find((l) => l.msg === 'pod bound');
    t.match(log, { verb: 'bind', pod: 'team-a/low-1', node: 'gpu-node-1', reason: 'bound with 4 nvidia.com/gpu' });

    await s.post('/scheduler/filter', args('filter-full-nodes-1.json'));
    const full = await s.post<{ Error: string }>('/scheduler/bind', fixture('scheduler-extender/bind-full-nodes-1.json'));
    t.same(full.body, { Error: '' }, 'the second capture run used other uids: a separate pod');
    t.equal(s.running.cache.inventory().find((n) => n.name === 'gpu-node-1')!.free, 0);
  });
});

t.test('bind-2.json and bind-3.json bind the last GPUs; a bind with no room is refused', async (t) => {
  await withServer([...before(6), ...pendingOf('filter-2.json')], async (s) => {
    await s.post('/scheduler/filter', args('filter-2.json'));
    t.same((await s.post('/scheduler/bind', fixture('scheduler-extender/bind-2.json'))).body, { Error: '' });
  });
  await withServer([...afterPreempt1(), ...pendingOf('filter-3.json')], async (s) => {
    await s.post('/scheduler/filter', args('filter-3.json'));
    t.same((await s.post('/scheduler/bind', fixture('scheduler-extender/bind-3.json'))).body, { Error: '' });
  });
  await withServer([...before(7), ...pendingOf('filter-3.json')], async (s) => {
    await s.post('/scheduler/filter', args('filter-3.json'));
    const r = await s.post<{ Error: string }>('/scheduler/bind', fixture('scheduler-extender/bind-3.json'));
    t.equal(r.body.Error, 'node gpu-node-2: 0 of 8 nvidia.com/gpu free, pod needs 4');
  });
});
