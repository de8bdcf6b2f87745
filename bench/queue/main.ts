// npm run bench:queue - what the queue manager costs and how fast it reacts.
//
// 1. Gate-removal latency: `sluice serve` (live mode, real Postgres and Redis) against the
//    in-memory stand-in apiserver; a full cluster and hundreds of jobs waiting; each round a
//    running pod finishes (its status turns Succeeded, as a kubelet would report it) and the
//    time until the next waiting job's gate is gone is measured: watch delivery, debounce,
//    evaluation, the durable release through Redis, the JSON patch.
// 2. Evaluation cost: one pass (build the state from the cache, then decide) with 1,000 and
//    10,000 waiting pods on 1,000 full nodes.
// Prints a Markdown table; writes bench/results/queue-<date>.json.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { ClusterCache } from '../../cluster/cache.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { evaluate } from '../../queue/evaluate.js';
import { buildState } from '../../queue/state.js';
import { serve } from '../../server/run.js';
import { Store } from '../../store/store.js';
import type { QueueSpec } from '../../store/queue-directory.js';
import { StandInApiserver } from '../apiserver/standin.js';
import { parseOrExit } from '../../cli/flags.js';

parseOrExit(
  process.argv.slice(2),
  {
    usage: 'npm run bench:queue   (node dist/bench/queue/main.js)',
    about: `The queue manager's costs: gate-removal latency after a pod finishes (stand-in apiserver, real
Redis and Postgres) and the cost of one evaluation at 1,000 and 10,000 waiting pods.
Writes bench/results/queue-<date>.json and prints Markdown tables.`,
    flags: [],
    footer: `environment:
  BENCH_QUEUE_WAITING    jobs waiting during the latency rounds (default: 300)
  BENCH_QUEUE_ROUNDS     latency rounds (default: 100)
  DATABASE_URL           Postgres (default: postgres://postgres@127.0.0.1:5432/test)`,
  },
  'bench:queue',
);

const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const GPU = 'nvidia.com/gpu';

function node(name: string, gpus: number): V1Node {
  const alloc = { cpu: '64', memory: '256Gi', pods: '110', [GPU]: String(gpus) };
  return {
    metadata: { name, labels: { 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' } },
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: 'True' }] },
  } as V1Node;
}

function pod(name: string, o: { queue: string; gpus: number; node?: string; gated?: boolean; created?: string }): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'bench',
      uid: `uid-${name}`,
      creationTimestamp: (o.created ?? '2026-11-01T00:00:00Z') as unknown as Date,
      labels: { 'sluice.io/queue': o.queue, 'sluice.io/qos': 'guaranteed', 'sluice.io/job': `pod-${name}`, 'sluice.io/user': 'bench' },
    },
    spec: {
      nodeName: o.node,
      schedulingGates: o.gated ? [{ name: 'sluice.io/queue' }] : undefined,
      containers: [{ name: 'c', image: 'x', resources: { requests: { [GPU]: String(o.gpus) }, limits: { [GPU]: String(o.gpus) } } }],
    },
    status: { phase: o.node ? 'Running' : 'Pending' },
  } as V1Pod;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

async function gateRemovalLatency(
  waiting: number,
  rounds: number,
): Promise<{ waiting: number; rounds: number; p50: number; p90: number; p99: number; max: number }> {
  const api = await StandInApiserver.start();
  const nodes = 100;
  for (let i = 0; i < nodes; i++) api.create('nodes', node(`n${i}`, 8));
  for (let i = 0; i < nodes * 8; i++) api.create('pods', pod(`r${String(i).padStart(4, '0')}`, { queue: 'q', gpus: 1, node: `n${i % nodes}` }));
  for (let i = 0; i < waiting; i++) api.create('pods', pod(`w${String(i).padStart(4, '0')}`, { queue: 'q', gpus: 1, gated: true }));
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const store = new Store({ url: DATABASE_URL, schema, log: createLogger('silent') });
  await store.migrate();
  await store.putQueue('q', { limits: [{ resource: GPU, model: '', guaranteed: 100000, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }] });
  const config = loadConfig({
    env: {},
    base: {
      logLevel: 'warn',
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: DATABASE_URL, schema },
      api: { tokenReview: false },
      queue: { redisPrefix: `bench${randomBytes(4).toString('hex')}`, releaseRatePerSecond: 1000, retryPeriodSeconds: 1 },
    },
  });
  const running = await serve(config, { log: createLogger('warn'), kubeConfig: api.kubeConfig() });
  const gated = (name: string): boolean => (api.get<V1Pod>('pods', 'bench', name)?.spec?.schedulingGates ?? []).length > 0;
  const waitUntil = async (ok: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (ok()) return true;
      await new Promise((r) => setImmediate(r));
    }
    return ok();
  };
  await waitUntil(() => running.queue?.current() !== null && running.metrics.leader !== undefined, 15000);
  await new Promise((r) => setTimeout(r, 1500)); // leader elected, first evaluation done
  const samples: number[] = [];
  for (let k = 0; k < rounds; k++) {
    const victim = api.get<V1Pod>('pods', 'bench', `r${String(k).padStart(4, '0')}`)!;
    const next = `w${String(k).padStart(4, '0')}`;
    const t0 = performance.now();
    api.update('pods', { ...victim, status: { phase: 'Succeeded' } });
    if (!(await waitUntil(() => !gated(next), 10000))) throw new Error(`${next} was not released within 10 s`);
    samples.push(performance.now() - t0);
    // The released pod binds (as kube-scheduler would), so the next round starts full again.
    const released = api.get<V1Pod>('pods', 'bench', next)!;
    api.update('pods', { ...released, spec: { ...released.spec!, nodeName: victim.spec!.nodeName }, status: { phase: 'Running' } });
    await new Promise((r) => setTimeout(r, 20));
  }
  await running.close();
  await store.dropSchema();
  await store.close();
  await api.close();
  return { waiting, rounds, p50: pct(samples, 50), p90: pct(samples, 90), p99: pct(samples, 99), max: Math.max(...samples) };
}

function evaluationCost(waitingPods: number, nodes: number): { waitingPods: number; nodes: number; buildMs: number; evaluateMs: number; released: number } {
  const cache = new ClusterCache({ resources: [GPU], assumeTtlMs: 30000, recentPodWindow: 1000 });
  const pods: V1Pod[] = [];
  for (let i = 0; i < nodes * 8; i++) pods.push(pod(`r${i}`, { queue: `q${i % 10}`, gpus: 1, node: `n${i % nodes}` }));
  for (let i = 0; i < waitingPods; i++) {
    pods.push(
      pod(`w${i}`, { queue: `q${i % 10}`, gpus: [1, 2, 4, 8][i % 4]!, gated: true, created: new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString() }),
    );
  }
  cache.replaceAll(
    Array.from({ length: nodes }, (_, i) => node(`n${i}`, 8)),
    pods,
  );
  const queues = new Map<string, QueueSpec>(
    Array.from({ length: 10 }, (_, i) => [
      `q${i}`,
      {
        name: `q${i}`,
        parent: null,
        cohort: null,
        open: true,
        weight: 1 + (i % 3),
        limits: [{ resource: GPU, model: '', guaranteed: 100000, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }],
      },
    ]),
  );
  const runs: Array<{ build: number; evaluate: number; released: number }> = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    const state = buildState(cache, queues, new Set());
    const t1 = performance.now();
    const ev = evaluate({
      units: state.units,
      ledger: state.ledger,
      capacity: state.capacity,
      weights: new Map([...queues.values()].map((q) => [q.name, q.weight])),
      nowMs: Date.UTC(2026, 10, 2),
      backfillGuardMs: 600_000,
    });
    runs.push({ build: t1 - t0, evaluate: performance.now() - t1, released: ev.releases.length });
  }
  runs.sort((a, b) => a.build + a.evaluate - (b.build + b.evaluate));
  const median = runs[2]!;
  return { waitingPods, nodes, buildMs: median.build, evaluateMs: median.evaluate, released: median.released };
}

const waiting = Number(process.env.BENCH_QUEUE_WAITING ?? 300);
const rounds = Number(process.env.BENCH_QUEUE_ROUNDS ?? 100);
const costs = [evaluationCost(1000, 1000), evaluationCost(10000, 1000)];
const latency = await gateRemovalLatency(waiting, rounds);
const f = (x: number): string => x.toFixed(1);
console.log(`\n### Queue manager (${new Date().toISOString().slice(0, 10)}, load ${(await import('node:os')).loadavg()[0]!.toFixed(1)})\n`);
console.log('| gate removal after a pod finishes | jobs waiting | rounds | p50 ms | p90 ms | p99 ms | max ms |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
console.log(
  `| stand-in apiserver, real Redis and Postgres | ${latency.waiting} | ${latency.rounds} | ${f(latency.p50)} | ${f(latency.p90)} | ${f(latency.p99)} | ${f(latency.max)} |`,
);
console.log('\n| one evaluation | waiting pods | nodes (all full) | build state ms | decide ms |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const c of costs) console.log(`| median of 5 | ${c.waitingPods} | ${c.nodes} | ${f(c.buildMs)} | ${f(c.evaluateMs)} |`);
const dir = join(process.cwd(), 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `queue-${new Date().toISOString().slice(0, 10)}.json`), JSON.stringify({ latency, costs }, null, 2) + '\n');
process.exit(0);
