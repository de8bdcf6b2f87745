// Summarises a V8 .cpuprofile (node --cpu-prof): self time by where the code lives
// (a package under node_modules, node's internals, a sluice folder), shares of busy time
// (idle and GC listed apart), and the top functions. Used to read the cluster-path
// benchmark's profiles (bench/cluster/main.ts --profile DIR).
//   node dist/bench/cluster/profile-summary.js FILE.cpuprofile [--top 30]
import { readFileSync } from 'node:fs';
import { parseOrExit } from '../../cli/flags.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: a package, node internals, a sluice folder, or a V8 marker. */
export function area(url: string, fn: string): string {
  if (!url) return `(${fn || 'native'})`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const d = /\/dist\/([^/]+)\//.exec(url);
  if (d) return `sluice ${d[1]}/`;
  return url;
}

function main(): void {
  const spec = {
    usage: 'node dist/bench/cluster/profile-summary.js FILE.cpuprofile [flags]',
    about:
      "Summarises a V8 CPU profile (node --cpu-prof, or a benchmark's --profile DIR): self time by\narea (package, node internals, sluice folder) and the top functions, as shares of busy time.",
    flags: [{ name: 'top', value: 'N', default: '30', help: 'rows per list' }],
  };
  const flags = parseOrExit(process.argv.slice(2), spec, 'profile-summary', { positional: true });
  const [file, ...extra] = flags.positional;
  const top = Number(flags.get('top') ?? 30);
  if (file === undefined || extra.length > 0 || !(top >= 1)) {
    process.stderr.write('profile-summary: give one FILE.cpuprofile (and --top N, N >= 1); see --help\n');
    process.exit(2);
  }
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  let total = 0;
  let idle = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    total += us;
    if (n.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const a = area(n.callFrame.url, n.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const f = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '')}:${n.callFrame.lineNumber + 1}`;
    fns.set(f, (fns.get(f) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1)} %`;
  process.stdout.write(`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s profiled\n\nself time by area (share of busy time):\n`);
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, top)) process.stdout.write(`  ${pct(us).padStart(7)}  ${a}\n`);
  process.stdout.write('\ntop functions (self):\n');
  for (const [f, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, top)) process.stdout.write(`  ${pct(us).padStart(7)}  ${f}\n`);
}

if (process.argv[1]?.endsWith('profile-summary.js')) main();
