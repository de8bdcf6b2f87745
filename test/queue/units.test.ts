// Pods -> waiting units: gang-size 1 pods go one by one, gangs go whole and only once all
// their pods exist, an in-flight gang is released without checks, and pods that disagree
// on the gang size make the job invalid.
import t from 'tap';
import { waitingUnits } from '../../queue/units.js';
import { CapacityModel } from '../../queue/capacity.js';
import { gpuNode } from '../helpers/k8s.js';
import { GPU, T0, keys, newCache, pass, queuedPod, unitPodOf, waitOf } from './helpers.js';

const records = (pods: ReturnType<typeof queuedPod>[]) => [...newCache([], pods).allPods()];

t.test('gang size 1: every gated pod is its own unit; released, bound and finished pods are not units', async (t) => {
  const pods = [
    queuedPod('w0', { job: 'j', created: T0 + 2 }),
    queuedPod('w1', { job: 'j', created: T0 + 1 }),
    queuedPod('run', { job: 'j', node: 'g1' }),
    queuedPod('rel', { job: 'j', gated: false }),
    queuedPod('done', { job: 'j', node: 'g1', phase: 'Succeeded' }),
  ];
  const units = waitingUnits(records(pods));
  t.same(units.map((u) => u.key).sort(), ['team-a/j/w0', 'team-a/j/w1']);
  for (const u of units) {
    t.equal(u.gangSize, 1);
    t.equal(u.inFlight, false, 'gang-size 1 pods are never "in flight"');
    t.equal(u.problem, null);
    t.equal(u.pods.length, 1);
  }
  t.equal(units.find((u) => u.key === 'team-a/j/w1')!.submittedMs, T0 + 1);
});

t.test("pods without sluice.io/queue are not the queue manager's", async (t) => {
  const p = queuedPod('x');
  delete p.metadata!.labels!['sluice.io/queue'];
  t.same(waitingUnits(records([p])), []);
});

t.test('gang of 4 with 3 pods seen waits with "gang: 3 of 4 pods seen" and is never released', async (t) => {
  const gang = [0, 1, 2].map((i) => queuedPod(`g${i}`, { job: 'train', gang: 4, gpus: 2 }));
  const units = waitingUnits(records(gang));
  t.equal(units.length, 1);
  const u = units[0]!;
  t.equal(u.key, 'team-a/train');
  t.equal(u.podsSeen, 3);
  t.equal(u.problem?.waitingFor, 'gang');
  t.match(u.problem?.reason, /gang: 3 of 4 pods seen/);

  // Through the whole pass, on a cluster with plenty of room and no quota.
  const cache = newCache([gpuNode('n1', { gpus: 8 }), gpuNode('n2', { gpus: 8 })], gang);
  const { ev } = pass(cache, 'unlimited', T0 + 1000);
  t.same(keys(ev), [], 'an incomplete gang is never half released');
  t.equal(waitOf(ev, 'team-a/train')?.waitingFor, 'gang');
  t.match(waitOf(ev, 'team-a/train')?.reason, 'gang: 3 of 4 pods seen');

  // The fourth pod arrives: the gang goes whole.
  cache.upsertPod(queuedPod('g3', { job: 'train', gang: 4, gpus: 2 }));
  const after = pass(cache, 'unlimited', T0 + 2000).ev;
  t.same(keys(after), ['team-a/train']);
  t.equal(after.releases[0]!.pods.length, 4);
  t.same(after.releases[0]!.need, [{ resource: GPU, count: 8 }]);
});

t.test('a gang with more pods than its size: the first g go as the gang, the rest wait', async (t) => {
  const pods = [0, 1, 2].map((i) => queuedPod(`g${i}`, { job: 'j', gang: 2, created: T0 + i }));
  const units = waitingUnits(records(pods));
  const gang = units.find((u) => u.key === 'team-a/j')!;
  t.same(
    gang.pods.map((p) => p.name),
    ['g0', 'g1'],
    'oldest pods form the gang',
  );
  t.equal(gang.problem, null);
  const extra = units.find((u) => u.key === 'team-a/j/extra')!;
  t.equal(extra.problem?.waitingFor, 'gang');
});

t.test('in-flight gang: its gated pods are released at once, without quota or capacity checks', async (t) => {
  // Two of four pods already released (a restart in the middle of the release); the
  // cluster has no room at all and the queue has no quota.
  const pods = [
    queuedPod('g0', { job: 'j', gang: 4, gpus: 4, gated: false }),
    queuedPod('g1', { job: 'j', gang: 4, gpus: 4, node: 'n1' }),
    queuedPod('g2', { job: 'j', gang: 4, gpus: 4 }),
    queuedPod('g3', { job: 'j', gang: 4, gpus: 4 }),
  ];
  const units = waitingUnits(records(pods));
  t.equal(units.length, 1);
  t.equal(units[0]!.inFlight, true);
  t.equal(units[0]!.podsSeen, 4);
  t.same(units[0]!.pods.map((p) => p.name).sort(), ['g2', 'g3']);

  const cache = newCache([gpuNode('n1', { gpus: 4 })], pods);
  const qs = new Map([['team-a', { name: 'team-a', parent: null, cohort: null, open: true, weight: 1, limits: [] }]]);
  const { ev } = pass(cache, qs, T0 + 1000);
  t.same(keys(ev), ['team-a/j'], 'released although neither quota nor capacity allows it');
});

t.test('pods that disagree on the gang size make the job invalid, never released', async (t) => {
  const pods = [queuedPod('a', { job: 'j', gang: 2 }), queuedPod('b', { job: 'j', gang: 3 })];
  const units = waitingUnits(records(pods));
  t.equal(units.length, 1);
  t.equal(units[0]!.problem?.waitingFor, 'invalid');
  t.match(units[0]!.problem?.reason, /disagree on sluice\.io\/gang-size \(2, 3\)/);

  // Disagreement with a pod already released counts too.
  const mixed = [queuedPod('a', { job: 'k', gang: 2, node: 'n1' }), queuedPod('b', { job: 'k', gang: 4 })];
  t.equal(waitingUnits(records(mixed))[0]!.problem?.waitingFor, 'invalid');

  // A gang size that is not a whole number >= 1 is invalid as well.
  for (const bad of ['0', 'two', '1.5', '-1']) {
    const u = waitingUnits(records([queuedPod('x', { job: 'bad', gang: bad })]));
    t.equal(u[0]?.problem?.waitingFor, 'invalid', `gang-size "${bad}"`);
  }

  const cache = newCache([gpuNode('n1')], pods);
  t.same(keys(pass(cache, 'unlimited', T0).ev), []);
  t.equal(waitOf(pass(cache, 'unlimited', T0).ev, 'team-a/j')?.waitingFor, 'invalid');
});

t.test('gang capacity is all-or-nothing: 4 x 2 GPUs fit two nodes with 4 free, not three with 3 free', async (t) => {
  const node = (name: string, free: number) => ({
    name,
    product: 'NVIDIA-A100-SXM4-80GB',
    unusable: null,
    labels: {},
    capacity: { [GPU]: 8 },
    free: { [GPU]: free },
    bestEffort: { [GPU]: 0 },
  });
  const gang = [0, 1, 2, 3].map((i) => unitPodOf(`p${i}`, 2));

  const two = new CapacityModel([node('a', 4), node('b', 4)]);
  const ok = two.place(gang, 'guaranteed');
  t.ok(ok.ok);
  if (ok.ok) t.same([...ok.nodes].sort(), ['a', 'a', 'b', 'b']);
  t.equal(two.idleGpus(GPU), 0);

  const three = new CapacityModel([node('a', 3), node('b', 3), node('c', 3)]);
  t.equal(three.wouldPlace(gang, 'guaranteed'), false);
  const failed = three.place(gang, 'guaranteed');
  t.equal(failed.ok, false);
  if (!failed.ok) {
    t.match(failed.reason, /^gang of 4: pod p3: /);
    t.equal(failed.resolvable, true);
  }
  t.equal(three.idleGpus(GPU), 9, 'the failed gang left the model as it was');
  // ...so smaller work still sees every GPU.
  t.ok(three.place([unitPodOf('x', 3), unitPodOf('y', 3), unitPodOf('z', 3)], 'guaranteed').ok);
});

t.test('a re-created member of a gang whose other pods already ran to completion waits only for quota and room', async (t) => {
  // Gang of 4: three pods were released and Succeeded; the fourth Failed and its
  // controller re-created it (gated again by the webhook). The gang needs only that pod:
  // it must not wait for 3 more that will never come. Its predecessors' quota is free
  // again, so it goes through quota and capacity like any job (not in flight).
  const pods = [
    queuedPod('g0', { job: 'j', gang: 4, node: 'n1', phase: 'Succeeded' }),
    queuedPod('g1', { job: 'j', gang: 4, node: 'n1', phase: 'Succeeded' }),
    queuedPod('g2', { job: 'j', gang: 4, node: 'n1', phase: 'Succeeded' }),
    queuedPod('g3', { job: 'j', gang: 4, node: 'n1', phase: 'Failed' }),
    queuedPod('g3-retry', { job: 'j', gang: 4 }),
  ];
  const units = waitingUnits(records(pods));
  t.equal(units.length, 1);
  t.equal(units[0]!.problem, null, 'not "gang: 1 of 4 pods seen"');
  t.equal(units[0]!.inFlight, false, 'checked against quota and capacity');
  t.same(
    units[0]!.pods.map((p) => p.name),
    ['g3-retry'],
  );
});

t.test('the next wave of a gang Job (completions beyond parallelism) is a whole gang again', async (t) => {
  const done = [0, 1, 2, 3].map((i) => queuedPod(`w1-${i}`, { job: 'j', gang: 4, node: 'n1', phase: 'Succeeded' }));
  const two = [queuedPod('w2-0', { job: 'j', gang: 4 }), queuedPod('w2-1', { job: 'j', gang: 4 })];
  t.match(waitingUnits(records([...done, ...two]))[0]!.problem, { waitingFor: 'gang', reason: /2 of 4 pods seen/ }, 'two of the next four: wait');
  const four = [...two, queuedPod('w2-2', { job: 'j', gang: 4 }), queuedPod('w2-3', { job: 'j', gang: 4 })];
  const units = waitingUnits(records([...done, ...four]));
  t.equal(units.length, 1);
  t.equal(units[0]!.problem, null);
  t.equal(units[0]!.pods.length, 4, 'released whole');
});
