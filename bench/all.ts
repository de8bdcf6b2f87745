// `npm run bench`: the latency benchmark, then the cluster path, each as its own process with
// its defaults. One entry point rather than `a && b` in package.json, because npm appends the
// caller's arguments to the last command only: `npm run bench -- --help` ran the whole
// latency benchmark before the cluster path printed its help.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOrExit } from '../cli/flags.js';

parseOrExit(
  process.argv.slice(2),
  {
    usage: 'npm run bench',
    about: `Runs the latency benchmark (npm run bench:latency, ~2.5 min on 2 cores), then the cluster
path (npm run bench:path, ~10 min), each with its defaults; they write their results to
bench/results/. For flags, run either one alone: npm run bench:latency -- --help,
npm run bench:path -- --help.`,
    flags: [],
  },
  'bench',
);

const here = dirname(fileURLToPath(import.meta.url));
const steps: string[][] = [[join(here, 'latency/main.js')], ['--max-old-space-size=12000', join(here, 'cluster/main.js')]];
for (const args of steps) {
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
