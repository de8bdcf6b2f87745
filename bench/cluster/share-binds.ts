// Bind throughput of GPU-share pods beside whole-GPU pods, on the stand-in apiserver that
// bench:cluster uses (bench/apiserver/standin.ts), with sluice's informers, extender and
// binder in this process and a node agent doing what HAMi's device plugin does on Allocate
// (test/helpers/hami-agent.ts, polling every --agent-ms). Binds are sent as kube-scheduler
// sends them: up to --in-flight at once, each to the node the extender ranks best.
//
//   npm run build && node dist/bench/cluster/share-binds.js [--pods 200] [--in-flight 16] [--agent-ms 5] [--spread]
//
// Share binds to one node are serialised by HAMi's node lock until the plugin has
// allocated for the previous pod: their rate is the plugin's (here the agent's) pace.
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../apiserver/standin.js';
import { ClusterCache } from '../../cluster/cache.js';
import { ClusterWatcher } from '../../cluster/informers.js';
import { KubeBinder } from '../../scheduler/binder.js';
import { Extender } from '../../scheduler/extender.js';
import { HamiNodeLocks } from '../../scheduler/hami-bind.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { HamiAgent, hamiNode, sharePod } from '../../test/helpers/hami-agent.js';
import { parseOrExit } from '../../cli/flags.js';

const flags = parseOrExit(
  process.argv.slice(2),
  {
    usage: 'node dist/bench/cluster/share-binds.js [flags]   (after npm run build)',
    about: `Bind throughput of GPU-share pods beside whole-GPU pods on 1 and 10 nodes: the stand-in
apiserver, sluice's informers, extender and binder in this process, and a node agent that
answers as HAMi's device plugin does. About a minute on 2 cores; prints a table.`,
    flags: [
      { name: 'pods', value: 'N', default: '200', help: 'pods per run' },
      { name: 'in-flight', value: 'N', default: '16', help: 'binds sent at once, as kube-scheduler does' },
      { name: 'agent-ms', value: 'MS', default: '5', help: "the node agent's poll interval (the device plugin's pace)" },
      { name: 'spread', help: 'the spread policy instead of binpack' },
    ],
  },
  'share-binds',
);
const arg = (name: string, dflt: number): number => {
  const v = flags.get(name);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`share-binds: --${name} must be a positive integer, got ${v}\n`);
    process.exit(2);
  }
  return n;
};
const PODS = arg('pods', 200);
const IN_FLIGHT = arg('in-flight', 16);
const AGENT_MS = arg('agent-ms', 5);
const POLICY = (flags.has('spread') ? 'spread' : 'binpack') as 'spread' | 'binpack';
const quiet = createLogger('error', new Writable({ write: (_c, _e, d) => d() }));
const NAMES = { resource: 'nvidia.com/gpu', memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' };

async function run(nodes: number, share: boolean): Promise<{ perSecond: number; bound: number; ms: number }> {
  const api = await StandInApiserver.start();
  const names = Array.from({ length: nodes }, (_, i) => `n${i}`);
  // Enough room for every pod: 8 GPUs x 10 slots per node; a share pod takes 1000 MiB.
  for (const n of names) api.create('nodes', hamiNode(n, { gpus: 8, memMiB: 81920, split: 10 }));
  const kc = api.kubeConfig();
  const metrics = new Metrics({ defaultMetrics: false });
  const cache = new ClusterCache({
    resources: ['nvidia.com/gpu'],
    assumeTtlMs: 60000,
    recentPodWindow: 100,
    ...(share ? { sharing: { names: NAMES, handshakeTimeoutMs: 60000 } } : {}),
  });
  const watcher = new ClusterWatcher(kc, cache, quiet, metrics);
  watcher.start();
  while (!watcher.synced()) await new Promise((r) => setTimeout(r, 10));
  const binder = new KubeBinder(kc);
  const locks = new HamiNodeLocks({ api: binder, lockExpireMs: 300000, lockWaitMs: 30000, peekLock: (n) => cache.hamiLock(n) });
  cache.onChange((c) => c.kind === 'node' && locks.nodeChanged(c.name));
  const ext = new Extender({ cache, binder, defaultPolicy: POLICY, log: quiet, metrics, ...(share ? { shares: { locks, api: binder } } : {}) });
  const agent = new HamiAgent(kc);
  const stopAgent = share ? agent.run(names, AGENT_MS) : async () => undefined;
  const pods: V1Pod[] = [];
  for (let i = 0; i < PODS; i++) {
    const p = share ? sharePod(`p${i}`, { memMiB: 1000, cores: 1 }) : sharePod(`p${i}`);
    pods.push(api.create<V1Pod>('pods', p));
  }
  while (!pods.every((p) => cache.pod(p.metadata!.uid!))) await new Promise((r) => setTimeout(r, 10));
  let next = 0;
  let bound = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < pods.length) {
      const p = pods[next++]!;
      const passed = (await ext.filter({ Pod: p, NodeNames: names })).NodeNames ?? [];
      if (passed.length === 0) continue;
      const scores = await ext.prioritize({ Pod: p, NodeNames: passed });
      const best = scores.reduce((a, b) => (b.Score > a.Score ? b : a)).Host;
      const r = await ext.bind({ PodName: p.metadata!.name!, PodNamespace: 'team-a', PodUID: p.metadata!.uid!, Node: best });
      if (r.Error === '') bound++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const ms = performance.now() - t0;
  await stopAgent();
  await watcher.stop();
  await api.close();
  return { perSecond: (bound / ms) * 1000, bound, ms };
}

const rows: string[] = [];
for (const nodes of [1, 10]) {
  for (const share of [false, true]) {
    const r = await run(nodes, share);
    rows.push(
      `${share ? 'share (1000 MiB)' : 'whole GPU      '}  ${String(nodes).padStart(2)} node(s)  ${r.bound}/${PODS} bound in ${Math.round(r.ms)} ms  ${r.perSecond.toFixed(1)} binds/s`,
    );
    console.log(rows[rows.length - 1]);
  }
}
console.log(`pods ${PODS}, in flight ${IN_FLIGHT}, agent poll ${AGENT_MS} ms, policy ${POLICY}`);
