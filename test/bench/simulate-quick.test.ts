// The trace simulator's CI mode: one seed on a quarter of the openb GPU nodes, every policy.
// simulate() throws when an invariant breaks (overcommitted GPU/CPU/memory, infeasible
// placement, slot bookkeeping out of step with per-GPU occupancy); here we also check the
// counters and curves it reports. No timing assertions: this is not a benchmark.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runQuick } from '../../bench/simulate/main.js';
import { SIM_POLICIES } from '../../bench/simulate/engine.js';
import { sharedDir } from '../helpers/shared.js';

const dataDir = process.env.SLUICE_OPENB_DATA ?? join(sharedDir, 'data/openb');

t.test('quick simulation completes with invariants held', { skip: existsSync(dataDir) ? false : `no trace at ${dataDir}` }, async (t) => {
  const results = runQuick(dataDir);
  t.same(
    results.map((r) => r.policy),
    [...SIM_POLICIES],
    'every policy ran',
  );
  for (const r of results) {
    t.equal(r.placed + r.failed, r.arrived, `${r.policy}: every arrival placed or failed`);
    t.equal(r.checkedPlacements, r.placed, `${r.policy}: every placement checked`);
    // The list is tuned to at most 130% of capacity (as the FGD artifact tunes it), so the
    // 130% point is reached only when the last pod lands exactly there.
    t.same(
      r.points.slice(0, 25).map((p) => p.arrivedPct),
      Array.from({ length: 25 }, (_, i) => 5 * (i + 1)),
      `${r.policy}: a point at each 5% up to 125%`,
    );
    t.ok(r.points.length <= 26, `${r.policy}: nothing past 130%`);
    let prev = 0;
    let monotone = true;
    for (const p of r.points) {
      if (p.allocatedMilli < prev || p.allocatedMilli > r.capacityMilli) monotone = false;
      prev = p.allocatedMilli;
    }
    t.ok(monotone, `${r.policy}: allocation never falls and never exceeds capacity`);
    const p100 = r.points.find((p) => p.arrivedPct === 100)!;
    t.ok(p100.allocationPct > 50 && p100.allocationPct <= 100, `${r.policy}: plausible allocation at 100% (${p100.allocationPct.toFixed(1)}%)`);
  }
});
