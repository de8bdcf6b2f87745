// `npm run bench`: latency and throughput of sluice's real server (production build, child
// process, serving a synthetic cluster snapshot) driven the way kube-scheduler drives an
// extender, against a minimal fastify baseline in the same run. Writes
// bench/results/<date>.{json,md,svg}. Progress on stderr.
//
//   --sizes 100,1000,5000   cluster sizes (nodes); pods placed = nodes x --pods-per-node
//   --pods-per-node 20      (5,000 nodes -> 100,000 pods, the RSS target's size)
//   --seconds 5             time limit of each measured phase
//   --out DIR               results folder (default bench/results)
//   --profile DIR           run sluice under node --cpu-prof, profiles into DIR
//   --only sluice|baseline  run one target only (profiling)
//   --phases cycle,admission,bind-cycle  run only these phases (profiling)
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, closedLoop, procSample, RssWatch, startChild, stats, stop, type LatencyStats } from './driver.js';
import { markdown, svg, type BenchResult, type PhaseResult, type TargetRun } from './report.js';
import type { V1Pod } from '@kubernetes/client-node';
import { freeGpuCount, gpuPod, nodeNamesForCycle, pendingPods, syntheticCluster } from './synthetic.js';
import { parseOrExit, type CommandSpec } from '../../cli/flags.js';

interface Args {
  sizes: number[];
  podsPerNode: number;
  seconds: number;
  outDir: string;
  repo: string;
  profileDir: string | null;
  only: string | null;
  phases: string[];
}

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

export const LATENCY: CommandSpec = {
  usage: 'npm run bench:latency -- [flags]   (node dist/bench/latency/main.js; npm run bench runs it, then bench:path)',
  about: `Latency and throughput of sluice's production build serving a synthetic cluster snapshot,
driven as kube-scheduler drives an extender, against a minimal fastify baseline in the same run.
Writes bench/results/<date>.{json,md,svg}.`,
  flags: [
    { name: 'sizes', value: 'N,N', default: '100,1000,5000', help: 'cluster sizes (nodes); pods placed = nodes x --pods-per-node' },
    { name: 'pods-per-node', value: 'N', default: '20', help: 'pods per node (5,000 nodes -> 100,000 pods)' },
    { name: 'seconds', value: 'N', default: '5', help: 'time limit of each measured phase' },
    { name: 'out', value: 'DIR', default: 'bench/results', help: 'results folder' },
    { name: 'profile', value: 'DIR', help: 'run sluice under node --cpu-prof, profiles into DIR' },
    { name: 'only', value: 'sluice|baseline', help: 'run one target only (profiling)' },
    { name: 'phases', value: 'a,b', default: 'cycle,admission,bind-cycle', help: 'run only these phases (profiling)' },
  ],
};

function parseArgs(argv: readonly string[]): Args {
  const f = parseOrExit(argv, LATENCY, 'bench:latency');
  const get = (n: string): string | undefined => f.get(n);
  return {
    sizes: (get('sizes') ?? '100,1000,5000').split(',').map(Number),
    podsPerNode: Number(get('pods-per-node') ?? 20),
    seconds: Number(get('seconds') ?? 5),
    outDir: resolve(process.cwd(), get('out') ?? 'bench/results'),
    repo: repoRoot,
    profileDir: get('profile') ? resolve(process.cwd(), get('profile')!) : null,
    only: get('only') ?? null,
    phases: (get('phases') ?? 'cycle,admission,bind-cycle').split(','),
  };
}

const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

const configFile = join(tmpdir(), `sluice-bench-${process.pid}.yaml`);
function noStoreConfig(): string {
  writeFileSync(configFile, "store:\n  url: ''\n");
  return configFile;
}

/** The pod the n-th bind of the concurrency-c bind phase places. */
const bindPod = (c: number, n: number): V1Pod =>
  gpuPod(`bind-${c}-${n}`, `b1nd0000-0000-4000-80${String(c).padStart(2, '0')}-${String(n).padStart(12, '0')}`, 1);
const bindsPerPhase = (freeGpus: number): number => Math.min(1000, Math.floor(freeGpus / 3));

/** The phases of one target, as steps to run in order (interleaved with the other
 * target's, so that both see the same background load); results land in `out`. */
function phasesFor(
  target: string,
  url: string,
  pid: number,
  nodes: number,
  freeGpus: number,
  args: Args,
  admission: Buffer,
): { out: PhaseResult[]; steps: (() => Promise<void>)[] } {
  const out: PhaseResult[] = [];
  const steps: (() => Promise<void>)[] = [];
  const maxMs = args.seconds * 1000;
  // 64 pending pods, each with the node window kube-scheduler would send on that cycle.
  const pods = pendingPods(64);
  const filterBodies = pods.map((Pod, k) => json({ Pod, NodeNames: nodeNamesForCycle(nodes, k), Nodes: null }));
  const prioritizeBodies = new Map<number, Buffer>();
  const phase = async (
    name: PhaseResult['phase'],
    c: number,
    count: number,
    step: (cl: Client, lat: Map<string, number[]>, i: number) => Promise<void>,
    warmup = 200,
  ): Promise<void> => {
    if (!args.phases.includes(name)) return;
    const cl = new Client(url, c);
    const lat = new Map<string, number[]>();
    // Warm-up: JIT, sockets, caches; not recorded.
    if (warmup > 0) await closedLoop(c, warmup, maxMs, (i) => step(cl, new Map(), i));
    const before = procSample(pid);
    const { done, ms } = await closedLoop(c, count, maxMs, (i) => step(cl, lat, i));
    const after = procSample(pid);
    cl.close();
    const verbs: Record<string, LatencyStats> = {};
    for (const [v, xs] of lat) if (v !== 'errors') verbs[v] = stats(xs);
    out.push({
      phase: name,
      concurrency: c,
      done,
      seconds: ms / 1000,
      perSecond: done / (ms / 1000),
      cpuPct: before && after ? (100 * (after.cpuSeconds - before.cpuSeconds)) / (ms / 1000) : null,
      errors: lat.get('errors')?.length ?? 0,
      verbs,
    });
    log(
      `  ${target} ${name} c=${c}: ${done} in ${(ms / 1000).toFixed(1)} s (${(done / (ms / 1000)).toFixed(0)}/s)` +
        Object.entries(verbs)
          .filter(([v]) => v !== 'errors')
          .map(([v, s]) => ` ${v} p99 ${s.p99.toFixed(2)} ms`)
          .join(''),
    );
  };
  const rec = (lat: Map<string, number[]>, verb: string, ms: number): void => {
    let a = lat.get(verb);
    if (!a) lat.set(verb, (a = []));
    a.push(ms);
  };
  const cycle = async (cl: Client, lat: Map<string, number[]>, i: number): Promise<void> => {
    const k = i % filterBodies.length;
    const f = await cl.post('/scheduler/filter', filterBodies[k]!);
    rec(lat, 'filter', f.ms);
    if (f.status !== 200) return rec(lat, 'errors', 1);
    let pb = prioritizeBodies.get(k);
    if (!pb) {
      const passed = (JSON.parse(f.body) as { NodeNames?: string[] }).NodeNames ?? [];
      prioritizeBodies.set(k, (pb = json({ Pod: pods[k], NodeNames: passed, Nodes: null })));
    }
    const p = await cl.post('/scheduler/prioritize', pb);
    rec(lat, 'prioritize', p.ms);
    rec(lat, 'filter+prioritize', f.ms + p.ms);
    if (p.status !== 200) rec(lat, 'errors', 1);
  };
  for (const c of [1, 16]) {
    steps.push(() => {
      prioritizeBodies.clear();
      return phase('cycle', c, 1_000_000, cycle);
    });
    steps.push(() =>
      phase('admission', c, 1_000_000, async (cl, lat) => {
        const r = await cl.post('/webhooks/mutate', admission);
        rec(lat, 'admission', r.ms);
        if (r.status !== 200 || !r.body.includes('"allowed"')) rec(lat, 'errors', 1);
      }),
    );
  }
  // Full cycles that bind: each bind takes a GPU for good (the snapshot has no deletes),
  // so each phase binds at most a third of the free GPUs, without warm-up.
  let bindSeq = 0;
  for (const c of [1, 16]) {
    steps.push(() =>
      phase(
        'bind-cycle',
        c,
        bindsPerPhase(freeGpus),
        async (cl, lat, i) => {
          const n = bindSeq++;
          const Pod = bindPod(c, n);
          const f = await cl.post('/scheduler/filter', json({ Pod, NodeNames: nodeNamesForCycle(nodes, i), Nodes: null }));
          rec(lat, 'filter', f.ms);
          const passed = (JSON.parse(f.body) as { NodeNames?: string[] }).NodeNames ?? [];
          if (passed.length === 0) return rec(lat, 'errors', 1);
          const p = await cl.post('/scheduler/prioritize', json({ Pod, NodeNames: passed, Nodes: null }));
          rec(lat, 'prioritize', p.ms);
          const scores = JSON.parse(p.body) as { Host: string; Score: number }[];
          const best = scores.reduce((a, b) => (b.Score > a.Score ? b : a), scores[0]!);
          const b = await cl.post('/scheduler/bind', json({ PodName: Pod.metadata!.name, PodNamespace: 'team-a', PodUID: Pod.metadata!.uid, Node: best.Host }));
          rec(lat, 'bind', b.ms);
          if (b.status !== 200 || (JSON.parse(b.body) as { Error?: string }).Error) rec(lat, 'errors', 1);
        },
        0,
      ),
    );
  }
  return { out, steps };
}

function admissionBody(repo: string): Buffer {
  const fixture = join(repo, '../shared/fixtures/admission/gpu-pod.json');
  if (existsSync(fixture)) return readFileSync(fixture);
  return json({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'bench',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team-a',
      operation: 'CREATE',
      userInfo: { username: 'bench' },
      object: gpuPod('adm', 'adm', 2),
      dryRun: false,
    },
  });
}

interface Live {
  target: TargetRun['target'];
  child: ChildProcess;
  startupMs: number;
  rssIdleMB: number | null;
  watch: RssWatch;
  out: PhaseResult[];
  steps: (() => Promise<void>)[];
}

async function startTarget(target: TargetRun['target'], snapshot: string, nodes: number, freeGpus: number, args: Args, admission: Buffer): Promise<Live> {
  const cmd =
    target === 'sluice'
      ? [
          ...(args.profileDir ? ['--cpu-prof', '--cpu-prof-dir', args.profileDir] : []),
          join(args.repo, 'dist/bin/sluice.js'),
          'serve',
          '--config',
          noStoreConfig(),
          '--cluster-snapshot',
          snapshot,
          '--https-host',
          '127.0.0.1',
          '--https-port',
          '0',
          '--http-host',
          '127.0.0.1',
          '--http-port',
          '0',
          '--log-level',
          'info',
        ]
      : [join(args.repo, 'dist/bench/baseline-server.js')];
  // No Postgres store for sluice (store.url '' in a config file: an empty env variable
  // counts as unset): the bench measures the request path, and must not write audit
  // records into whatever database the defaults point at.
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: '' };
  delete env.SLUICE_STORE_URL;
  const s = await startChild(cmd, target === 'sluice' ? 'sluice is serving' : 'baseline is serving', env);
  const pid = s.child.pid!;
  const idle = procSample(pid);
  log(` ${target} serving at ${s.url} after ${(s.startupMs / 1000).toFixed(1)} s, RSS ${idle?.rssMB.toFixed(0)} MB`);
  const { out, steps } = phasesFor(target, s.url, pid, nodes, freeGpus, args, admission);
  const watch = new RssWatch(pid);
  watch.peakMB = idle?.rssMB ?? 0;
  return { target, child: s.child, startupMs: s.startupMs, rssIdleMB: idle?.rssMB ?? null, watch, out, steps };
}

/** Runs both targets phase by phase, alternating which goes first. */
async function runInterleaved(lives: Live[]): Promise<TargetRun[]> {
  try {
    const n = Math.max(...lives.map((l) => l.steps.length));
    for (let i = 0; i < n; i++) {
      const order = i % 2 === 0 ? lives : [...lives].reverse();
      for (const l of order) await l.steps[i]?.();
    }
  } finally {
    for (const l of lives) {
      l.watch.stop();
      await stop(l.child);
    }
  }
  return lives.map((l) => ({ target: l.target, startupMs: l.startupMs, rssIdleMB: l.rssIdleMB, rssPeakMB: l.watch.peakMB, phases: l.out }));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(join(args.repo, 'dist/bin/sluice.js'))) throw new Error('no production build: run npm run build first');
  const admission = admissionBody(args.repo);
  const result: BenchResult = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, loadAvgStart: loadavg()[0] ?? 0, loadAvgEnd: 0 },
    sizes: [],
  };
  for (const n of args.sizes) {
    const pods = n * args.podsPerNode;
    log(`cluster of ${n} nodes, ${pods} placed pods`);
    const file = join(tmpdir(), `sluice-bench-${process.pid}-${n}.json`);
    const cluster = syntheticCluster(n, pods);
    const freeGpus = freeGpuCount(cluster);
    // The pods the bind phases bind wait in the snapshot, as the pod informer would show
    // them: a bind counts the pod sluice's cache holds, never one from a filter body.
    for (const c of [1, 16]) for (let n = 0; n < 2 * bindsPerPhase(freeGpus); n++) cluster.pods.push(bindPod(c, n));
    writeFileSync(file, JSON.stringify(cluster));
    try {
      const skip = (t: TargetRun['target']): TargetRun => ({ target: t, startupMs: 0, rssIdleMB: null, rssPeakMB: 0, phases: [] });
      const targets = (['baseline', 'sluice'] as const).filter((t) => !args.only || args.only === t);
      const lives: Live[] = [];
      try {
        for (const t of targets) lives.push(await startTarget(t, file, n, freeGpus, args, admission));
      } catch (e) {
        for (const l of lives) await stop(l.child);
        throw e;
      }
      const runs = await runInterleaved(lives);
      const of = (t: TargetRun['target']): TargetRun => runs.find((r) => r.target === t) ?? skip(t);
      result.sizes.push({ nodes: n, pods, sluice: of('sluice'), baseline: of('baseline') });
    } finally {
      rmSync(file, { force: true });
    }
  }
  rmSync(configFile, { force: true });
  result.machine.loadAvgEnd = loadavg()[0] ?? 0;
  const date = result.date.slice(0, 10);
  mkdirSync(args.outDir, { recursive: true });
  const base = join(args.outDir, date);
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 1) + '\n');
  const md = markdown(result);
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, svg(result));
  process.stdout.write(md + `\nwrote ${base}.json, ${base}.md, ${base}.svg\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
