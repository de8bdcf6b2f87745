// `npm run bench:cluster` (opt-in): a real kube-scheduler against a real cluster, three
// variants in one run: no extender, the no-op extender that binds (bench/baseline-server.ts)
// and sluice as filter+prioritize+bind extender; prints pods/s of each and the ratios, and
// the extenders' CPU per scheduled pod.
//
//   KUBECONFIG=... KUBE_SCHEDULER=/path/to/kube-scheduler npm run bench:cluster -- [--nodes 1000] [--pods 2000] [--rounds 1] [--filter-best 1] [--profile DIR]
//
// Extenders are configured in kube-scheduler's own configuration, so the script starts
// its own kube-scheduler (KUBE_SCHEDULER, same minor version as the cluster; extra flags in
// KUBE_SCHEDULER_ARGS) with a generated configuration per variant, on this machine, talking
// to the cluster's apiserver with the KUBECONFIG credentials (client QPS 1000). The extenders
// run on this machine too (127.0.0.1). What it creates, and removes at the end:
//   - N fake nodes `sluice-bench-NNNNN` (8 nvidia.com/gpu each, Ready, label
//     sluice.io/bench=<run>, taint sluice.io/bench=true:NoSchedule, so nothing else lands
//     there), with their Leases in kube-node-lease renewed every 10 s so that a node
//     lifecycle controller keeps them Ready (no kubelet runs them);
//   - a namespace `sluice-bench-<run>` with the pods, which name schedulerName
//     `sluice-bench`: the cluster's own scheduler ignores them, only the script's schedules
//     them; they never run (no kubelet), and are force-deleted between variants.
// The credentials need: nodes and leases create/update/delete, namespaces create/delete,
// pods create/list/watch/delete and pods/binding create (cluster-admin does).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError, ApiTransport } from '../../cluster/api-transport.js';
import { ListWatch } from '../../cluster/list-watch.js';
import { procSample, startChild, startSluice, stop, type Started } from '../latency/driver.js';
import { parseOrExit, type CommandSpec } from '../../cli/flags.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const SCHEDULER_NAME = 'sluice-bench';
/** Processes started here (kube-scheduler, extenders), stopped on an interrupt. */
const children = new Set<ChildProcess>();
const stopping = new WeakSet<ChildProcess>();
const GPUS_PER_NODE = 8;

type Variant = 'none' | 'noop' | 'sluice';

interface Args {
  nodes: number;
  pods: number;
  rounds: number;
  filterBest: number;
  profileDir: string | null;
  variants: Variant[];
  outDir: string;
  scheduler: string;
  kubeconfig: string;
}

export const REAL_CLUSTER: CommandSpec = {
  usage: 'KUBECONFIG=... KUBE_SCHEDULER=/path/to/kube-scheduler npm run bench:cluster -- [flags]',
  about: `A real kube-scheduler against a real cluster, three variants in one run: no extender, the
no-op extender and sluice as filter+prioritize+bind extender; pods/s of each and the extenders'
CPU per scheduled pod. Creates fake nodes and a namespace in the cluster and removes them.`,
  flags: [
    { name: 'nodes', value: 'N', default: '1000', help: 'fake nodes to create (8 GPUs each)' },
    { name: 'pods', value: 'N', default: '2000', help: 'one-GPU pods per variant' },
    { name: 'rounds', value: 'N', default: '1', help: 'rounds of the variants' },
    { name: 'filter-best', value: 'K', default: '1', help: "sluice's scheduler.filterBest" },
    { name: 'variants', value: 'a,b', default: 'none,noop,sluice', help: 'which variants to run' },
    { name: 'profile', value: 'DIR', help: 'run sluice under node --cpu-prof' },
    { name: 'out', value: 'DIR', default: 'bench/results', help: 'results folder' },
  ],
  footer: `environment:
  KUBECONFIG             the cluster to run against (required)
  KUBE_SCHEDULER         a kube-scheduler binary of the cluster's minor version (required)
  KUBE_SCHEDULER_ARGS    extra kube-scheduler flags
  SLUICE_BENCH_CONFIG    a sluice config file to use instead of the generated one`,
};

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Args {
  const f = parseOrExit(argv, REAL_CLUSTER, 'bench:cluster');
  const get = (n: string): string | undefined => f.get(n);
  const kubeconfig = (env.KUBECONFIG ?? '').split(':')[0] ?? '';
  if (!kubeconfig || !existsSync(kubeconfig))
    throw new Error(
      'bench:cluster needs KUBECONFIG naming the kubeconfig of the cluster to run against (it creates fake nodes and pods there; see README "Performance")',
    );
  const scheduler = env.KUBE_SCHEDULER ?? '';
  if (!scheduler || !existsSync(scheduler))
    throw new Error(
      "bench:cluster needs KUBE_SCHEDULER: the path of a kube-scheduler binary of the cluster's minor version (it is started with a generated configuration per variant)",
    );
  const variants = (get('variants') ?? 'none,noop,sluice').split(',') as Variant[];
  for (const v of variants) if (!['none', 'noop', 'sluice'].includes(v)) throw new Error(`unknown variant ${v} (none, noop, sluice)`);
  return {
    nodes: Number(get('nodes') ?? 1000),
    pods: Number(get('pods') ?? 2000),
    rounds: Number(get('rounds') ?? 1),
    filterBest: Number(get('filter-best') ?? 1),
    profileDir: get('profile') ? resolve(process.cwd(), get('profile')!) : null,
    variants,
    outDir: resolve(process.cwd(), get('out') ?? 'bench/results'),
    scheduler,
    kubeconfig,
  };
}

const run = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const namespace = `sluice-bench-${run}`;
const nodeName = (i: number): string => `sluice-bench-${String(i).padStart(5, '0')}`;

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: readonly T[], n: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** POST that treats 409 AlreadyExists as done (a rerun after an interrupted one). */
async function create(api: ApiTransport, path: string, body: unknown): Promise<void> {
  try {
    await api.call('POST', path, { body: JSON.stringify(body), timeoutMs: 30_000 });
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 409)) throw e;
  }
}

async function createNodes(api: ApiTransport, n: number): Promise<void> {
  const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await pool(
    Array.from({ length: n }, (_, i) => i),
    32,
    (i) =>
      create(api, '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: nodeName(i),
          labels: {
            'sluice.io/bench': run,
            'kubernetes.io/hostname': nodeName(i),
            'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB',
            'nvidia.com/gpu.memory': '81920',
          },
        },
        spec: { taints: [{ key: 'sluice.io/bench', value: 'true', effect: 'NoSchedule' }] },
        status: {
          capacity: { cpu: '128', memory: '1Ti', pods: '110', 'nvidia.com/gpu': String(GPUS_PER_NODE) },
          allocatable: { cpu: '128', memory: '1Ti', pods: '110', 'nvidia.com/gpu': String(GPUS_PER_NODE) },
          conditions: [
            { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'sluice bench node (no kubelet)', lastHeartbeatTime: at, lastTransitionTime: at },
          ],
        },
      }),
  );
}

/** Renews each node's Lease every 10 s, as a kubelet would, until stopped. */
function heartbeat(api: ApiTransport, n: number): () => void {
  let stopped = false;
  const beat = async (): Promise<void> => {
    const now = new Date().toISOString().replace('Z', '000Z');
    await pool(
      Array.from({ length: n }, (_, i) => i),
      16,
      async (i) => {
        const body = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: nodeName(i), namespace: 'kube-node-lease' },
          spec: { holderIdentity: nodeName(i), leaseDurationSeconds: 40, renewTime: now },
        };
        try {
          await api.call('PUT', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${nodeName(i)}`, {
            body: JSON.stringify(body),
            timeoutMs: 10_000,
          });
        } catch (e) {
          if (e instanceof ApiError && e.code === 404)
            await create(api, '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', body).catch(() => undefined);
        }
      },
    ).catch(() => undefined);
  };
  void (async () => {
    while (!stopped) {
      await beat();
      await sleep(10_000);
    }
  })();
  return () => void (stopped = true);
}

function pod(i: number, round: number, variant: Variant): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${variant}-${round}-${i}`, namespace, labels: { app: 'sluice-bench', variant } },
    spec: {
      schedulerName: SCHEDULER_NAME,
      nodeSelector: { 'sluice.io/bench': run },
      // The apiserver's TaintNodesByCondition admission taints a new node not-ready until
      // the node lifecycle controller sees it Ready; a control plane without that
      // controller never lifts it. These pods only reach the bench nodes anyway.
      tolerations: [
        { key: 'sluice.io/bench', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' },
      ],
      containers: [
        { name: 'c', image: 'registry.k8s.io/pause:3.9', resources: { requests: { cpu: '10m', 'nvidia.com/gpu': '1' }, limits: { 'nvidia.com/gpu': '1' } } },
      ],
      terminationGracePeriodSeconds: 0,
    },
  };
}

function schedulerConfig(kubeconfig: string, extender: string | null): string {
  const lines = [
    'apiVersion: kubescheduler.config.k8s.io/v1',
    'kind: KubeSchedulerConfiguration',
    'clientConnection:',
    `  kubeconfig: ${kubeconfig}`,
    '  qps: 1000',
    '  burst: 1000',
    'leaderElection:',
    '  leaderElect: false',
    'profiles:',
    `- schedulerName: ${SCHEDULER_NAME}`,
  ];
  if (extender) {
    lines.push(
      'extenders:',
      `- urlPrefix: ${extender}/scheduler`,
      '  filterVerb: filter',
      '  prioritizeVerb: prioritize',
      '  bindVerb: bind',
      '  weight: 1',
      '  nodeCacheCapable: true',
      `  enableHTTPS: ${extender.startsWith('https:')}`,
      ...(extender.startsWith('https:') ? ['  tlsConfig:', '    insecure: true'] : []),
      '  ignorable: false',
      '  managedResources:',
      '  - name: nvidia.com/gpu',
      '    ignoredByScheduler: false',
    );
  }
  const file = join(tmpdir(), `sluice-bench-scheduler-${process.pid}-${extender ? 'ext' : 'none'}.yaml`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function startScheduler(binary: string, config: string): ChildProcess {
  const extra = (process.env.KUBE_SCHEDULER_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(binary, [`--config=${config}`, '--secure-port=0', '--v=1', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-3000)));
  child.on('exit', (code, signal) => {
    // Stopped with SIGTERM it exits 1 ("finished without leader elect"): not a failure.
    if (!stopping.has(child) && signal === null && code !== 0) log(`kube-scheduler exited with ${code}: ${tail}`);
  });
  return child;
}

async function startExtender(variant: Variant, args: Args): Promise<Started | null> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: '' };
  delete env.SLUICE_STORE_URL;
  if (variant === 'none') return null;
  if (variant === 'noop')
    return startChild([join(repoRoot, 'dist/bench/baseline-server.js'), '0', `kubeconfig:${args.kubeconfig}`], 'baseline is serving', env);
  // No Postgres store, no queue manager (no Redis needed), no leader election: the
  // extender path only. A config of your own: SLUICE_BENCH_CONFIG.
  const config = process.env.SLUICE_BENCH_CONFIG ?? join(tmpdir(), `sluice-bench-${process.pid}.yaml`);
  if (!process.env.SLUICE_BENCH_CONFIG)
    writeFileSync(
      config,
      `kubeconfig: ${args.kubeconfig}\nleaderElection: false\nstore:\n  url: ''\nscheduler:\n  filterBest: ${args.filterBest}\nqueue:\n  enabled: false\n`,
    );
  const prof = args.profileDir ? ['--cpu-prof', '--cpu-prof-dir', args.profileDir] : [];
  const s = await startSluice({ dist: join(repoRoot, 'dist'), config, env, nodeArgs: prof });
  const ops = String(s.line.ops ?? '').replace('0.0.0.0', '127.0.0.1');
  for (let i = 0; ; i++) {
    if ((await fetch(`${ops}/readyz`).catch(() => null))?.status === 200) break;
    if (i > 1200) throw new Error('sluice did not become ready in 5 minutes');
    await sleep(250);
  }
  return s;
}

interface VariantResult {
  variant: Variant;
  round: number;
  bound: number;
  podsPerSecond: number;
  extenderCpuMsPerPod: number | null;
  extenderRssPeakMB: number | null;
}

/** Force-deletes the namespace's pods and waits until none is left. */
async function clearPods(api: ApiTransport): Promise<void> {
  await api.call('DELETE', `/api/v1/namespaces/${namespace}/pods`, {
    body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0 }),
    timeoutMs: 120_000,
  });
  for (let i = 0; i < 240; i++) {
    const left = JSON.parse(await api.call('GET', `/api/v1/namespaces/${namespace}/pods?limit=1`)) as { items?: unknown[] };
    if (!left.items?.length) return;
    await sleep(500);
  }
  throw new Error(`pods of ${namespace} still there after 2 minutes`);
}

async function runVariant(variant: Variant, round: number, args: Args, api: ApiTransport, kc: KubeConfig): Promise<VariantResult> {
  // All pods first, while no scheduler serves their schedulerName: what is measured is
  // scheduling (first binding to last), not how fast this script creates pods.
  log(`${variant} round ${round}: creating ${args.pods} pods`);
  await pool(
    Array.from({ length: args.pods }, (_, i) => i),
    32,
    (i) => create(api, `/api/v1/namespaces/${namespace}/pods`, pod(i, round, variant)),
  );
  const ext = await startExtender(variant, args);
  if (ext) {
    children.add(ext.child);
    ext.child.on('exit', () => children.delete(ext.child));
  }
  // Bound pods, seen through a watch of the namespace (as the test itself, not the extender).
  const boundAt: number[] = [];
  const seen = new Set<string>();
  const watch = new ListWatch(new ApiTransport(kc, { maxSockets: 2 }), {
    path: `/api/v1/namespaces/${namespace}/pods`,
    project: (raw) => raw as { metadata?: { uid?: string }; spec?: { nodeName?: string } },
    keyOf: (p) => p.metadata?.uid ?? '',
  });
  const onPod = (p: { metadata?: { uid?: string }; spec?: { nodeName?: string } }): void => {
    const uid = p.metadata?.uid ?? '';
    if (p.spec?.nodeName && !seen.has(uid)) {
      seen.add(uid);
      boundAt.push(performance.now());
    }
  };
  watch.on('add', onPod);
  watch.on('update', onPod);
  let sched: ChildProcess | null = null;
  try {
    await watch.start();
    const c0 = ext ? procSample(ext.child.pid!) : null;
    let peak = 0;
    const rss = setInterval(() => {
      const s = ext ? procSample(ext.child.pid!) : null;
      if (s && s.rssMB > peak) peak = s.rssMB;
    }, 200);
    const t0 = performance.now();
    sched = startScheduler(args.scheduler, schedulerConfig(args.kubeconfig, ext?.url ?? null));
    while (seen.size < args.pods && performance.now() - t0 < 15 * 60_000) await sleep(100);
    if (seen.size < args.pods) log(`${variant} round ${round}: only ${seen.size} of ${args.pods} pods bound after 15 minutes`);
    await sleep(1000); // the extender's watch sees the last bindings
    clearInterval(rss);
    const c1 = ext ? procSample(ext.child.pid!) : null;
    const first = boundAt[0] ?? t0;
    const last = boundAt[boundAt.length - 1] ?? t0;
    // Steady throughput: from the first binding to the last (kube-scheduler's start-up apart).
    const rate = boundAt.length > 1 ? (boundAt.length - 1) / ((last - first) / 1000) : 0;
    const r: VariantResult = {
      variant,
      round,
      bound: seen.size,
      podsPerSecond: Math.round(rate * 10) / 10,
      extenderCpuMsPerPod: c0 && c1 ? Math.round(((c1.cpuSeconds - c0.cpuSeconds) * 1000 * 100) / Math.max(1, seen.size)) / 100 : null,
      extenderRssPeakMB: ext ? Math.round(peak) : null,
    };
    log(
      `${variant} round ${round}: ${r.bound} bound, ${r.podsPerSecond} pods/s${r.extenderCpuMsPerPod !== null ? `, extender ${r.extenderCpuMsPerPod} ms CPU per pod` : ''}`,
    );
    return r;
  } finally {
    await watch.stop();
    if (sched) {
      stopping.add(sched);
      const s = sched;
      s.kill('SIGTERM');
      await new Promise((r) => (s.exitCode !== null ? r(null) : s.once('exit', r)));
    }
    if (ext) await stop(ext.child);
    await clearPods(api);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), process.env);
  const kc = new KubeConfig();
  kc.loadFromFile(args.kubeconfig);
  const api = new ApiTransport(kc, { maxSockets: 32 });
  log(`cluster ${kc.getCurrentCluster()?.server}: run ${run}, ${args.nodes} fake nodes, ${args.pods} pods per variant`);
  const load0 = loadavg()[0]!;
  await create(api, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'sluice.io/bench': run } } });
  await createNodes(api, args.nodes);
  const stopBeat = heartbeat(api, args.nodes);
  const results: VariantResult[] = [];
  // Interrupted (Ctrl-C, timeout): stop the children and clean up before leaving.
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    log('interrupted: cleaning up');
    for (const c of children) c.kill('SIGTERM');
    void cleanUp().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const cleanUp = async (): Promise<void> => {
    stopBeat();
    log('cleaning up: namespace, nodes, leases');
    await api
      .call('DELETE', `/api/v1/namespaces/${namespace}/pods`, { body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0 }) })
      .catch(() => undefined);
    await api.call('DELETE', `/api/v1/namespaces/${namespace}`).catch(() => undefined);
    await pool(
      Array.from({ length: args.nodes }, (_, i) => i),
      32,
      async (i) => {
        await api.call('DELETE', `/api/v1/nodes/${nodeName(i)}`).catch(() => undefined);
        await api.call('DELETE', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${nodeName(i)}`).catch(() => undefined);
      },
    );
  };
  try {
    for (let round = 0; round < args.rounds; round++) {
      const order = round % 2 === 0 ? args.variants : [...args.variants].reverse();
      for (const v of order) results.push(await runVariant(v, round, args, api, kc));
    }
  } finally {
    if (!interrupted) {
      await cleanUp();
      api.close();
    }
  }
  const mean = (v: Variant, f: (r: VariantResult) => number | null): number => {
    const xs = results
      .filter((r) => r.variant === v)
      .map(f)
      .filter((x): x is number => x !== null);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  };
  const rate = (v: Variant) => mean(v, (r) => r.podsPerSecond);
  const lines = [
    `### Real kube-scheduler run ${new Date().toISOString().slice(0, 10)}`,
    '',
    `${kc.getCurrentCluster()?.server}; ${cpus().length} CPUs here, load average ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end; ${args.nodes} nodes (${GPUS_PER_NODE} GPUs each), ${args.pods} one-GPU pods per variant, client QPS 1000; sluice with ${process.env.SLUICE_BENCH_CONFIG ? `the config ${process.env.SLUICE_BENCH_CONFIG}` : `scheduler.filterBest ${args.filterBest}`}.`,
    '',
    '| variant | round | bound | pods/s | extender CPU ms per pod | extender RSS peak MB |',
    '|---|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.variant} | ${r.round} | ${r.bound} | ${r.podsPerSecond} | ${r.extenderCpuMsPerPod ?? '-'} | ${r.extenderRssPeakMB ?? '-'} |`),
    '',
    `sluice / no-op extender: ${(rate('sluice') / rate('noop')).toFixed(2)} (goal >= 0.9); sluice / no extender: ${(rate('sluice') / rate('none')).toFixed(2)} (moonshot >= 0.8); sluice CPU per scheduled pod ${mean('sluice', (r) => r.extenderCpuMsPerPod).toFixed(2)} ms (goal <= 2).`,
  ];
  const md = lines.join('\n') + '\n';
  mkdirSync(args.outDir, { recursive: true });
  let base = join(args.outDir, `cluster-real-${new Date().toISOString().slice(0, 10)}`);
  for (let i = 2; existsSync(`${base}.json`); i++) base = join(args.outDir, `cluster-real-${new Date().toISOString().slice(0, 10)}-${i}`);
  writeFileSync(`${base}.json`, JSON.stringify({ args: { ...args, kubeconfig: undefined }, results }, null, 2) + '\n');
  writeFileSync(`${base}.md`, md);
  process.stdout.write(md);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`bench:cluster: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
