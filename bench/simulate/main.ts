// `npm run simulate`: replays the openb GPU trace through sluice's placement policies and
// writes bench/results/simulate-<date>.{json,md,svg}. Progress goes to stderr.
//
//   --data DIR        trace folder (default ../shared/data/openb from the repo root)
//   --seeds N         seeds per policy and pod list (default 10)
//   --lists a,b       pod lists (default: default,multigpu50,gpushare100,gpuspec33)
//   --policies a,b    policies (default: all five)
//   --workers N       worker threads (default: number of CPUs, at most 4)
//   --out DIR         results folder (default bench/results)
//   --extender-scores rank nodes by the extender's 0..10 integer scores, not raw scores
//                     (results go to simulate-<date>-extender-scores.*)
//   --quick           one seed, default list, a quarter of the nodes, in-process; checks
//                     invariants only (what CI runs; see test/bench/simulate-quick.test.ts)
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SIM_POLICIES, simulate, type SimPolicyName, type SimResult } from './engine.js';
import { aggregate, markdown, svg, type Curve } from './report.js';
import { loadTrace, POD_LISTS, type PodListName } from './trace.js';
import type { SimJob } from './worker.js';

export interface SimulateArgs {
  dataDir: string;
  seeds: number;
  lists: PodListName[];
  policies: SimPolicyName[];
  workers: number;
  outDir: string;
  quick: boolean;
  extenderScores: boolean;
}

export function parseArgs(argv: readonly string[], cwd = process.cwd()): SimulateArgs {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const csv = <T extends string>(v: string | undefined, all: readonly T[], what: string): T[] => {
    if (!v) return [...all];
    const out = v.split(',').filter(Boolean);
    for (const x of out) if (!(all as readonly string[]).includes(x)) throw new Error(`unknown ${what} ${x}; choose from ${all.join(', ')}`);
    return out as T[];
  };
  return {
    dataDir: resolve(cwd, get('data') ?? '../shared/data/openb'),
    seeds: Number(get('seeds') ?? 10),
    lists: csv(get('lists'), POD_LISTS, 'pod list'),
    policies: csv(get('policies'), SIM_POLICIES, 'policy'),
    workers: Number(get('workers') ?? Math.min(4, availableParallelism())),
    outDir: resolve(cwd, get('out') ?? 'bench/results'),
    quick: argv.includes('--quick'),
    extenderScores: argv.includes('--extender-scores'),
  };
}

/** CI mode: one seed, the default list on every 4th node, all policies, in this thread.
 * simulate() throws on any broken invariant (overcommitted GPU, CPU or memory; an
 * infeasible placement; slot bookkeeping that disagrees with per-GPU occupancy). */
export function runQuick(dataDir: string, policies: readonly SimPolicyName[] = SIM_POLICIES): SimResult[] {
  const t = loadTrace(dataDir, 'default');
  const nodes = t.nodes.filter((_, i) => i % 4 === 0);
  return policies.map((policy) => simulate({ nodes, pods: t.pods, policy, seed: 1 }));
}

async function runPool(args: SimulateArgs, jobs: SimJob[], onDone: (job: SimJob, r: SimResult) => void): Promise<void> {
  const workerUrl = new URL('./worker.js', import.meta.url);
  let next = 0;
  const runWorker = (): Promise<void> =>
    new Promise((resolveP, reject) => {
      const w = new Worker(workerUrl);
      const feed = (): void => {
        const job = jobs[next++];
        if (!job) {
          void w.terminate().then(() => resolveP());
          return;
        }
        w.postMessage(job);
      };
      w.on('message', (m: { id: number; result?: SimResult; error?: string }) => {
        const job = jobs[m.id]!;
        if (m.error || !m.result) {
          reject(new Error(`${job.list}/${job.policy}/seed ${job.seed}: ${m.error}`));
          void w.terminate();
          return;
        }
        onDone(job, m.result);
        feed();
      });
      w.on('error', reject);
      feed();
    });
  await Promise.all(Array.from({ length: Math.max(1, Math.min(args.workers, jobs.length)) }, runWorker));
}

export async function runFull(args: SimulateArgs): Promise<{ curves: Curve[]; files: string[] }> {
  const jobs: SimJob[] = [];
  for (const list of args.lists)
    for (let seed = 1; seed <= args.seeds; seed++)
      for (const policy of args.policies) jobs.push({ id: jobs.length, dataDir: args.dataDir, list, policy, seed, extenderScores: args.extenderScores });
  const runs = new Map<string, SimResult[]>();
  const started = Date.now();
  let done = 0;
  await runPool(args, jobs, (job, r) => {
    const k = `${job.list}/${job.policy}`;
    runs.set(k, [...(runs.get(k) ?? []), r]);
    done++;
    const p100 = r.points.find((p) => p.arrivedPct === 100);
    process.stderr.write(
      `[${done}/${jobs.length} ${((Date.now() - started) / 1000).toFixed(0)}s] ${k} seed ${job.seed}: ` +
        `${p100 ? (100 - p100.allocationPct).toFixed(2) : '?'}% unallocated at 100% arrived\n`,
    );
  });
  const curves: Curve[] = [];
  for (const list of args.lists)
    for (const policy of args.policies) {
      const rs = (runs.get(`${list}/${policy}`) ?? []).sort((a, b) => a.seed - b.seed);
      curves.push(aggregate(list, policy, rs));
    }
  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(args.outDir, { recursive: true });
  const base = join(args.outDir, `simulate-${date}${args.extenderScores ? '-extender-scores' : ''}`);
  const meta = {
    date: new Date().toISOString(),
    method:
      'FGD (ATC 23) replay: seeded random arrival, no departures, until 130% of GPU capacity; failed pods skipped' +
      (args.extenderScores ? '; nodes ranked by the extender 0..10 scores' : '; nodes ranked by raw policy scores'),
    cluster: 'openb_node_list_all_node.csv',
    seeds: args.seeds,
    seconds: (Date.now() - started) / 1000,
  };
  writeFileSync(`${base}.json`, JSON.stringify({ ...meta, curves }, null, 1) + '\n');
  const md = `### Trace simulation ${date}\n\n${meta.method}; mean of ${args.seeds} seeds; ran in ${meta.seconds.toFixed(0)} s.\n\n${markdown(curves)}`;
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, svg(curves, `GPU allocation vs arrived demand, openb trace, mean of ${args.seeds} seeds`));
  return { curves, files: [`${base}.json`, `${base}.md`, `${base}.svg`] };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.quick) {
    const rs = runQuick(args.dataDir, args.policies);
    for (const r of rs) {
      const p = r.points.find((x) => x.arrivedPct === 100);
      process.stdout.write(`${r.policy}: ${r.placed}/${r.arrived} placed, ${p ? (100 - p.allocationPct).toFixed(2) : '?'}% unallocated at 100%\n`);
    }
    process.stdout.write('quick simulation done; invariants held\n');
    return;
  }
  const { curves, files } = await runFull(args);
  process.stdout.write(markdown(curves) + '\n' + files.map((f) => `wrote ${f}`).join('\n') + '\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`simulate: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
