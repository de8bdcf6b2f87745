// The console's pure parts: the cluster map's cells and stranded GPUs, the live feed's
// per-node rows, what a non-admin sees of the activity, and who counts as an admin.
import t from 'tap';
import { ApiAuth } from '../../api/auth.js';
import { ClusterCache } from '../../cluster/cache.js';
import { createLogger } from '../../observability/logger.js';
import { ConsoleAccess } from '../../console/access.js';
import { redactActivity, type ActivityItem } from '../../console/activity.js';
import { LiveFeed } from '../../console/live.js';
import { clusterView, queuesView } from '../../console/views.js';
import type { QueueLimit, QueueSpec } from '../../store/queue-directory.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';

const log = createLogger('silent');
const make = (): ClusterCache => new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 1000, recentPodWindow: 100 });

t.test('cluster map: cells, unhealthy nodes, grouping and stranded GPUs', async (t) => {
  const c = make();
  c.replaceAll(
    [
      gpuNode('a2', { gpus: 8 }),
      gpuNode('a10', { gpus: 8 }),
      gpuNode('h1', { gpus: 4, product: 'NVIDIA-H100-80GB-HBM3' }),
      gpuNode('sick', { gpus: 8, ready: false }),
      gpuNode('cpu', { gpus: 0 }),
    ],
    [gpuPod('p1', { node: 'a2', gpus: 4 }), gpuPod('p2', { node: 'a10', gpus: 8 }), gpuPod('p3', { node: 'h1', gpus: 1 })],
  );
  const v = clusterView(c);
  t.same(
    v.rows.map((r) => r.name),
    ['a2', 'a10', 'sick', 'h1'],
    'by model, then by name in numeric order; nodes without GPUs left out',
  );
  t.same(v.rows[0]!.cells, [1000, 1000, 1000, 1000, 0, 0, 0, 0], 'whole GPUs in use first, then free ones');
  t.equal(v.rows[2]!.unhealthy, 'node is NotReady (KubeletNotReady)');
  t.same(v.totals, { nodes: 4, gpus: 28, whole: 13, shared: 0, free: 7, unhealthy: 8, stranded: v.totals.stranded });
  // The mix: one 4-GPU, one 8-GPU and one 1-GPU pod. a2's 4 free GPUs cannot take the
  // 8-GPU third of it; h1's 3 free cannot take the 4- or 8-GPU thirds.
  t.equal(v.rows[0]!.stranded, Math.round((4 / 3) * 10) / 10, 'a2: a third of the mix cannot use its 4 free GPUs');
  t.equal(v.rows[3]!.stranded, Math.round(((3 * 2) / 3) * 10) / 10, 'h1: two thirds of the mix cannot use its 3 free GPUs');
  t.equal(v.rows[1]!.stranded, 0, 'a full node strands nothing');
  t.equal(v.rows[2]!.stranded, 0, 'an unhealthy node counts as unhealthy, not stranded');
  t.same(
    v.byModel.map((g) => [g.model, g.gpus, g.free]),
    [
      ['NVIDIA-A100-SXM4-80GB', 24, 4],
      ['NVIDIA-H100-80GB-HBM3', 4, 3],
    ],
  );
});

t.test('live feed: a pod change sends only the rows of the nodes it touched', async (t) => {
  const c = make();
  c.replaceAll([gpuNode('a', { gpus: 8 }), gpuNode('b', { gpus: 8 })], [gpuPod('p0', { node: 'a', gpus: 1 })]);
  const feed = new LiveFeed({ cache: c, manager: null, tickMs: 60_000, mixEveryMs: 0 });
  const sent: Array<[string, unknown]> = [];
  const stop = feed.add({ send: (e, d) => sent.push([e, d]) });
  t.teardown(stop);
  feed.flush();
  t.same(sent, [], 'nothing changed, nothing sent');
  c.upsertPod(gpuPod('p1', { node: 'b', gpus: 2 }));
  feed.flush();
  const nodes = sent.find(([e]) => e === 'nodes')?.[1] as { rows: Array<{ name: string; cells: number[] }>; gone: string[] };
  t.same(
    nodes.rows.map((r) => [r.name, r.cells.filter((x) => x > 0).length]),
    [['b', 2]],
    'only node b, with its 2 GPUs in use',
  );
  t.ok(
    sent.some(([e]) => e === 'cluster'),
    'a new pod shape changed the mix: pages refetch the map',
  );
  t.ok(
    sent.some(([e]) => e === 'changed'),
    'and the queue and job pages refetch',
  );
  sent.length = 0;
  c.deleteNode('a');
  feed.flush();
  t.same((sent.find(([e]) => e === 'nodes')?.[1] as { gone: string[] }).gone, ['a'], 'a deleted node is sent as gone');
});

t.test('queues per GPU model: each quota row against what it holds by the quota rule', async (t) => {
  const A100 = 'NVIDIA-A100-SXM4-80GB';
  const H100 = 'NVIDIA-H100-80GB-HBM3';
  const c = make();
  const q = (queue: string, qos = 'guaranteed') => ({ 'sluice.io/queue': queue, 'sluice.io/qos': qos });
  c.replaceAll(
    [gpuNode('a1', { gpus: 8, product: A100 }), gpuNode('h1', { gpus: 8, product: H100 })],
    [
      gpuPod('p1', { node: 'a1', gpus: 4, labels: q('prod') }),
      gpuPod('p2', { node: 'h1', gpus: 3, labels: q('prod') }),
      gpuPod('p3', { node: 'h1', gpus: 1, labels: q('prod', 'best-effort') }),
      gpuPod('p4', { node: 'a1', gpus: 2, labels: q('h-only') }),
      gpuPod('p5', { node: 'h1', gpus: 1, labels: q('h-only') }),
    ],
  );
  const limit = (model: string, guaranteed: number, bestEffortCap = 0): QueueLimit => ({
    resource: 'nvidia.com/gpu',
    model,
    guaranteed,
    bestEffortCap,
    perJobMax: 0,
    perUserMax: 0,
  });
  const spec = (name: string, limits: QueueLimit[], cohort: string | null = null): QueueSpec => ({ name, parent: null, cohort, open: true, weight: 1, limits });
  // prod: an any-model row and an H100 row (given in that order on purpose: lines are any-model first).
  const queues = new Map([
    ['prod', spec('prod', [limit('h100', 2, 4), limit('', 6)], 'c')],
    ['h-only', spec('h-only', [limit(H100, 4)])],
  ]);
  const rows = queuesView(c, { queues, waiting: new Map([['prod', []]]) });
  const prod = rows.find((r) => r.name === 'prod')!;
  t.same(
    prod.resources.map((l) => [l.model, l.guaranteedHeld, l.guaranteedQuota, l.borrowed, l.bestEffortHeld, l.bestEffortCap]),
    [
      ['', 7, 6, 1, 1, 0],
      ['h100', 3, 2, 1, 1, 4],
    ],
    'any model counts every node; the "h100" row counts the H100 node only (an alias matches the product); beyond each quota is borrowed (cohort c)',
  );
  t.same(
    prod.resources[0]!.heldOn,
    [
      { model: A100, gpus: 4 },
      { model: H100, gpus: 4 },
    ],
    'what the any-model row holds, per product',
  );
  const hOnly = rows.find((r) => r.name === 'h-only')!;
  t.same(
    hOnly.resources.map((l) => [l.model, l.quota, l.guaranteedHeld, l.guaranteedQuota, l.borrowed]),
    [
      [H100, true, 1, 4, 0],
      [A100, false, 2, 0, 0],
    ],
    'GPUs held on a model no row covers get a line of their own, without quota; no cohort, nothing borrowed',
  );
  t.same([prod.held, hOnly.held], [8, 3], 'held: both QoS, every model');
});

t.test('activity for a non-admin: their namespaces, and preemptions of their pods without the preemptor', async (t) => {
  const items: ActivityItem[] = [
    { at: '3', kind: 'released', namespace: 'team-a', name: 'j1', queue: 'q', text: 'released' },
    { at: '2', kind: 'released', namespace: 'team-b', name: 'secret', queue: 'q', text: 'released' },
    {
      at: '1',
      kind: 'preempted',
      namespace: 'team-b',
      name: 'boss',
      queue: 'prod',
      text: 'took back 4',
      victims: [
        { namespace: 'team-a', pod: 'be-1', job: 'be', queue: 'lab', gpus: 2 },
        { namespace: 'team-c', pod: 'other', job: 'o', queue: 'lab', gpus: 2 },
      ],
    },
    { at: '0', kind: 'denied', namespace: 'team-c', name: 'x', queue: '', text: 'no' },
  ];
  const seen = redactActivity(items, new Set(['team-a']));
  t.same(
    seen.map((i) => [i.kind, i.namespace, i.name]),
    [
      ['released', 'team-a', 'j1'],
      ['preempted', '', ''],
    ],
  );
  t.same(seen[1]!.victims, [
    { namespace: 'team-a', pod: 'be-1', job: 'be', queue: 'lab', gpus: 2 },
    { namespace: '', pod: '', job: '', queue: 'lab', gpus: 2 },
  ]);
  t.notMatch(JSON.stringify(seen), /team-b|team-c|secret|boss|other/, 'no names from other namespaces');
});

t.test('access: admins by the admin API rule, other users by TokenReview, namespaces by cached SubjectAccessReview', async (t) => {
  const users: Record<string, { user: string; groups: string[] }> = { a: { user: 'alice', groups: [] }, o: { user: 'olga', groups: ['sluice:admins'] } };
  const reviewer = async (token: string) => users[token] ?? null;
  const asked: string[] = [];
  const access = new ConsoleAccess({
    auth: new ApiAuth({ token: 'static', reviewer, adminGroups: ['sluice:admins'], log }),
    reviewer,
    accessReviewer: async (user, _groups, ns) => {
      asked.push(`${user}/${ns}`);
      return user === 'alice' && ns === 'team-a';
    },
    log,
  });
  t.same(await access.who('Bearer static'), { ok: true, viewer: { kind: 'admin', user: 'api-token' } });
  t.same(await access.who('Bearer o'), { ok: true, viewer: { kind: 'admin', user: 'olga' } });
  const alice = await access.who('Bearer a');
  t.same(alice, { ok: true, viewer: { kind: 'user', user: 'alice', groups: [] } });
  t.match(await access.who('Bearer nobody'), { ok: false, reason: /neither api.token nor a Kubernetes token/ });
  t.match(await access.who(undefined), { ok: false });
  if (!alice.ok) return;
  t.same([...(await access.visible(alice.viewer, ['team-a', 'team-b']))], ['team-a']);
  t.same([...(await access.visible(alice.viewer, ['team-a', 'team-b']))], ['team-a']);
  t.same(asked, ['alice/team-a', 'alice/team-b'], 'each answer asked once, then cached');
  t.same([...(await access.visible({ kind: 'admin', user: 'x' }, ['team-b']))], ['team-b'], 'admins see every namespace');
});
