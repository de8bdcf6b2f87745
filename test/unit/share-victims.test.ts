// Victim choice on GPUs split by HAMi's device plugin (placement/victims.ts shareVictims):
// a victim frees the memory, cores and slot it uses on its GPU and costs its
// GPU-equivalents; the preemptor needs room on some GPU. Hand-made cases whose answer can
// be stated, and the search checked against every subset on random nodes.
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
import { fit } from '../../placement/fit.js';
import { shareMilli, slotsOfDevices, withoutUses, type DeviceUse, type GpuDevice, type ShareAsk } from '../../placement/shares.js';
import type { NodeView } from '../../placement/types.js';

const R = 'nvidia.com/gpu';
const MIB = 16000;

interface Gpu {
  memMiB?: number;
  slots?: number;
}
/** A node of GPUs "GPU-<i>" with what the given pods use on them. */
function shareNode(gpus: Gpu[], pods: VictimCandidate[]): NodeView {
  const devices: GpuDevice[] = gpus.map((g, i) => ({
    uuid: `GPU-${i}`,
    index: i,
    type: 'T4',
    numa: 0,
    memMiB: g.memMiB ?? MIB,
    cores: 100,
    slots: g.slots ?? 10,
    usedMemMiB: 0,
    usedCores: 0,
    usedSlots: 0,
  }));
  const uses = pods.flatMap((p) => p.uses ?? []);
  const used = withoutUses(
    devices,
    uses.map((u) => ({ ...u, memMiB: -u.memMiB, cores: -u.cores })),
  ).map((d) => ({ ...d, usedSlots: uses.filter((u) => u.uuid === d.uuid).length }));
  return { name: 'n', product: 'T4', unusable: null, gpus: slotsOfDevices(used) };
}
/** A share pod using `memMiB` and `cores` of GPU `gpu`. */
const share = (uid: string, gpu: number, memMiB: number, o: Partial<VictimCandidate> & { cores?: number } = {}): VictimCandidate => {
  const { cores = 0, ...rest } = o;
  const use: DeviceUse = { uuid: `GPU-${gpu}`, memMiB, cores };
  return {
    uid,
    qos: 'best-effort',
    gpus: 1,
    equivalents: shareMilli({ count: 1, memMiB, memPercent: 0, cores }, MIB) / 1000,
    uses: [use],
    priority: 100,
    startedAt: 1000,
    terminating: false,
    gang: null,
    overdue: false,
    ...rest,
  };
};
const pre = (a: Partial<ShareAsk>, priority = 1000): Preemptor => ({
  ask: { resource: R, count: a.count ?? 1, milli: 1000, models: [], shares: [{ count: 1, memMiB: 0, memPercent: 0, cores: 0, ...a }] },
  priority,
});
const on = (gpus: Gpu[], pods: VictimCandidate[]): NodeCandidates => ({ view: shareNode(gpus, pods), pods, proposed: pods.map((p) => p.uid) });
const best = (p: Preemptor, n: NodeCandidates): VictimSet | undefined => chooseVictims(p, [n]).kept[0];

t.test('the fewest GPU-equivalents are taken back; ties by priority, start, pods, UIDs', async (t) => {
  // One full GPU: a 0.5, b 0.25, c 0.25.
  const pods = [share('a', 0, 8000), share('b', 0, 4000, { startedAt: 2000 }), share('c', 0, 4000)];
  const r1 = best(pre({ memMiB: 4000 }), on([{}], pods))!;
  t.same([r1.uids, r1.takenBack, r1.freed], [['b'], 0.25, 0.25], 'a quarter is enough: the later-started quarter, not the half');
  const r2 = best(pre({ memMiB: 8000 }), on([{}], pods))!;
  t.same([r2.uids, r2.takenBack], [['a'], 0.5], '{a} and {b, c} both take back 0.5: fewer pods (rule 4)');
  const r3 = best(pre({ memMiB: 12000 }), on([{}], pods))!;
  t.same([r3.uids, r3.takenBack], [['a', 'b'], 0.75], '12000 MiB: the half and a quarter (0.75); {a, b} and {a, c} tie on rules 1-4, the UIDs decide');
  const r4 = best(pre({ memMiB: 4000 }, 1000), on([{}], [share('a', 0, 8000, { priority: 10 }), share('b', 0, 4000), share('c', 0, 4000)]))!;
  t.same([r4.uids, r4.takenBack], [['b'], 0.25], 'a lower priority does not outweigh more GPU taken back (rule 1 before 2)');
});

t.test('cores and slots are freed too; memory alone does not make room', async (t) => {
  // Memory is free but cores are not: the pod using 70 cores goes, not the 40-core ones.
  const cores = [share('x', 0, 1000, { cores: 70 }), share('y', 0, 1000, { cores: 20 }), share('z', 0, 1000, { cores: 10 })];
  t.same(best(pre({ memMiB: 1000, cores: 50 }), on([{}], cores))?.uids, ['x'], '50 cores needed, 0 free: x frees 70 (0.7) where y + z free 30');
  t.same(best(pre({ memMiB: 1000, cores: 20 }), on([{}], cores))?.uids, ['y'], '20 cores: y (0.2) costs less than x (0.7)');
  // Two slots, both taken by tiny pods: one must go for any share at all.
  const slots = [share('s1', 0, 100), share('s2', 0, 200)];
  t.same(best(pre({ memMiB: 100 }), on([{ slots: 2 }], slots))?.uids, ['s1'], 'the cheaper slot');
  // An ask of all cores needs a GPU nothing runs on.
  t.same(best(pre({ memMiB: 100, cores: 100 }), on([{ slots: 2 }], slots))?.uids, ['s1', 's2'], 'whole GPU: every task on it goes');
});

t.test('room must be on one GPU: victims spread over GPUs do not add up', async (t) => {
  // GPU 0: a 0.5 and idle rest 0.25 used by b; GPU 1: c 0.5 and d 0.5.
  const pods = [share('a', 0, 8000), share('b', 0, 4000), share('c', 1, 8000), share('d', 1, 8000)];
  const r = best(pre({ memMiB: 10000 }), on([{}, {}], pods))!;
  t.same([r.uids, r.takenBack], [['a'], 0.5], 'GPU 0 has 4000 free; freeing a (8000) makes 12000 there; b + c on two GPUs would free nothing useful');
  const none = chooseVictims(pre({ memMiB: 17000 }), [on([{}, {}], pods)]);
  t.same(none.kept, []);
  t.match(none.dropped[0]!.reason, /node n: .*no GPU could ever hold the share/);
});

t.test('only best-effort shares below the preemptor, not terminating; gangs go whole', async (t) => {
  const pods = [share('g', 0, 12000, { qos: 'guaranteed', priority: 1000 }), share('t', 0, 2000, { terminating: true }), share('b', 0, 2000)];
  const r = chooseVictims(pre({ memMiB: 6000 }), [on([{}], pods)]);
  t.same(r.kept, [], 'only b may go: it frees 2000, 6000 are needed');
  t.match(r.dropped[0]!.reason, /node n: best-effort pods hold 0\.125 nvidia\.com\/gpu there, and without them/);
  // A gang of two quarters here and more elsewhere costs its whole total (1.5).
  const gang = { key: 'team-x/sweep', gpus: 1.5 };
  const withGang = [share('m0', 0, 4000, { gang }), share('m1', 0, 4000, { gang }), share('h', 0, 8000, { startedAt: 1 })];
  const units = victimUnits(pre({ memMiB: 4000 }), withGang);
  t.same(
    units.map((u) => [u.uids, u.freesGpus, u.cost]),
    [
      [['h'], 0.5, 0.5],
      [['m0', 'm1'], 0.5, 1.5],
    ],
  );
  t.same(best(pre({ memMiB: 4000 }), on([{}], withGang))?.uids, ['h'], 'the single half (0.5) beats breaking the gang (1.5)');
});

// ---- the search against brute force -------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The best set by compareVictimSets over every subset of victim units after which the ask fits. */
function bruteForce(p: Preemptor, n: NodeCandidates): VictimSet | null {
  const units = victimUnits(p, n.pods);
  const devices = n.view.gpus!.devices!;
  let found: VictimSet | null = null;
  for (let mask = 1; mask < 1 << units.length; mask++) {
    const us = units.filter((_, i) => mask & (1 << i));
    const view = {
      ...n.view,
      gpus: slotsOfDevices(
        withoutUses(
          devices,
          us.flatMap((u) => u.uses),
        ),
      ),
    };
    if (fit(view, p.ask) !== null) continue;
    const s: VictimSet = {
      node: 'n',
      uids: us.flatMap((u) => u.uids).sort(),
      freed: Math.round(us.reduce((a, u) => a + u.freesGpus * 1000, 0)) / 1000,
      takenBack: Math.round(us.reduce((a, u) => a + u.cost * 1000, 0)) / 1000,
      takenBackInTime: Math.round(us.reduce((a, u) => a + (u.overdue ? 0 : u.cost * 1000), 0)) / 1000,
      maxPriority: Math.max(...us.map((u) => u.priority)),
      earliestStart: Math.min(...us.map((u) => u.start)),
    };
    if (!found || compareVictimSets(s, found) < 0) found = s;
  }
  return found;
}

t.test('the share search finds the set every-subset enumeration finds', async (t) => {
  const rand = rng(7);
  let sets = 0;
  for (let trial = 0; trial < 300; trial++) {
    const gpus = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({ slots: 2 + Math.floor(rand() * 4) }));
    const pods: VictimCandidate[] = [];
    const free = gpus.map((g) => ({ mem: MIB, cores: 100, slots: g.slots }));
    const gang = { key: 'g', gpus: 0.5 + Math.floor(rand() * 4) / 2 };
    for (let i = 0; i < 10; i++) {
      const g = Math.floor(rand() * gpus.length);
      const mem = 500 * (1 + Math.floor(rand() * 12));
      const cores = [0, 10, 30, 50][Math.floor(rand() * 4)]!;
      if (free[g]!.mem < mem || free[g]!.cores < cores || free[g]!.slots < 1) continue;
      free[g]!.mem -= mem;
      free[g]!.cores -= cores;
      free[g]!.slots--;
      pods.push(
        share(`p${i}`, g, mem, {
          cores,
          priority: [10, 50, 100][Math.floor(rand() * 3)]!,
          startedAt: Math.floor(rand() * 3),
          qos: rand() < 0.15 ? 'guaranteed' : 'best-effort',
          gang: rand() < 0.2 ? gang : null,
          // Some are past their time, so the search's bound (rule 1, GPUs in time) is exercised.
          overdue: rand() < 0.25,
        }),
      );
    }
    const count = rand() < 0.2 ? 2 : 1;
    const p = pre({ count, memMiB: 1000 * (1 + Math.floor(rand() * 15)), cores: [0, 20, 60, 100][Math.floor(rand() * 4)]! });
    const n = on(gpus, pods);
    if (fit(n.view, p.ask) === null) continue; // fits already: kube-scheduler would not preempt
    const got = chooseVictims(p, [n]).kept[0] ?? null;
    const want = bruteForce(p, n);
    if (want === null) t.equal(got, null, `trial ${trial}: nothing makes room`);
    else {
      sets++;
      t.ok(got, `trial ${trial}: a set is found`);
      if (got) t.equal(compareVictimSets(got, want), 0, `trial ${trial}: ${got.uids} = ${want.uids}`);
    }
  }
  t.ok(sets > 100, `${sets} trials had a set to find`);
});
