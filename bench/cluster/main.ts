// Cluster-path benchmark (part of `npm run bench`; alone: `npm run bench:path`): what sluice
// costs where a real kube-scheduler uses it, without a cluster. An in-process stand-in
// apiserver (bench/apiserver/standin.ts: paginated lists, watches from a resourceVersion
// with bookmarks, pods/binding, status updates) holds nodes and pods shaped as a real
// apiserver serves them (bench/cluster/shapes.ts). sluice runs as a child process (its
// production build) against it with its live informers, leader election and queue manager;
// the driver acts as kube-scheduler and the kubelets:
//   create pod -> filter (the feasible-node window kube-scheduler would send) ->
//   prioritize -> bind (async, up to 16 in flight) -> the kubelet reports ContainerCreating,
//   then Running (each a watch event sluice decodes).
// The same run against the baseline extender (bench/baseline-server.ts, binding through
// the same stand-in) gives the ratio. sluice's CPU is read from /proc (user + system), so
// it is CPU per scheduled pod whatever else loads the machine.
//
// A second phase measures memory: sluice lists and watches 5,000 nodes and 100,000 pods
// through its informers (500 per page, as client-go pages), then schedules more pods; RSS
// (peak and settled) and V8 heap (from its /metrics).
//
//   --nodes 1000 --pods 2000       schedule phase size
//   --rounds 2                     schedule rounds per target (alternating)
//   --filter-best 1                sluice's scheduler.filterBest (1 as the manifests ship it;
//                                  0 answers every fitting node, the config's default)
//   --mem-nodes 5000 --mem-pods 100000   memory phase size (--mem-pods 0 skips it)
//   --dist DIR                     the sluice build to run (default: this repo's dist; an
//                                  older build gives before/after figures)
//   --profile DIR                  run sluice under node --cpu-prof (schedule phase)
//   --out DIR                      results (default bench/results); file cluster-path-<date>
//   --tag NAME                     suffix of the results file
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../apiserver/standin.js';
import { Client, procSample, RssWatch, startChild, startSluice, stop, type Started } from '../latency/driver.js';
import { feasibleNodesToFind, gpuPod, syntheticCluster } from '../latency/synthetic.js';
import { creating, livePod, running } from './shapes.js';
import { parseOrExit, type CommandSpec } from '../../cli/flags.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Args {
  nodes: number;
  pods: number;
  rounds: number;
  filterBest: number;
  memNodes: number;
  memPods: number;
  dist: string;
  profileDir: string | null;
  outDir: string;
  tag: string;
  only: string | null;
}

export const CLUSTER_PATH: CommandSpec = {
  usage: 'npm run bench:path -- [flags]   (node --max-old-space-size=12000 dist/bench/cluster/main.js)',
  about: `What sluice costs where a real kube-scheduler uses it, without a cluster: sluice (production
build) against an in-process stand-in apiserver, with live informers, leader election and the
queue manager; the driver acts as kube-scheduler and the kubelets. Then a memory phase.
Writes bench/results/cluster-path-<date>.{json,md}.`,
  flags: [
    { name: 'nodes', value: 'N', default: '1000', help: 'schedule phase: nodes' },
    { name: 'pods', value: 'N', default: '2000', help: 'schedule phase: pods' },
    { name: 'rounds', value: 'N', default: '2', help: 'schedule rounds per target (alternating)' },
    { name: 'filter-best', value: 'K', default: '1', help: "sluice's scheduler.filterBest (1 as the manifests ship it)" },
    { name: 'mem-nodes', value: 'N', default: '5000', help: 'memory phase: nodes' },
    { name: 'mem-pods', value: 'N', default: '100000', help: 'memory phase: pods (0 skips the phase)' },
    { name: 'dist', value: 'DIR', default: "this repo's dist", help: 'the sluice build to run (an older build gives before/after figures)' },
    { name: 'profile', value: 'DIR', help: 'run sluice under node --cpu-prof (schedule phase)' },
    { name: 'out', value: 'DIR', default: 'bench/results', help: 'results folder' },
    { name: 'tag', value: 'NAME', help: 'suffix of the results file' },
    { name: 'only', value: 'sluice|baseline', help: 'run one target only' },
  ],
};

function parseArgs(argv: readonly string[]): Args {
  const f = parseOrExit(argv, CLUSTER_PATH, 'bench:path');
  const get = (n: string): string | undefined => f.get(n);
  return {
    nodes: Number(get('nodes') ?? 1000),
    pods: Number(get('pods') ?? 2000),
    rounds: Number(get('rounds') ?? 2),
    filterBest: Number(get('filter-best') ?? 1),
    memNodes: Number(get('mem-nodes') ?? 5000),
    memPods: Number(get('mem-pods') ?? 100000),
    dist: resolve(process.cwd(), get('dist') ?? join(repoRoot, 'dist')),
    profileDir: get('profile') ? resolve(process.cwd(), get('profile')!) : null,
    outDir: resolve(process.cwd(), get('out') ?? 'bench/results'),
    tag: get('tag') ?? '',
    only: get('only') ?? null,
  };
}

type Target = 'sluice' | 'baseline';

export interface ScheduleResult {
  target: Target;
  nodes: number;
  backgroundPods: number;
  pods: number;
  bound: number;
  refused: number;
  seconds: number;
  podsPerSecond: number;
  cpuMsPerPod: number;
  idleCpuPercent: number;
  rssPeakMB: number;
}

export interface MemoryResult {
  dist: string;
  nodes: number;
  pods: number;
  syncSeconds: number;
  rssPeakMB: number;
  rssSettledMB: number;
  heapUsedMB: number;
  schedule: ScheduleResult;
}

/** A stand-in holding `nodes` nodes and `background` pods already running, history compacted. */
async function cluster(nodes: number, background: number): Promise<{ api: StandInApiserver; free: number[]; names: string[] }> {
  const api = await StandInApiserver.start();
  const c = syntheticCluster(nodes, background);
  for (const n of c.nodes) api.create('nodes', n);
  c.pods.forEach((p, i) => api.create('pods', livePod(p, i)));
  api.compact(); // as etcd would have long since
  const free = c.nodes.map((n) => Number(n.status?.allocatable?.['nvidia.com/gpu'] ?? 0));
  for (const p of c.pods) {
    const i = c.nodes.findIndex((n) => n.metadata?.name === p.spec?.nodeName);
    free[i]! -= Number(p.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu'] ?? 0);
  }
  return { api, free, names: c.nodes.map((n) => n.metadata!.name!) };
}

function sluiceConfig(kubeconfig: string, filterBest: number): string {
  const file = join(tmpdir(), `sluice-path-${process.pid}.yaml`);
  // No Postgres store; the queue manager runs (it consumes every pod event) on its own Redis prefix.
  writeFileSync(
    file,
    `kubeconfig: ${kubeconfig}\nstore:\n  url: ''\nscheduler:\n  filterBest: ${filterBest}\nqueue:\n  redisPrefix: sluice-bench-path-${process.pid}\n`,
  );
  return file;
}

async function startTarget(target: Target, api: StandInApiserver, args: Args): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: '' };
  delete env.SLUICE_STORE_URL;
  if (target === 'baseline') return startChild([join(repoRoot, 'dist/bench/baseline-server.js'), '0', api.url], 'baseline is serving', env);
  const kubeconfig = join(tmpdir(), `sluice-path-${process.pid}.kubeconfig`);
  writeFileSync(kubeconfig, api.kubeConfig().exportConfig());
  const prof = args.profileDir ? ['--cpu-prof', '--cpu-prof-dir', args.profileDir] : [];
  const s = await startSluice({ dist: args.dist, config: sluiceConfig(kubeconfig, args.filterBest), env, nodeArgs: prof });
  const ops = String(s.line.ops ?? '').replace('0.0.0.0', '127.0.0.1');
  for (let i = 0; ; i++) {
    const r = await fetch(`${ops}/readyz`).catch(() => null);
    if (r?.status === 200) break;
    if (i > 2400) throw new Error('sluice did not become ready in 10 minutes');
    await sleep(250);
  }
  return s;
}

/**
 * Schedules `pods` one-GPU pods as kube-scheduler would: one scheduling cycle at a time
 * (filter, prioritize, pick the best score), binds in the background; the kubelet's two
 * status updates follow each bind.
 */
async function schedule(
  target: Target,
  s: Started,
  api: StandInApiserver,
  free: number[],
  names: string[],
  pods: number,
  tag: string,
): Promise<Omit<ScheduleResult, 'backgroundPods'>> {
  const pid = s.child.pid!;
  const client = new Client(s.url, 17);
  const rss = new RssWatch(pid, 100);
  // Idle CPU (leader lease, timers) over 2 s, to tell it apart from the per-pod cost.
  const i0 = procSample(pid)!;
  await sleep(2000);
  const i1 = procSample(pid)!;
  const idlePerSec = (i1.cpuSeconds - i0.cpuSeconds) / 2;

  const window = feasibleNodesToFind(names.length);
  let cursor = 0;
  let inFlight = 0;
  let bound = 0;
  let refused = 0;
  const kubelet: Promise<void>[] = [];
  const waiters: Array<() => void> = [];
  const c0 = procSample(pid)!;
  const t0 = performance.now();
  for (let k = 0; k < pods; k++) {
    const pod = api.create<V1Pod>('pods', livePod(gpuPod(`${tag}-${k}`, `5c4ed000-0000-4000-8000-${String(k).padStart(12, '0')}`, 1), k, Date.now()));
    // kube-scheduler's own filters (NodeResourcesFit counts extended resources) leave the
    // nodes with a free GPU; it stops after numFeasibleNodesToFind and resumes there next cycle.
    const candidates: string[] = [];
    for (let scanned = 0; scanned < names.length && candidates.length < window; scanned++) {
      const i = (cursor + scanned) % names.length;
      if (free[i]! > 0) candidates.push(names[i]!);
      if (candidates.length === window) cursor = (i + 1) % names.length;
    }
    const f = await client.post('/scheduler/filter', Buffer.from(JSON.stringify({ Pod: pod, NodeNames: candidates, Nodes: null })));
    const passed = (JSON.parse(f.body) as { NodeNames?: string[] | null }).NodeNames ?? [];
    if (passed.length === 0) {
      refused++;
      continue;
    }
    const p = await client.post('/scheduler/prioritize', Buffer.from(JSON.stringify({ Pod: pod, NodeNames: passed, Nodes: null })));
    const scores = JSON.parse(p.body) as Array<{ Host: string; Score: number }>;
    let best = scores[0]!;
    for (const x of scores) if (x.Score > best.Score) best = x;
    const ni = names.indexOf(best.Host);
    free[ni]!--; // kube-scheduler's assume
    while (inFlight >= 16) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
    const name = pod.metadata!.name!;
    void client
      .post('/scheduler/bind', Buffer.from(JSON.stringify({ PodName: name, PodNamespace: 'team-a', PodUID: pod.metadata!.uid, Node: best.Host })))
      .then((r) => {
        const err = (JSON.parse(r.body) as { Error?: string }).Error;
        if (r.status !== 200 || err) {
          refused++;
          free[ni]!++;
          return;
        }
        bound++;
        // The kubelet: containers being created, then running.
        const at = Date.now();
        kubelet.push(
          sleep(20).then(async () => {
            const cur = api.get<V1Pod>('pods', 'team-a', name)!;
            api.update('pods', { ...cur, status: creating(best.Host, at) });
            await sleep(100);
            const now = api.get<V1Pod>('pods', 'team-a', name)!;
            api.update('pods', { ...now, status: running(best.Host, at, k) });
          }),
        );
      })
      .finally(() => {
        inFlight--;
        waiters.shift()?.();
      });
  }
  while (inFlight > 0) await new Promise<void>((r) => waiters.push(r));
  await Promise.all(kubelet);
  const seconds = (performance.now() - t0) / 1000;
  await sleep(1000); // the last watch events reach sluice
  const c1 = procSample(pid)!;
  rss.stop();
  client.close();
  const busy = c1.cpuSeconds - c0.cpuSeconds - idlePerSec * ((performance.now() - t0) / 1000);
  return {
    target,
    nodes: names.length,
    pods,
    bound,
    refused,
    seconds: round(seconds, 2),
    podsPerSecond: round(pods / seconds, 1),
    cpuMsPerPod: round((Math.max(0, busy) * 1000) / Math.max(1, bound), 3),
    idleCpuPercent: round(idlePerSec * 100, 2),
    rssPeakMB: Math.round(rss.peakMB),
  };
}

async function scheduleRun(target: Target, args: Args, round: number): Promise<ScheduleResult> {
  const { api, free, names } = await cluster(args.nodes, 0);
  try {
    const s = await startTarget(target, api, args);
    try {
      const r = await schedule(target, s, api, free, names, args.pods, `r${round}`);
      log(`${target} round ${round}: ${r.bound} bound in ${r.seconds} s (${r.podsPerSecond}/s), ${r.cpuMsPerPod} ms CPU per pod, RSS peak ${r.rssPeakMB} MB`);
      return { ...r, backgroundPods: 0 };
    } finally {
      await stop(s.child);
    }
  } finally {
    await api.close();
  }
}

async function heapUsedMB(ops: string): Promise<number> {
  const text = await (await fetch(`${ops}/metrics`)).text();
  const m = /^sluice_nodejs_heap_size_used_bytes (\S+)/m.exec(text);
  return m ? Math.round(Number(m[1]) / 1048576) : NaN;
}

async function memoryRun(args: Args): Promise<MemoryResult> {
  log(`memory: loading ${args.memNodes} nodes and ${args.memPods} pods into the stand-in`);
  const { api, free, names } = await cluster(args.memNodes, args.memPods);
  try {
    log('memory: starting sluice (it lists and watches them)');
    const t0 = performance.now();
    const s = await startTarget('sluice', api, args);
    const syncSeconds = (performance.now() - t0) / 1000;
    const rss = new RssWatch(s.child.pid!, 100);
    try {
      await sleep(5000);
      const settled = procSample(s.child.pid!)!.rssMB;
      const ops = String(s.line.ops ?? '').replace('0.0.0.0', '127.0.0.1');
      const heap = await heapUsedMB(ops);
      const sched = await schedule('sluice', s, api, free, names, 1000, 'mem');
      rss.stop();
      const peak = Math.max(rss.peakMB, sched.rssPeakMB);
      log(
        `memory: synced in ${syncSeconds.toFixed(1)} s, RSS ${Math.round(settled)} MB settled, ${Math.round(peak)} MB peak, heap ${heap} MB; then ${sched.cpuMsPerPod} ms CPU per scheduled pod`,
      );
      return {
        dist: args.dist,
        nodes: args.memNodes,
        pods: args.memPods,
        syncSeconds: round(syncSeconds, 1),
        rssPeakMB: Math.round(peak),
        rssSettledMB: Math.round(settled),
        heapUsedMB: heap,
        schedule: { ...sched, backgroundPods: args.memPods },
      };
    } finally {
      await stop(s.child);
    }
  } finally {
    await api.close();
  }
}

const round = (v: number, d: number): number => Math.round(v * 10 ** d) / 10 ** d;

function markdown(date: string, args: Args, runs: ScheduleResult[], mem: MemoryResult | null, load: [number, number]): string {
  const by = (t: Target) => runs.filter((r) => r.target === t);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const sl = by('sluice');
  const bl = by('baseline');
  const cpuS = mean(sl.map((r) => r.cpuMsPerPod));
  const cpuB = mean(bl.map((r) => r.cpuMsPerPod));
  const rateS = mean(sl.map((r) => r.podsPerSecond));
  const rateB = mean(bl.map((r) => r.podsPerSecond));
  const lines = [
    `### Cluster-path benchmark ${date}`,
    '',
    `${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'}), node ${process.version}; stand-in apiserver, driver and extender on the same machine; 1-minute load average ${load[0].toFixed(1)} at the start, ${load[1].toFixed(1)} at the end. ${args.nodes} nodes, ${args.pods} one-GPU pods per round; sluice with scheduler.filterBest ${args.filterBest}; sluice build ${args.dist === join(repoRoot, 'dist') ? 'of this tree' : args.dist}.`,
    '',
    '| target | run | bound | refused | seconds | pods/s (driver) | CPU ms per scheduled pod | idle CPU % | RSS peak MB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map(
      (r, i) =>
        `| ${r.target} | ${i} | ${r.bound} | ${r.refused} | ${r.seconds} | ${r.podsPerSecond} | ${r.cpuMsPerPod} | ${r.idleCpuPercent} | ${r.rssPeakMB} |`,
    ),
    '',
    `Mean CPU per scheduled pod: sluice ${cpuS.toFixed(2)} ms, baseline ${cpuB.toFixed(2)} ms (goal: sluice <= 2 ms). Driver pods/s: sluice ${rateS.toFixed(1)}, baseline ${rateB.toFixed(1)} (ratio ${(rateS / rateB).toFixed(2)}).`,
  ];
  if (mem) {
    lines.push(
      '',
      `Memory through the informers: ${mem.nodes} nodes, ${mem.pods} pods listed (500 per page) and watched: synced in ${mem.syncSeconds} s; RSS ${mem.rssSettledMB} MB settled, ${mem.rssPeakMB} MB peak (goal < 300 MB), V8 heap used ${mem.heapUsedMB} MB. Then ${mem.schedule.bound} pods scheduled at that size: ${mem.schedule.cpuMsPerPod} ms CPU per scheduled pod.`,
    );
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(join(args.dist, 'bin/sluice.js'))) throw new Error(`no sluice build in ${args.dist} (npm run build)`);
  if (args.profileDir) mkdirSync(args.profileDir, { recursive: true });
  const load0 = loadavg()[0]!;
  const runs: ScheduleResult[] = [];
  if (args.only !== 'memory') {
    for (let r = 0; r < args.rounds; r++) {
      // Alternate which target goes first, so both see the same background load.
      const order: Target[] = r % 2 === 0 ? ['baseline', 'sluice'] : ['sluice', 'baseline'];
      for (const t of order) if (!args.only || args.only === t) runs.push(await scheduleRun(t, args, r));
    }
  }
  const mem = args.memPods > 0 && (!args.only || args.only === 'memory') ? await memoryRun(args) : null;
  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(args.outDir, { recursive: true });
  let base = join(args.outDir, `cluster-path-${date}${args.tag ? `-${args.tag}` : ''}`);
  for (let i = 2; existsSync(`${base}.json`); i++) base = join(args.outDir, `cluster-path-${date}${args.tag ? `-${args.tag}` : ''}-${i}`);
  const md = markdown(date, args, runs, mem, [load0, loadavg()[0]!]);
  writeFileSync(`${base}.json`, JSON.stringify({ date, args, runs, memory: mem }, null, 2) + '\n');
  writeFileSync(`${base}.md`, md);
  process.stdout.write(md);
  log(`results in ${base}.{json,md}`);
}

await main();
process.exit(0);
