// Nothing starves: a seeded simulation of a busy cluster. Every round some running pods
// finish, new small jobs arrive, the queue manager evaluates, and what it releases is
// bound (binpack, as the extender does) into the cache. A big job (a whole node) waits
// behind a steady stream of one-GPU jobs. With the backfill guard it runs within a bounded
// number of rounds once older than the guard; without the guard (guard = huge) the small
// jobs refill every GPU that frees up and the same big job never runs.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from '../../cluster/cache.js';
import { gpuNode } from '../helpers/k8s.js';
import { GPU, T0, newCache, pass, prng, queuedPod } from './helpers.js';

const ROUND_MS = 10_000;
const NODES = 4;
const GPUS_PER_NODE = 8;
const FINISH_P = 0.15; // each running pod finishes with this chance per round
const ARRIVALS = 6; // new one-GPU jobs per round: more than the ~4.8 that finish, so the cluster stays full

interface Outcome {
  /** Round in which the big job was bound, or null. */
  bigBoundAt: number | null;
  /** Small jobs released after the big job was bound. */
  smallAfterBig: number;
  /** Released pods the binder found no node for (the model promised room that was not there). */
  unbindable: number;
  maxWaitingSeen: number;
}

/** Binds a released pod as kube-scheduler with the binpack extender would: the fullest node it fits. */
function bindPod(cache: ClusterCache, pod: V1Pod, gpus: number): boolean {
  let best: { name: string; free: number } | null = null;
  for (const name of cache.nodeNames()) {
    const v = cache.nodeView(name, GPU);
    if (!v?.gpus || v.unusable || v.gpus.freeWhole < gpus) continue;
    if (!best || v.gpus.freeWhole < best.free) best = { name, free: v.gpus.freeWhole };
  }
  if (!best) return false;
  cache.upsertPod({ ...pod, spec: { ...pod.spec!, nodeName: best.name, schedulingGates: [] }, status: { phase: 'Running' } });
  return true;
}

function simulate(seed: number, guardMs: number, rounds: number): Outcome {
  const rand = prng(seed);
  const byUid = new Map<string, V1Pod>();
  const add = (p: V1Pod) => (byUid.set(p.metadata!.uid!, p), p);
  const nodes = Array.from({ length: NODES }, (_, i) => gpuNode(`n${i}`, { gpus: GPUS_PER_NODE }));
  // The cluster starts full of one-GPU jobs.
  const initial = Array.from({ length: NODES * GPUS_PER_NODE }, (_, i) => add(queuedPod(`warm${i}`, { node: `n${i % NODES}`, created: T0 - 1000 })));
  const big = add(queuedPod('big', { gpus: GPUS_PER_NODE, created: T0 }));
  const cache = newCache(nodes, [...initial, big]);
  let next = 0;
  const out: Outcome = { bigBoundAt: null, smallAfterBig: 0, unbindable: 0, maxWaitingSeen: 0 };
  for (let r = 1; r <= rounds; r++) {
    const now = T0 + r * ROUND_MS;
    for (const p of [...cache.allPods()]) if (p.nodeName && rand() < FINISH_P) cache.deletePod(p.uid);
    for (let i = 0; i < ARRIVALS; i++) {
      const p = add(queuedPod(`s${next++}`, { created: now - 1 }));
      cache.upsertPod(p);
    }
    const { ev, state } = pass(cache, 'unlimited', now, { guardMs });
    out.maxWaitingSeen = Math.max(out.maxWaitingSeen, state.units.length - ev.releases.length);
    for (const u of ev.releases) {
      for (const up of u.pods) {
        const pod = byUid.get(up.uid)!;
        if (!bindPod(cache, pod, up.requests[0]?.count ?? 0)) out.unbindable++;
      }
      if (u.job === 'big') out.bigBoundAt = r;
      else if (out.bigBoundAt !== null && out.bigBoundAt < r) out.smallAfterBig++;
    }
    if (out.bigBoundAt !== null && out.smallAfterBig > 0 && r > out.bigBoundAt + 5) break;
  }
  return out;
}

const GUARD_MS = 120_000; // 12 rounds
const GUARD_ROUNDS = GUARD_MS / ROUND_MS;
const BOUND = 60; // rounds past the guard within which the big job must run

for (const seed of [1, 7, 42]) {
  t.test(`seed ${seed}: with the guard the big job runs; without it, it starves`, async (t) => {
    const guarded = simulate(seed, GUARD_MS, 400);
    t.comment(
      `guard ${GUARD_MS / 1000} s: big job bound in round ${guarded.bigBoundAt} (guard passes after round ${GUARD_ROUNDS}); backlog up to ${guarded.maxWaitingSeen}`,
    );
    t.not(guarded.bigBoundAt, null, 'the big job runs');
    t.ok(guarded.bigBoundAt! > GUARD_ROUNDS, 'not before the guard: until then the small jobs backfill');
    t.ok(guarded.bigBoundAt! <= GUARD_ROUNDS + BOUND, `within ${BOUND} rounds of passing the guard`);
    t.ok(guarded.smallAfterBig > 0, 'small jobs run again once it has started');
    t.equal(guarded.unbindable, 0, 'every released pod found a node');

    const unguarded = simulate(seed, Number.MAX_SAFE_INTEGER, 400);
    t.comment(`no guard: big job bound in round ${unguarded.bigBoundAt}; backlog up to ${unguarded.maxWaitingSeen}`);
    t.equal(unguarded.bigBoundAt, null, 'without the guard the same big job never runs in 400 rounds');
    t.equal(unguarded.unbindable, 0);
  });
}

t.test('the simulation is deterministic', async (t) => {
  t.same(simulate(5, GUARD_MS, 80), simulate(5, GUARD_MS, 80));
});
