// `npm run replay`: replays an openb pod list (creation and run times) through sluice's
// queue code on a simulated clock, for sluice's policy and, in the same run, FIFO and
// strict priority without backfill; scores the start-time estimates; writes
// bench/results/replay-<date>.{json,md,svg}. Progress goes to stderr. Flags: REPLAY below
// (`npm run replay -- --help`).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FlagError, parseFlags, parseOrExit, type CommandSpec } from '../../cli/flags.js';
import type { CapacityNode } from '../../queue/capacity.js';
import type { QueueSpec } from '../../store/queue-directory.js';
import { loadNodes, type TraceNode } from '../simulate/trace.js';
import { GPU, probesFrom, replay, type ReplayJob, type ReplaySetup } from './engine.js';
import { POLICIES } from './policies.js';
import { figures, markdown, svg, type PolicyFigures } from './report.js';
import { loadTimedPods, stableHash, type TimedPod } from './trace.js';

export interface ReplayArgs {
  dataDir: string;
  list: string;
  fromDay: number;
  days: number;
  gpus: number;
  queues: number;
  quota: number;
  guardS: number;
  compress: number;
  durations: Array<'learned' | 'declared'>;
  outDir: string | null;
}

export const REPLAY: CommandSpec = {
  usage: 'npm run replay -- [flags]   (or node dist/bench/replay/main.js [flags])',
  about: `Replays an openb pod list (creation and run times) through sluice's queue code on a simulated
clock, for sluice's policy and, in the same run, FIFO and strict priority without backfill, and
scores the start-time estimates (ETAs). Writes bench/results/replay-<date>.{json,md,svg}.
About 30 s to 3 min on 2 cores.`,
  flags: [
    {
      name: 'data',
      value: 'DIR',
      default: '../shared/data/openb if it exists, else /work/shared/data/openb',
      help: 'trace folder, relative to the current folder',
    },
    { name: 'list', value: 'NAME', default: 'default', help: 'pod list DIR/openb_pod_list_NAME.csv' },
    { name: 'from-day', value: 'D', default: '118', help: 'start of the window, trace day (arrivals are dense from day 110)' },
    { name: 'days', value: 'N', default: '4', help: 'length of the window in days' },
    { name: 'gpus', value: 'N', default: '48', help: 'cluster size: GPU nodes taken in a stable order until N GPUs' },
    { name: 'queues', value: 'N', default: '4', help: 'queues team-a.. assigned by a stable hash of the pod name' },
    {
      name: 'quota',
      value: 'N',
      default: '30 % of the GPUs',
      help: 'guaranteed GPUs per queue (quotas add up to more than the cluster, so jobs wait on quota and on capacity)',
    },
    {
      name: 'compress',
      value: 'K',
      default: '10',
      help: "arrivals K times closer together, run times unchanged (the openb sample is light); 1 = the trace's own pace",
    },
    { name: 'guard', value: 'S', default: '600', help: 'backfill guard, seconds (the configuration default)' },
    {
      name: 'durations',
      value: 'learned|declared|both',
      default: 'both',
      help: 'what the forecast knows of run times: learned from finished jobs, or declared exactly per job',
    },
    { name: 'out', value: 'DIR', default: 'bench/results', help: 'results folder' },
    { name: 'no-write', help: 'print the tables only, write no files' },
  ],
};

const number = (v: string, what: string, min = 0): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new FlagError(`${what} must be a number >= ${min}, got ${v}`);
  return n;
};

/** Parses the replay's flags (REPLAY); throws FlagError on an unknown or bad flag. */
export function parseArgs(argv: readonly string[], cwd = process.cwd()): ReplayArgs {
  const f = parseFlags(argv, REPLAY);
  const get = (name: string): string | undefined => f.get(name);
  const local = resolve(cwd, '../shared/data/openb');
  const dataDir = resolve(cwd, get('data') ?? (existsSync(local) ? local : '/work/shared/data/openb'));
  const gpus = number(get('gpus') ?? '48', '--gpus', 1);
  const d = get('durations') ?? 'both';
  if (!['learned', 'declared', 'both'].includes(d)) throw new FlagError(`--durations must be learned, declared or both, got ${d}`);
  return {
    dataDir,
    list: get('list') ?? 'default',
    fromDay: number(get('from-day') ?? '118', '--from-day'),
    days: number(get('days') ?? '4', '--days', 0.01),
    gpus,
    queues: number(get('queues') ?? '4', '--queues', 1),
    quota: number(get('quota') ?? String(Math.ceil(gpus * 0.3)), '--quota', 1),
    guardS: number(get('guard') ?? '600', '--guard'),
    compress: number(get('compress') ?? '10', '--compress', 1),
    durations: d === 'both' ? ['learned', 'declared'] : [d as 'learned' | 'declared'],
    outDir: f.has('no-write') ? null : resolve(cwd, get('out') ?? 'bench/results'),
  };
}

const PRIORITY: Record<string, number> = { LS: 100, Guaranteed: 100, Burstable: 50, BE: 0 };
export const queueName = (i: number): string => `team-${String.fromCharCode(97 + i)}`;

/** GPU nodes in a stable order (hash of the name) until they hold `gpus` GPUs. */
export function clusterOf(nodes: readonly TraceNode[], gpus: number): CapacityNode[] {
  const out: CapacityNode[] = [];
  let total = 0;
  for (const n of [...nodes].filter((x) => x.gpus > 0).sort((a, b) => stableHash(a.name) - stableHash(b.name))) {
    if (total >= gpus) break;
    out.push({ name: n.name, product: n.model, unusable: null, labels: {}, capacity: { [GPU]: n.gpus }, free: { [GPU]: n.gpus }, bestEffort: { [GPU]: 0 } });
    total += n.gpus;
  }
  return out;
}

export function jobsOf(pods: readonly TimedPod[], queues: number, fromS: number, toS: number, compress = 1): ReplayJob[] {
  return pods
    .filter((p) => p.createdS >= fromS && p.createdS < toS)
    .map((p) => ({
      key: p.name,
      queue: queueName(stableHash(p.name) % queues),
      user: `user-${stableHash(`${p.name}/user`) % 3}`,
      kind: p.kind,
      priority: PRIORITY[p.kind] ?? 0,
      gpus: p.gpus,
      models: p.models,
      submitMs: Math.round((fromS + (p.createdS - fromS) / compress) * 1000),
      runMs: p.runS * 1000,
    }));
}

export function queuesOf(n: number, quota: number): Map<string, QueueSpec> {
  return new Map(
    Array.from({ length: n }, (_, i) => {
      const name = queueName(i);
      // The last queue weighs double: fair share shows in the waits.
      const spec: QueueSpec = {
        name,
        parent: null,
        cohort: null,
        open: true,
        weight: i === n - 1 && n > 1 ? 2 : 1,
        limits: [{ resource: GPU, model: '', guaranteed: quota, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }],
      };
      return [name, spec];
    }),
  );
}

/** Every policy: a first run for the real starts, a second with the estimates. */
export function runPolicies(setup: ReplaySetup, log: (s: string) => void = () => {}): PolicyFigures[] {
  return POLICIES.map((policy) => {
    const t0 = performance.now();
    const first = replay(setup, policy);
    const second = replay(setup, policy, probesFrom(setup, first));
    for (const [k, s] of first.starts)
      if (second.starts.get(k) !== s) throw new Error(`replay is not deterministic: ${policy} started ${k} at ${s}, then at ${second.starts.get(k)}`);
    log(`${policy}: ${setup.jobs.length} jobs, ${Math.round(performance.now() - t0)} ms (forecasts ${Math.round(second.forecastMs)} ms)`);
    return figures(setup.jobs, second);
  });
}

async function main(): Promise<void> {
  parseOrExit(process.argv.slice(2), REPLAY, 'replay'); // --help, unknown flags
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const file = join(args.dataDir, `openb_pod_list_${args.list}.csv`);
  const { pods, skipped } = loadTimedPods(file);
  const nodes = clusterOf(loadNodes(join(args.dataDir, 'openb_node_list_gpu_node.csv')), args.gpus);
  const jobs = jobsOf(pods, args.queues, args.fromDay * 86_400, (args.fromDay + args.days) * 86_400, args.compress);
  if (jobs.length === 0) throw new Error(`no GPU pods created in days ${args.fromDay}..${args.fromDay + args.days} of ${file}`);
  const queues = queuesOf(args.queues, args.quota);
  // History as Postgres would hold it: jobs of the 30 days before the window that had finished by its start.
  const fromS = args.fromDay * 86_400;
  const finishedBefore = jobsOf(
    pods.filter((p) => p.createdS + p.runS < fromS),
    args.queues,
    fromS - 30 * 86_400,
    fromS,
  );
  const gpus = nodes.reduce((a, n) => a + (n.capacity[GPU] ?? 0), 0);
  const date = new Date().toISOString().slice(0, 10);
  const results: Record<string, PolicyFigures[]> = {};
  const md: string[] = [];
  const setupLines = [
    `trace: ${file} (read in place), GPU pods created in trace days ${args.fromDay} to ${args.fromDay + args.days}: ${jobs.length} jobs (${skipped.cpuOnly} CPU-only and ${skipped.neverScheduled} never-scheduled pods of the list left out; a GPU share counts as one GPU)`,
    `cluster: ${nodes.length} openb GPU nodes, ${gpus} GPUs; ${args.queues} queues (stable hash of the pod name), ${args.quota} guaranteed GPUs each, the last one weight 2; backfill guard ${args.guardS} s`,
    `arrivals ${args.compress}x closer together than in the trace (run times unchanged), to load the cluster`,
    `duration history: ${finishedBefore.length} jobs of the 30 trace days before the window that had finished by its start, then every job that finishes in the replay`,
    'each job runs as long as it ran in production (deletion - scheduled time); priority from the openb QoS (LS, Guaranteed 100; Burstable 50; BE 0); all guaranteed QoS',
  ];
  for (const durations of args.durations) {
    const setup: ReplaySetup = { nodes, queues, jobs, backfillGuardMs: args.guardS * 1000, durations, finishedBefore };
    const figs = runPolicies(setup, (s) => process.stderr.write(`[${durations}] ${s}\n`));
    results[durations] = figs;
    const what =
      durations === 'learned'
        ? 'durations learned from finished jobs (same user, queue, kind), as sluice does without annotations'
        : 'every job declares its exact run time (sluice.io/expected-duration): the error left is the future arrivals and the policy';
    md.push(markdown(`Replay ${date}: ETAs with ${what}`, setupLines, figs));
  }
  const text = md.join('\n');
  process.stdout.write(text);
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(`replay took ${seconds.toFixed(1)} s\n`);
  if (args.outDir) {
    mkdirSync(args.outDir, { recursive: true });
    const base = join(args.outDir, `replay-${date}`);
    writeFileSync(`${base}.json`, JSON.stringify({ args: { ...args, dataDir: args.dataDir }, seconds, results }, null, 2) + '\n');
    writeFileSync(`${base}.md`, text + `\nRun time: ${seconds.toFixed(1)} s on the shared 2-core machine.\n`);
    const plot = results.learned ?? results.declared!;
    writeFileSync(
      `${base}.svg`,
      svg(
        `openb ${args.list}, trace days ${args.fromDay}-${args.fromDay + args.days} (arrivals ${args.compress}x denser): ${gpus} GPUs, ${jobs.length} jobs; hours of simulated time`,
        plot,
      ),
    );
    process.stderr.write(`wrote ${base}.{json,md,svg}\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`replay: ${(e as Error).message}\n`);
    process.exit(e instanceof FlagError ? 2 : 1);
  });
}
