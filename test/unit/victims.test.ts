// Victim choice on hand-made nodes whose right answer can be stated, and the search
// checked against every subset of random small nodes.
import t from 'tap';
import {
  chooseVictims,
  compareVictimSets,
  victimUnits,
  type NodeCandidates,
  type Preemptor,
  type VictimCandidate,
  type VictimSet,
} from '../../placement/victims.js';
import type { NodeView } from '../../placement/types.js';

const R = 'nvidia.com/gpu';
const view = (name: string, capacity: number, freeWhole: number, extra: Partial<NodeView> = {}): NodeView => ({
  name,
  product: 'NVIDIA-A100-SXM4-80GB',
  unusable: null,
  gpus: { capacity, freeWhole, partialFree: [] },
  ...extra,
});
const be = (uid: string, gpus: number, o: Partial<VictimCandidate> = {}): VictimCandidate => ({
  uid,
  qos: 'best-effort',
  gpus,
  priority: 100,
  startedAt: 1000,
  terminating: false,
  gang: null,
  overdue: false,
  ...o,
});
const guaranteed = (uid: string, gpus: number): VictimCandidate => be(uid, gpus, { qos: 'guaranteed', priority: 1000 });
const pre = (count: number, priority = 1000, models: string[] = []): Preemptor => ({ ask: { resource: R, count, milli: 1000, models }, priority });
const node = (v: NodeView, pods: VictimCandidate[], proposed: string[] = pods.map((p) => p.uid)): NodeCandidates => ({ view: v, pods, proposed });
const onOne = (p: Preemptor, n: NodeCandidates) => chooseVictims(p, [n]);

t.test('the fewest GPUs taken back wins, not the fewest pods', async (t) => {
  // 8-GPU node, full: a 4-GPU pod, a 3 and a 1. The preemptor needs 4: {4} or {3,1}: both 4
  // GPUs; {4} has fewer pods only at rule 4, but first rule 3: the 3+1 started later.
  const n = node(view('g1', 8, 0), [be('a', 4, { startedAt: 1 }), be('b', 3, { startedAt: 5 }), be('c', 1, { startedAt: 5 })]);
  t.same(onOne(pre(4), n).kept[0]!.uids, ['b', 'c'], 'same GPUs and priority: the later-started pair loses less work');
  const n2 = node(view('g1', 8, 0), [be('a', 4), be('b', 3), be('c', 1)]);
  t.same(onOne(pre(4), n2).kept[0]!.uids, ['a'], 'all else equal: fewer pods');
  // Needs 2 of a node holding 4 and 3 and 1 with 1 free: {1}+1 free = 2; taking 1 GPU back beats 3 or 4.
  const n3 = node(view('g1', 9, 1), [be('a', 4), be('b', 3), be('c', 1)]);
  const r = onOne(pre(2), n3).kept[0]!;
  t.same([r.uids, r.freed, r.takenBack], [['c'], 1, 1], 'free GPUs count toward the need');
  // Needs 5: {4,1} = 5 GPUs beats {4,3} = 7 and {3,1,...}.
  t.same(onOne(pre(5), n2).kept[0]!.uids, ['a', 'c']);
});

t.test('ties: lowest priority, then most recently started', async (t) => {
  const n = node(view('g1', 4, 0), [
    be('old', 2, { startedAt: 10 }),
    be('new', 2, { startedAt: 20 }),
    be('vip', 2, { priority: 500, startedAt: 30 }),
    be('x', 0),
  ]);
  // 6 GPUs listed on a 4-GPU node is impossible in reality but keeps the rules apart.
  t.same(onOne(pre(2), n).kept[0]!.uids, ['new'], 'same priority: the later one');
  const n2 = node(view('g1', 4, 0), [be('low-old', 2, { priority: 50, startedAt: 10 }), be('high-new', 2, { priority: 100, startedAt: 20 })]);
  t.same(onOne(pre(2), n2).kept[0]!.uids, ['low-old'], 'priority comes before start time');
  const n3 = node(view('g1', 4, 0), [be('b', 2), be('a', 2)]);
  t.same(onOne(pre(2), n3).kept[0]!.uids, ['a'], 'full tie: the smaller UID, so the answer is always the same');
});

t.test('overdue pods (past their queue maxDuration or declared duration) are reclaimed first', async (t) => {
  const n = node(view('g1', 8, 0), [be('small', 2), be('late', 4, { overdue: true }), be('x', 2)]);
  t.same(onOne(pre(2), n).kept[0]!.uids, ['late'], 'an overdue 4-GPU pod before an in-time 2-GPU one (rule 1 before rule 2)');
  const mix = node(view('g1', 10, 0), [be('o', 4, { overdue: true }), be('y', 6), be('z', 2)]);
  const r = onOne(pre(6), mix).kept[0]!;
  t.same([r.uids, r.takenBack, r.takenBackInTime], [['o', 'z'], 6, 2], 'not enough overdue GPUs: the fewest in-time GPUs on top of them');
  const prio = node(view('g1', 4, 0), [be('low', 2, { priority: 10 }), be('late', 2, { priority: 100, overdue: true })]);
  t.same(onOne(pre(2), prio).kept[0]!.uids, ['late'], 'overdue comes before priority');
  const two = node(view('g1', 8, 0), [be('a', 2, { overdue: true }), be('b', 4, { overdue: true })]);
  t.same(onOne(pre(2), two).kept[0]!.uids, ['a'], 'among overdue pods the usual rules: fewest GPUs taken back');
  // A gang is overdue only when all of its pods here are.
  const g = { key: 'team-x/g', gpus: 4 };
  const gang = node(view('g1', 8, 0), [be('g-0', 2, { gang: g, overdue: true }), be('g-1', 2, { gang: g }), be('s', 4)]);
  t.same(onOne(pre(4), gang).kept[0]!.uids, ['s'], 'half the gang overdue: the gang is in time, and s is fewer pods');
  t.same(
    victimUnits(pre(4), gang.pods).map((u) => [u.uids, u.overdue]),
    [
      [['g-0', 'g-1'], false],
      [['s'], false],
    ],
  );
  const late = node(view('g1', 8, 0), [be('g-0', 2, { gang: g, overdue: true }), be('g-1', 2, { gang: g, overdue: true }), be('s', 4)]);
  t.same(onOne(pre(4), late).kept[0]!.uids, ['g-0', 'g-1'], 'the whole gang overdue: it goes first');
  // Nodes compare by the same order, and the reason says so.
  const other = node(view('g2', 8, 0), [be('q', 2)]);
  const choice = chooseVictims(pre(2), [other, n]);
  t.same(
    choice.kept.map((k) => k.node),
    ['g1'],
  );
  t.match(choice.dropped, [{ node: 'g2', reason: 'node g1 loses less (1 pod, 4 GPUs taken back (4 from overdue pods); here 1 pod, 2 GPUs taken back)' }]);
});

t.test("only best-effort pods below the preemptor's priority are victims", async (t) => {
  const n = node(view('g1', 8, 0), [guaranteed('g', 6), be('b', 2)]);
  const r = onOne(pre(4), n);
  t.same(r.kept, [], 'a guaranteed pod is never a victim, so 2 GPUs cannot make 4');
  t.match(r.dropped, [{ node: 'g1', reason: 'node g1: best-effort pods hold 2 nvidia.com/gpu there, 4 more must be freed' }]);
  t.same(onOne(pre(2), n).kept[0]!.uids, ['b']);
  const unmanaged = node(view('g1', 2, 0), [be('u', 2, { qos: 'unmanaged', priority: 0 })]);
  t.same(onOne(pre(2), unmanaged).kept, [], 'pods sluice does not manage are not victims either');
  const equal = node(view('g1', 2, 0), [be('p', 2, { priority: 1000 })]);
  t.same(onOne(pre(2, 1000), equal).kept, [], 'not of equal priority');
  const term = node(view('g1', 2, 0), [be('t', 2, { terminating: true })]);
  t.same(onOne(pre(2), term).kept, [], 'a terminating pod frees nothing more (its GPUs may be promised already)');
});

t.test('gangs: whole gangs or single pods; a broken gang costs all its GPUs', async (t) => {
  // Gang G has 2 pods of 2 here and 2 pods of 2 on another node (8 GPUs in all). A single
  // pod s of 4 GPUs costs 4; breaking G here frees 4 but costs 8.
  const g = { key: 'team-x/g', gpus: 8 };
  const n = node(view('g1', 8, 0), [be('g-0', 2, { gang: g }), be('g-1', 2, { gang: g }), be('s', 4, { startedAt: 1 })]);
  const r = onOne(pre(4), n).kept[0]!;
  t.same([r.uids, r.takenBack], [['s'], 4], 'the single pod, though it started earlier');
  // Needs 6: only s plus the gang's pods here free enough; the gang goes whole from this node.
  const r6 = onOne(pre(6), n).kept[0]!;
  t.same([r6.uids, r6.freed, r6.takenBack], [['g-0', 'g-1', 's'], 8, 12], 'a gang member never goes alone: both of its pods here go');
  // A gang wholly on the node costs what it frees, like a single pod.
  const whole = { key: 'team-x/w', gpus: 4 };
  const n2 = node(view('g1', 8, 0), [be('w-0', 2, { gang: whole, startedAt: 50 }), be('w-1', 2, { gang: whole, startedAt: 50 }), be('s', 4, { startedAt: 1 })]);
  t.same(onOne(pre(4), n2).kept[0]!.uids, ['w-0', 'w-1'], 'the whole gang started later and costs the same 4 GPUs');
  const units = victimUnits(pre(4), n.pods);
  t.same(
    units.map((u) => [u.uids, u.frees, u.cost]),
    [
      [['g-0', 'g-1'], 4, 8],
      [['s'], 4, 4],
    ],
  );
});

t.test('nodes where preemption cannot help are dropped with the reason', async (t) => {
  const r = chooseVictims(pre(4, 1000, ['h100']), [node(view('g1', 8, 0), [be('a', 8)])]);
  t.same(r.kept, []);
  t.match(r.dropped[0]!.reason, /pod accepts only h100/);
  const cordoned = chooseVictims(pre(4), [node(view('g1', 8, 0, { unusable: 'node is cordoned' }), [be('a', 8)])]);
  t.match(cordoned.dropped[0]!.reason, /cordoned/);
  const big = chooseVictims(pre(16), [node(view('g1', 8, 0), [be('a', 8)])]);
  t.match(big.dropped[0]!.reason, /8 nvidia.com\/gpu in all, pod needs 16/);
});

t.test("GPUs not short: kube-scheduler's victims stay only when all are best-effort", async (t) => {
  const n = node(view('g1', 8, 4), [be('a', 2), be('b', 2)], ['a']);
  t.same(onOne(pre(4), n).kept[0]!.uids, ['a'], 'its proposal, unchanged');
  const n2 = node(view('g1', 8, 4), [be('a', 2), guaranteed('g', 2)], ['a', 'g']);
  t.match(onOne(pre(4), n2).dropped[0]!.reason, /not all best-effort/);
  t.match(onOne(pre(4), node(view('g1', 8, 4), [be('a', 2)], [])).dropped[0]!.reason, /not all best-effort/, 'an empty proposal is not a victim set');
});

t.test('across nodes only the best stays a candidate', async (t) => {
  // Two nodes full of best-effort pods; an 8-GPU preemptor. Node A: one 8-GPU pod. Node B:
  // eight 1-GPU pods. Both take back 8 GPUs; A loses 1 pod, B 8: only A stays.
  const a = node(view('A', 8, 0), [be('a8', 8)]);
  const b = node(
    view('B', 8, 0),
    Array.from({ length: 8 }, (_, i) => be(`b${i}`, 1)),
  );
  const r = chooseVictims(pre(8), [b, a]);
  t.same(
    r.kept.map((s) => [s.node, s.uids]),
    [['A', ['a8']]],
  );
  t.match(r.dropped, [{ node: 'B', reason: 'node A loses less (1 pod, 8 GPUs taken back; here 8 pods, 8 GPUs taken back)' }]);
  const twin = node(view('A2', 8, 0), [be('z8', 8)]);
  t.same(
    chooseVictims(pre(8), [twin, a]).kept.map((s) => s.node),
    ['A'],
    'equally good nodes: the smaller UID list decides, so the answer is always the same',
  );
  t.same(chooseVictims(pre(8), []), { kept: [], dropped: [] });
});

// ---- the search against brute force -------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

t.test('the search finds the set every-subset enumeration finds', async (t) => {
  const rand = rng(42);
  let checked = 0;
  for (let trial = 0; trial < 400; trial++) {
    const pods: VictimCandidate[] = [];
    const n = 1 + Math.floor(rand() * 9);
    const gangs = [
      { key: 'g1', gpus: 2 + Math.floor(rand() * 8) },
      { key: 'g2', gpus: 2 + Math.floor(rand() * 8) },
    ];
    for (let i = 0; i < n; i++) {
      const gang = rand() < 0.3 ? gangs[Math.floor(rand() * 2)]! : null;
      pods.push(
        be(`p${i}`, 1 + Math.floor(rand() * 4), {
          priority: [10, 50, 100][Math.floor(rand() * 3)]!,
          startedAt: Math.floor(rand() * 4),
          gang,
          qos: rand() < 0.15 ? 'guaranteed' : 'best-effort',
          overdue: rand() < 0.3,
        }),
      );
    }
    const capacity = pods.reduce((s, p) => s + p.gpus, 0) + Math.floor(rand() * 3);
    const free = capacity - pods.reduce((s, p) => s + p.gpus, 0);
    const p = pre(free + 1 + Math.floor(rand() * (capacity - free)));
    const got = chooseVictims(p, [node(view('n', capacity, free), pods)]).kept[0] ?? null;
    const want = bruteForce(p, pods, free);
    if (want === null) t.equal(got, null, `trial ${trial}: nothing frees enough`);
    else {
      t.ok(got, `trial ${trial}: a set is found`);
      if (got) t.equal(compareVictimSets(got, want), 0, `trial ${trial}: ${got.uids} = ${want.uids}`);
    }
    checked++;
  }
  t.equal(checked, 400);
});

function bruteForce(p: Preemptor, pods: VictimCandidate[], free: number): VictimSet | null {
  const units = victimUnits(p, pods);
  let best: VictimSet | null = null;
  for (let mask = 1; mask < 1 << units.length; mask++) {
    const us = units.filter((_, i) => mask & (1 << i));
    const freed = us.reduce((s, u) => s + u.frees, 0);
    if (freed + free < p.ask.count) continue;
    const s: VictimSet = {
      node: 'n',
      uids: us.flatMap((u) => u.uids).sort(),
      freed,
      takenBack: us.reduce((s, u) => s + u.cost, 0),
      takenBackInTime: us.reduce((s, u) => s + (u.overdue ? 0 : u.cost), 0),
      maxPriority: Math.max(...us.map((u) => u.priority)),
      earliestStart: Math.min(...us.map((u) => u.start)),
    };
    if (!best || compareVictimSets(s, best) < 0) best = s;
  }
  return best;
}
