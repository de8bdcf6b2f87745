// npm run bench:eta - what one ETA forecast (queue/forecast.ts) costs at 10,000 waiting
// jobs on 1,000 full nodes, and how many of the waiting jobs it gives an estimate.
// Every node has 8 GPUs, all held by running 1-GPU jobs that end at random times over
// the next 8 hours; waiting jobs ask 1, 2, 4 or 8 GPUs in 10 queues. Writes
// bench/results/eta-cost-<date>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { parseOrExit } from '../../cli/flags.js';
import type { CapacityNode } from '../../queue/capacity.js';
import { estimateDuration } from '../../queue/duration.js';
import { forecast, type ForecastInput, type RunningJob, type WaitingJob } from '../../queue/forecast.js';
import type { QueueSpec } from '../../store/queue-directory.js';
import { seededRandom } from '../simulate/engine.js';
import { GPU, unitOf } from './engine.js';

const NOW = Date.UTC(2026, 11, 1);

export function scenario(waitingJobs: number, nodeCount: number, seed = 1): ForecastInput {
  const rng = seededRandom(seed);
  const nodes: CapacityNode[] = Array.from({ length: nodeCount }, (_, i) => ({
    name: `n${i}`,
    product: 'NVIDIA-A100-SXM4-80GB',
    unusable: null,
    labels: {},
    capacity: { [GPU]: 8 },
    free: { [GPU]: 0 },
    bestEffort: { [GPU]: 0 },
  }));
  const declared = (s: number) => estimateDuration({ annotation: `${Math.max(1, Math.round(s))}s`, maxDurationSeconds: null, history: [], nowMs: NOW });
  const running: RunningJob[] = [];
  for (let i = 0; i < nodeCount * 8; i++) {
    const requests = [{ resource: GPU, count: 1 }];
    const queue = `q${i % 10}`;
    running.push({
      key: `r${i}`,
      qos: 'guaranteed',
      holdings: [{ queue, user: 'u', qos: 'guaranteed', requests, product: 'NVIDIA-A100-SXM4-80GB', models: [] }],
      pods: [{ node: `n${i % nodeCount}`, requests }],
      startedMs: NOW,
      duration: declared(600 + rng() * 8 * 3600),
    });
  }
  const waiting: WaitingJob[] = [];
  for (let i = 0; i < waitingJobs; i++) {
    const unit = unitOf({
      key: `w${i}`,
      queue: `q${i % 10}`,
      user: 'u',
      kind: 'Job',
      priority: 0,
      gpus: [1, 2, 4, 8][i % 4]!,
      models: [],
      submitMs: NOW - (waitingJobs - i) * 1000,
      runMs: 0,
    });
    waiting.push({ unit, duration: declared(600 + rng() * 8 * 3600) });
  }
  const queues = new Map<string, QueueSpec>(
    Array.from({ length: 10 }, (_, i) => [
      `q${i}`,
      {
        name: `q${i}`,
        parent: null,
        cohort: null,
        open: true,
        weight: 1 + (i % 3),
        limits: [{ resource: GPU, model: '', guaranteed: 100_000, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }],
      },
    ]),
  );
  return { nowMs: NOW, nodes, running, waiting, queues, weights: new Map([...queues.values()].map((q) => [q.name, q.weight])), backfillGuardMs: 600_000 };
}

async function main(): Promise<void> {
  parseOrExit(
    process.argv.slice(2),
    {
      usage: 'npm run bench:eta   (node dist/bench/replay/eta-cost.js)',
      about: `What one ETA forecast (queue/forecast.ts) costs at 1,000 and 10,000 waiting jobs on 1,000
full nodes (8 GPUs each), with and without a time budget, and how many waiting jobs get an
estimate. Prints a Markdown table; writes bench/results/eta-cost-<date>.json. A few minutes on 2 cores.`,
      flags: [],
    },
    'bench:eta',
  );
  const rows = [];
  // [waiting jobs, nodes, maxWaiting, budget ms]: the defaults, then the defaults with a budget.
  const cases = [
    [1000, 1000, 1000, undefined],
    [10_000, 1000, 1000, undefined],
    [10_000, 1000, 1000, 5000],
    [10_000, 1000, 300, undefined],
  ] as const;
  for (const [waitingJobs, nodeCount, maxWaiting, budgetMs] of cases) {
    const input = scenario(waitingJobs, nodeCount);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const f = forecast({ ...input, maxWaiting, ...(budgetMs ? { budgetMs } : {}) });
    const ms = performance.now() - t0;
    // CPU time of this process too: on a shared, loaded machine wall time mostly measures the wait for a core.
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
    const row = {
      waitingJobs,
      nodes: nodeCount,
      maxWaiting,
      budgetMs: budgetMs ?? null,
      ms: Math.round(ms),
      cpuMs,
      passes: f.steps,
      msPerPass: +(ms / f.steps).toFixed(2),
      estimated: f.starts.size,
      truncated: f.truncated,
      loadavg: +loadavg()[0]!.toFixed(1),
    };
    process.stderr.write(`${JSON.stringify(row)}\n`);
    rows.push(row);
  }
  console.log(`\n### ETA forecast cost (${new Date().toISOString().slice(0, 10)}, load ${loadavg()[0]!.toFixed(1)}, one run each)\n`);
  console.log(
    '| waiting jobs | nodes (all full) | jobs taking part (maxWaiting) | budget ms | total ms (3 runs) | CPU ms | passes | ms per pass | jobs with an estimate |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(
      `| ${r.waitingJobs} | ${r.nodes} | ${r.maxWaiting} | ${r.budgetMs ?? 'none'} | ${r.ms} | ${r.cpuMs} | ${r.passes} | ${r.msPerPass} | ${r.estimated} |`,
    );
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString();
  writeFileSync(join(dir, `eta-cost-${date.slice(0, 10)}.json`), JSON.stringify({ date, loadavg: loadavg()[0], cpus: cpus().length, rows }, null, 2) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
