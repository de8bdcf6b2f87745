// The simulation plot (bench/simulate/report.ts svg): low allocations are drawn where they
// are (no clamping at 50 %), the difference to fgd has its own panel on an axis sized to it,
// and the two compared policies have colours told apart (issue 21 item 6).
import t from 'tap';
import { svg, type Curve } from '../../bench/simulate/report.js';

const curve = (policy: string, alloc: (arrived: number) => number): Curve => ({
  list: 'default',
  policy,
  unallocatedPctAt100: [],
  seeds: 1,
  capacityGpus: 100,
  points: [10, 50, 100].map((a) => ({ arrivedPct: a, allocationPct: alloc(a), unallocatedGpus: 0, minPct: 0, maxPct: 0 })),
  unallocatedAt100: null,
  meanFailed: 0,
  meanArrived: 0,
});

const text = svg([curve('fragmentation', (a) => Math.min(a, 95.6)), curve('fgd', (a) => Math.min(a, 95))], 'test');
const paths = [...text.matchAll(/<path d="([^"]+)" fill="none" stroke="([^"]+)"/g)].map((m) => ({
  ys: [...m[1]!.matchAll(/,([\d.]+)/g)].map((y) => Number(y[1])),
  color: m[2]!,
}));

t.equal(paths.length, 3, 'two allocation curves and one difference curve');
const [frag, fgd, diff] = paths;
t.ok(frag!.ys[0]! > frag!.ys[1]! + 50, 'the point at 10 % is drawn well below the one at 50 % (not clamped flat)');
t.match(text, /minus fgd, points/, 'a panel of the difference to fgd');
t.ok(diff!.ys[0]! - diff!.ys[2]! > 30, 'a 0.6-point gap spans a good part of the difference panel');
t.not(frag!.color, fgd!.color);
t.same([frag!.color, fgd!.color], ['#D55E00', '#0072B2'], 'vermillion and blue (Okabe-Ito), not red and orange');
