// Redraws the plot of a finished simulation from its results JSON, without simulating again:
//   node dist/bench/simulate/replot.js bench/results/simulate-<date>.json [...]
// writes the .svg next to each .json.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseOrExit } from '../../cli/flags.js';
import { svg, type Curve } from './report.js';

const flags = parseOrExit(
  process.argv.slice(2),
  {
    usage: 'node dist/bench/simulate/replot.js RESULTS.json [...]',
    about: 'Redraws simulate-<date>.svg from simulate-<date>.json (no simulation).',
    flags: [],
  },
  'replot',
  { positional: true },
);
for (const file of flags.positional) {
  const r = JSON.parse(readFileSync(file, 'utf8')) as { seeds: number; curves: Curve[] };
  const out = file.replace(/\.json$/, '.svg');
  writeFileSync(out, svg(r.curves, `GPU allocation vs arrived demand, mean of ${r.seeds} seeds`));
  process.stdout.write(`wrote ${out}\n`);
}
