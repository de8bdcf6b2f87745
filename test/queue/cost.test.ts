// Evaluation cost at scale: 10,000 waiting pods (mixed sizes, queues, QoS, models and
// gangs) over 1,000 nodes. One buildState + evaluate must finish well within a debounce-
// friendly time; the figure is printed, the assertion is loose (< 5 s) on purpose.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { gpuNode } from '../helpers/k8s.js';
import { buildState } from '../../queue/state.js';
import { evaluate } from '../../queue/evaluate.js';
import { T0, limit, newCache, prng, queuedPod, queueSpec, queues } from './helpers.js';

t.test('10,000 waiting pods on 1,000 nodes: buildState + evaluate', async (t) => {
  const rand = prng(2024);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const nodes = Array.from({ length: 1000 }, (_, i) => gpuNode(`n${i}`, { gpus: 8, ...(i % 5 === 0 ? { product: 'NVIDIA-H100-80GB-HBM3' } : {}) }));
  const pods: V1Pod[] = [];
  // Half the GPUs busy: one running pod of 1..8 GPUs on each node.
  for (let i = 0; i < 1000; i++) pods.push(queuedPod(`run${i}`, { node: `n${i}`, gpus: 1 + Math.floor(rand() * 7), queue: `q${i % 10}`, user: `u${i % 37}` }));
  let waiting = 0;
  let j = 0;
  while (waiting < 10_000) {
    const queue = `q${Math.floor(rand() * 10)}`;
    const qos = rand() < 0.3 ? 'best-effort' : 'guaranteed';
    const model = pick(['', '', '', 'a100', 'h100']);
    const user = `u${Math.floor(rand() * 37)}`;
    const created = T0 + Math.floor(rand() * 3_600_000);
    const gang = rand() < 0.05 ? pick([2, 4, 8]) : 1;
    const gpus = pick([1, 1, 1, 2, 2, 4, 8]);
    for (let k = 0; k < gang && waiting < 10_000; k++, waiting++) {
      pods.push(
        queuedPod(`w${j}-${k}`, {
          job: `job${j}`,
          gang: gang > 1 ? gang : undefined,
          queue,
          qos,
          model,
          user,
          created,
          gpus,
          priority: rand() < 0.1 ? 100 : 0,
        }),
      );
    }
    j++;
  }
  const qs = queues(
    ...Array.from({ length: 10 }, (_, i) =>
      queueSpec(`q${i}`, [limit({ guaranteed: 800, bestEffortCap: 300, perUserMax: i === 0 ? 150 : 0 }), limit({ model: 'h100', guaranteed: 160 })], {
        weight: 1 + (i % 3),
        cohort: i < 5 ? 'lab' : null,
      }),
    ),
  );
  const cache = newCache(nodes, pods);
  t.equal(cache.podCount, 11_000);

  const runs: number[] = [];
  let released = 0;
  let units = 0;
  for (let run = 0; run < 3; run++) {
    const start = performance.now();
    const state = buildState(cache, qs, new Set());
    const built = performance.now();
    const ev = evaluate({
      units: state.units,
      ledger: state.ledger,
      capacity: state.capacity,
      weights: new Map([...qs.values()].map((q) => [q.name, q.weight])),
      nowMs: T0 + 4_000_000,
      backfillGuardMs: 7_200_000,
    });
    const done = performance.now();
    runs.push(done - start);
    t.comment(
      `run ${run + 1}: buildState ${(built - start).toFixed(1)} ms, evaluate ${(done - built).toFixed(1)} ms, ${state.units.length} units, ${ev.releases.length} released`,
    );
    released = ev.releases.length;
    units = state.units.length;
    let waitingCount = 0;
    for (const l of ev.waiting.values()) waitingCount += l.length;
    t.equal(waitingCount + ev.releases.length, state.units.length, 'every unit is either released or waits with a reason');
  }
  t.ok(units > 8000, `${units} units (gangs are one unit each)`);
  t.ok(released > 200, `${released} released`);
  const worst = Math.max(...runs);
  const warm = Math.min(...runs);
  t.comment(`buildState + evaluate: ${warm.toFixed(1)} ms warm, ${worst.toFixed(1)} ms cold (first run, JIT)`);
  t.ok(warm < 5000, 'under 5 s');
});

t.test('a cluster with no room at all: 10,000 waiting pods answer quickly (shape cache)', async (t) => {
  const nodes = Array.from({ length: 1000 }, (_, i) => gpuNode(`n${i}`, { gpus: 8 }));
  const pods: V1Pod[] = [];
  for (let i = 0; i < 1000; i++) pods.push(queuedPod(`run${i}`, { node: `n${i}`, gpus: 8 }));
  for (let i = 0; i < 10_000; i++) pods.push(queuedPod(`w${i}`, { gpus: 1 + (i % 4), created: T0 + i, queue: `q${i % 4}` }));
  const cache = newCache(nodes, pods);
  const start = performance.now();
  const state = buildState(cache, 'unlimited', new Set());
  const ev = evaluate({ units: state.units, ledger: state.ledger, capacity: state.capacity, weights: new Map(), nowMs: T0 + 1000, backfillGuardMs: 600_000 });
  const took = performance.now() - start;
  t.comment(`full cluster: ${took.toFixed(1)} ms`);
  t.equal(ev.releases.length, 0);
  t.ok(took < 5000);
});
