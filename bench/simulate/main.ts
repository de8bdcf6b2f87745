// `npm run simulate`: replays a GPU pod trace through sluice's placement policy and the
// reference policies (FGD as its authors' artifact runs it, best-fit, ...) on one cluster,
// all in the same run, and writes bench/results/simulate-<date>.{json,md,svg}. Progress
// goes to stderr. Flags: SIMULATE (below), or `npm run simulate -- --help`.
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SIM_POLICIES, TIE_RULES, simulate, type SimPolicyName, type SimResult, type TieRule } from './engine.js';
import { aggregate, asciiCurves, comparison, fgdAgainstPublished, markdown, svg, type Curve } from './report.js';
import { ALL_NODE_LIST, GPU_NODE_LIST, SHARED_LISTS, loadNodes, loadPods, podListName, podListsIn, type PodListSource } from './trace.js';
import type { SimJob } from './worker.js';
import { FlagError, helpText, parseFlags, type CommandSpec } from '../../cli/flags.js';

export const DEFAULT_POLICIES: readonly SimPolicyName[] = ['fragmentation', 'fgd'];
export const DEFAULT_EXTENDER_WEIGHTS = [1, 5, 10];

export interface SimulateArgs {
  dataDir: string;
  nodesFile: string;
  lists: PodListSource[];
  seeds: number;
  policies: SimPolicyName[];
  workers: number;
  outDir: string;
  quick: boolean;
  /** Extender weights to rank nodes with; null = raw policy scores. */
  extenderWeights: number[] | null;
  /** With extenderWeights: filterBest values to run each policy through; null = none. */
  filterBest: number[] | null;
  /** Rule for equal node scores (engine.ts TIE_RULES); null = the engine's default. */
  ties: TieRule | null;
  /** Also write every arrival's node and GPU indexes (simulate-<date>-placements.csv). */
  placements: boolean;
}

export const SIMULATE: CommandSpec = {
  usage: 'npm run simulate -- [flags]   (or node dist/bench/simulate/main.js [flags])',
  about: `Replays a GPU pod trace (Alibaba's openb by default) through each placement policy on the
same cluster and seeds, and writes bench/results/simulate-<date>.{json,md,svg}: GPU allocation
against arrived demand, mean of the seeds. The full default run takes minutes; --quick is what CI runs.`,
  flags: [
    {
      name: 'data',
      value: 'DIR',
      default: '../shared/data/openb',
      help: 'trace folder (openb_node_list_*.csv, openb_pod_list_*.csv), relative to the current folder',
    },
    {
      name: 'nodes',
      value: 'FILE',
      default: 'DIR/openb_node_list_gpu_node.csv',
      help: "node list CSV (sn,cpu_milli,memory_mib,gpu,model); the default is the FGD paper's cluster",
    },
    { name: 'all-nodes', help: 'use DIR/openb_node_list_all_node.csv (GPU and CPU-only nodes) instead' },
    { name: 'pods', value: 'F[,F]', help: 'pod list CSVs (cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec]), each replayed as its own list' },
    {
      name: 'lists',
      value: 'a,b',
      default: 'the four lists the FGD paper has figures for, else every list in DIR',
      help: 'pod lists DIR/openb_pod_list_<name>.csv',
    },
    { name: 'seeds', value: 'N', default: '10', help: 'seeds per policy and pod list' },
    { name: 'policies', value: 'a,b', default: DEFAULT_POLICIES.join(','), help: `policies to compare (${SIM_POLICIES.join(', ')})` },
    { name: 'workers', value: 'N', default: 'CPUs, at most 4', help: 'worker threads' },
    { name: 'out', value: 'DIR', default: 'bench/results', help: 'results folder' },
    {
      name: 'extender-scores',
      value: 'W[,W]',
      optional: true,
      implied: DEFAULT_EXTENDER_WEIGHTS.join(','),
      help: `rank nodes as kube-scheduler does with the extender at these weights (${DEFAULT_EXTENDER_WEIGHTS.join(',')} when given without a value): LeastAllocated + BalancedAllocation + the policy's 0..10 score x 10 x W`,
    },
    {
      name: 'filter-best',
      value: 'K[,K]',
      help: "with --extender-scores: the extender's filter passes only the K nodes each policy ranks best (scheduler.filterBest)",
    },
    {
      name: 'ties',
      value: 'RULE',
      default: 'shuffled; random with --extender-scores',
      help: `equal node scores: ${TIE_RULES.join(', ')} (shuffled = the FGD artifact's: smallest name after a seeded random renaming of the nodes)`,
    },
    {
      name: 'placements',
      help: "also write simulate-<date>-placements.csv: every arrival's node and GPU indexes (for share pods, the GPU the extender's bind would pick); large",
    },
    { name: 'quick', help: 'one seed, the default list, a quarter of the nodes, in this thread; checks invariants only (CI)' },
  ],
};

const positiveInt = (v: string, what: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new FlagError(`${what} must be a positive integer, got ${v}`);
  return n;
};

/** Parses the simulator's flags (SIMULATE); throws FlagError on an unknown or bad flag. */
export function parseArgs(argv: readonly string[], cwd = process.cwd()): SimulateArgs {
  const f = parseFlags(argv, SIMULATE);
  const get = (name: string): string | undefined => f.get(name);
  const dataDir = resolve(cwd, get('data') ?? '../shared/data/openb');
  const nodesArg = get('nodes');
  if (nodesArg && f.has('all-nodes')) throw new FlagError('--nodes and --all-nodes exclude each other');
  const nodesFile = nodesArg ? resolve(cwd, nodesArg) : join(dataDir, f.has('all-nodes') ? ALL_NODE_LIST : GPU_NODE_LIST);
  const podsArg = get('pods');
  const listsArg = get('lists');
  if (podsArg && listsArg) throw new FlagError('--pods and --lists exclude each other');
  let lists: PodListSource[];
  if (podsArg) {
    lists = podsArg
      .split(',')
      .filter(Boolean)
      .map((p) => ({ name: podListName(p), file: resolve(cwd, p) }));
  } else {
    const inDir = existsSync(dataDir) ? podListsIn(dataDir) : [];
    const byName = new Map(inDir.map((l) => [l.name, l]));
    const names = listsArg ? listsArg.split(',').filter(Boolean) : SHARED_LISTS.every((n) => byName.has(n)) ? [...SHARED_LISTS] : [...byName.keys()];
    lists = names.map((n) => {
      const l = byName.get(n);
      if (!l) throw new FlagError(`no pod list ${n} in ${dataDir} (openb_pod_list_${n}.csv); found ${[...byName.keys()].join(', ') || 'none'}`);
      return l;
    });
  }
  if (lists.length === 0) throw new FlagError(`no pod lists: give --pods FILE or a --data folder with openb_pod_list_*.csv`);
  for (const file of [nodesFile, ...lists.map((l) => l.file)]) if (!existsSync(file)) throw new FlagError(`no such file ${file}`);
  const policies = (get('policies')?.split(',').filter(Boolean) ?? [...DEFAULT_POLICIES]) as SimPolicyName[];
  for (const p of policies)
    if (!(SIM_POLICIES as readonly string[]).includes(p)) throw new FlagError(`unknown policy ${p}; choose from ${SIM_POLICIES.join(', ')}`);
  const ew = get('extender-scores');
  const extenderWeights = ew === undefined ? null : ew.split(',').map((w) => positiveInt(w, 'extender weight'));
  const fb = get('filter-best');
  const filterBest = fb === undefined ? null : fb.split(',').map((k) => positiveInt(k, '--filter-best'));
  if (filterBest && !extenderWeights) throw new FlagError('--filter-best needs --extender-scores (it models the extender in front of kube-scheduler)');
  const tiesArg = get('ties');
  if (tiesArg !== undefined && !(TIE_RULES as readonly string[]).includes(tiesArg))
    throw new FlagError(`unknown --ties ${tiesArg}; choose from ${TIE_RULES.join(', ')}`);
  return {
    dataDir,
    nodesFile,
    lists,
    seeds: positiveInt(get('seeds') ?? '10', '--seeds'),
    policies,
    workers: positiveInt(get('workers') ?? String(Math.min(4, availableParallelism())), '--workers'),
    outDir: resolve(cwd, get('out') ?? 'bench/results'),
    quick: f.has('quick'),
    extenderWeights,
    filterBest,
    ties: (tiesArg as TieRule | undefined) ?? null,
    placements: f.has('placements'),
  };
}

/** CI mode: one seed, the default list on every 4th GPU node, all policies, in this thread.
 * simulate() throws on any broken invariant (overcommitted GPU, CPU or memory; an
 * infeasible placement; slot bookkeeping that disagrees with per-GPU occupancy). */
export function runQuick(dataDir: string, policies: readonly SimPolicyName[] = SIM_POLICIES): SimResult[] {
  const nodes = loadNodes(join(dataDir, GPU_NODE_LIST)).filter((_, i) => i % 4 === 0);
  const pods = loadPods(join(dataDir, 'openb_pod_list_default.csv'));
  return policies.map((policy) => simulate({ nodes, pods, policy, seed: 1 }));
}

async function runPool(args: SimulateArgs, jobs: readonly SimJob[], onDone: (job: SimJob, r: SimResult) => void): Promise<void> {
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

/** What one curve is: a policy, ranked by raw scores or through kube-scheduler at a weight. */
interface Series {
  label: string;
  policy: SimPolicyName;
  weight: number | null;
  filterBest?: number;
}

/** In extender mode sluice's policy runs at each weight beside its raw ranking; the
 * reference policies (FGD is a kube-scheduler plugin in its artifact) run as they are. */
function seriesOf(args: SimulateArgs): Series[] {
  const out: Series[] = [];
  for (const policy of args.policies) {
    out.push({ label: policy, policy, weight: null });
    if (args.extenderWeights && args.filterBest) {
      // Filter-best: every policy through the same path, so the comparison is fair.
      for (const w of args.extenderWeights) for (const k of args.filterBest) out.push({ label: `${policy} w${w} k${k}`, policy, weight: w, filterBest: k });
    } else if (args.extenderWeights && policy === 'fragmentation') {
      for (const w of args.extenderWeights) out.push({ label: `${policy} w${w}`, policy, weight: w });
    }
  }
  return out;
}

export async function runFull(args: SimulateArgs): Promise<{ curves: Curve[]; files: string[]; summary: string }> {
  const series = seriesOf(args);
  const jobs: (SimJob & { label: string })[] = [];
  for (const list of args.lists)
    for (let seed = 1; seed <= args.seeds; seed++)
      for (const s of series)
        jobs.push({
          id: jobs.length,
          nodesFile: args.nodesFile,
          podsFile: list.file,
          list: list.name,
          policy: s.policy,
          seed,
          extenderScores: s.weight === null ? null : { weight: s.weight },
          ...(s.filterBest ? { filterBest: s.filterBest } : {}),
          ...(args.ties ? { ties: args.ties } : {}),
          ...(args.placements ? { recordPlacements: true } : {}),
          label: s.label,
        });
  const runs = new Map<string, SimResult[]>();
  const started = Date.now();
  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(args.outDir, { recursive: true });
  const base = join(args.outDir, `simulate-${date}${args.filterBest ? '-filter-best' : args.extenderWeights ? '-extender-scores' : ''}`);
  // Placements go to their file as each run ends, not into the results kept in memory.
  const placementsFile = args.placements ? `${base}-placements.csv` : null;
  const placementsOut = placementsFile ? createWriteStream(placementsFile) : null;
  placementsOut?.write('list,policy,seed,arrival,node,gpus\n');
  let done = 0;
  await runPool(args, jobs, (job, r) => {
    const k = `${job.list}/${jobs[job.id]!.label}`;
    if (placementsOut && r.placements) {
      const rows = r.placements.map((p, i) => `${job.list},${jobs[job.id]!.label},${job.seed},${i},${p.node ?? ''},${p.gpus.join(' ')}`);
      placementsOut.write(rows.join('\n') + '\n');
      delete r.placements;
    }
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
    for (const s of series) {
      const rs = (runs.get(`${list.name}/${s.label}`) ?? []).sort((a, b) => a.seed - b.seed);
      curves.push(aggregate(list.name, s.label, rs));
    }
  if (placementsOut) await new Promise<void>((resolveP, reject) => placementsOut.end((e?: Error | null) => (e ? reject(e) : resolveP())));
  const meta = {
    date: new Date().toISOString(),
    method:
      'replay as the FGD artifact (ATC 23): pod list shuffled per seed, then tuned to 130% of GPU capacity (random pods appended, or removed when over), ' +
      'no departures, a pod that fits no node fails and is skipped; ' +
      (args.ties === 'name'
        ? 'equal node scores go to the smallest trace node name'
        : args.ties === 'random'
          ? 'equal node scores are drawn at random'
          : "equal node scores go to the smallest node name after a seeded random renaming of the nodes (the artifact's simulator and scheduler), through kube-scheduler (wW) at random") +
      (args.extenderWeights
        ? `; "fragmentation wW" = through kube-scheduler with the extender at weight W (its LeastAllocated + BalancedAllocation + 10 x W x the 0..10 score)`
        : '') +
      (args.filterBest
        ? `; "P wW kK" = policy P through kube-scheduler at weight W with the extender's filter answering only the K nodes P ranks best (raw scores, equal scores to the smallest name), the 0..10 scores scaled over those K`
        : ''),
    cluster: basename(args.nodesFile),
    lists: args.lists.map((l) => basename(l.file)),
    seeds: args.seeds,
    seconds: (Date.now() - started) / 1000,
  };
  const summary = [comparison(curves), fgdAgainstPublished(curves)].filter(Boolean).join('\n');
  writeFileSync(`${base}.json`, JSON.stringify({ ...meta, curves }, null, 1) + '\n');
  const md = `### Trace simulation ${date}\n\n${meta.method}; cluster ${meta.cluster}; ${args.seeds} seeds; ran in ${meta.seconds.toFixed(0)} s.\n\n${summary}\n${markdown(curves)}`;
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, svg(curves, `GPU allocation vs arrived demand, mean of ${args.seeds} seeds`));
  return { curves, files: [`${base}.json`, `${base}.md`, `${base}.svg`, ...(placementsFile ? [placementsFile] : [])], summary };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText(SIMULATE));
    return;
  }
  const args = parseArgs(argv);
  if (args.quick) {
    const rs = runQuick(args.dataDir, args.policies);
    for (const r of rs) {
      const p = r.points.find((x) => x.arrivedPct === 100);
      process.stdout.write(`${r.policy}: ${r.placed}/${r.arrived} placed, ${p ? (100 - p.allocationPct).toFixed(2) : '?'}% unallocated at 100%\n`);
    }
    process.stdout.write('quick simulation done; invariants held\n');
    return;
  }
  const { curves, files, summary } = await runFull(args);
  process.stdout.write(markdown(curves) + '\n' + summary + '\n' + asciiCurves(curves) + '\n' + files.map((f) => `wrote ${f}`).join('\n') + '\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`simulate: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof FlagError ? 2 : 1);
  });
}
