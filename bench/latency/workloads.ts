// `node dist/bench/latency/workloads.js`: the mutating webhook's latency with job
// frameworks off and on. sluice's production build runs as two child processes (off, on) against a
// stand-in apiserver (bench/apiserver/standin.ts, in this process) that serves
// PyTorchJobs (Master + 7 Workers); the driver posts AdmissionReviews of pods owned by them
// (the captured gpu-pod CREATE with an owner reference), closed loop at concurrency 1 and 16:
//   off   jobFrameworks.enabled false: the job is the pod's controller, nothing is read;
//   warm  on, pods of 64 PyTorchJobs already read (every job's 2nd..8th pod: a cache hit);
//   cold  on, every pod owned by a PyTorchJob never seen before: one GET each (the worst
//         case; a real job's first pod only).
// Writes bench/results/workloads-<date>.{json,md}. Progress on stderr. Flags: WORKLOADS below.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StandInApiserver } from '../apiserver/standin.js';
import { parseOrExit, type CommandSpec } from '../../cli/flags.js';
import { Client, closedLoop, startSluice, stats, stop, type LatencyStats } from './driver.js';
import type { V1Pod } from '@kubernetes/client-node';
import { createLogger } from '../../observability/logger.js';
import { WorkloadReader } from '../../workloads/reader.js';
import { resolveWorkload } from '../../workloads/resolve.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

const WORKLOADS: CommandSpec = {
  usage: 'npm run bench:workloads -- [flags]   (node dist/bench/latency/workloads.js)',
  about: `The mutating webhook's latency with job frameworks off and on: sluice's production build as
two child processes against a stand-in apiserver serving PyTorchJobs; pods of cached jobs (warm)
and of jobs never seen (cold, one apiserver GET each), at concurrency 1 and 16. Reads the
captured gpu-pod AdmissionReview from ../shared/fixtures/admission. Writes
bench/results/workloads-<date>.{json,md}.`,
  flags: [
    { name: 'seconds', value: 'S', default: '3', help: 'time limit of each measured phase' },
    { name: 'rounds', value: 'N', default: '2', help: 'rounds; both servers run at once and the modes alternate each round' },
    { name: 'out', value: 'DIR', default: 'bench/results', help: 'results folder' },
  ],
};
const flags = parseOrExit(process.argv.slice(2), WORKLOADS, 'bench:workloads');
const arg = (n: string): string | undefined => flags.get(n);

const NS = 'team-a';
const WORKERS = 7;

function pyTorchJob(name: string): Record<string, unknown> {
  const template = { spec: { containers: [{ name: 'pytorch', image: 'pytorch', resources: { limits: { 'nvidia.com/gpu': '2' } } }] } };
  return {
    apiVersion: 'kubeflow.org/v1',
    kind: 'PyTorchJob',
    metadata: { name, namespace: NS, uid: `uid-${name}`, labels: { 'sluice.io/queue': 'team-a' } },
    spec: { pytorchReplicaSpecs: { Master: { replicas: 1, template }, Worker: { replicas: WORKERS, template } } },
  };
}

/** The captured gpu-pod CREATE, owned by PyTorchJob `job`. */
function reviewFor(base: { request: { object: { metadata: Record<string, unknown> } } }, job: string, i: number): Buffer {
  const r = structuredClone(base);
  r.request.object.metadata.name = `${job}-worker-${i}`;
  r.request.object.metadata.ownerReferences = [{ apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', name: job, uid: `uid-${job}`, controller: true }];
  return Buffer.from(JSON.stringify(r));
}

/** The answer names the PyTorchJob as the job, and (frameworks on) its gang of 8, with no job-and-gang warning
 * (the stand-in has no PriorityClasses: that warning is in every answer, on and off). */
function patchedAsExpected(body: string, enabled: boolean): boolean {
  const res = (JSON.parse(body) as { response: { patch?: string; warnings?: string[] } }).response;
  const patch = Buffer.from(res.patch ?? '', 'base64').toString('utf8');
  if (!patch.includes('"pytorchjob-')) return false;
  return enabled
    ? patch.includes(`sluice.io~1gang-size","value":"${WORKERS + 1}"`) && !(res.warnings ?? []).some((w) => w.includes('job and gang'))
    : !patch.includes('gang-size');
}

/**
 * What job frameworks add to one admission when the workload is cached, without HTTP:
 * resolveWorkload() over 64 PyTorchJobs' pods, in this process (microseconds per pod).
 */
async function resolveCostUs(base: { request: { object: unknown } }): Promise<number> {
  const reader = new WorkloadReader(async (path) => JSON.stringify(pyTorchJob(path.slice(path.lastIndexOf('/') + 1))), createLogger('silent'), null);
  const pods = Array.from({ length: 64 }, (_, i) => {
    const p = structuredClone(base.request.object) as V1Pod;
    p.metadata!.ownerReferences = [{ apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', name: `j${i}`, uid: `uid-j${i}`, controller: true }];
    return p;
  });
  for (const p of pods) await resolveWorkload(p, NS, reader, ['nvidia.com/gpu']);
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const n = 100_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await resolveWorkload(pods[i & 63]!, NS, reader, ['nvidia.com/gpu']);
    best = Math.min(best, ((performance.now() - t0) * 1000) / n);
  }
  return best;
}

interface Phase {
  mode: 'off' | 'warm' | 'cold';
  concurrency: number;
  done: number;
  perSecond: number;
  errors: number;
  apiserverGets: number;
  latency: LatencyStats;
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds') ?? 3);
  const rounds = Number(arg('rounds') ?? 2);
  const outDir = resolve(process.cwd(), arg('out') ?? 'bench/results');
  if (!existsSync(join(repoRoot, 'dist/bin/sluice.js'))) throw new Error('no production build: run npm run build first');
  const base = JSON.parse(readFileSync(join(repoRoot, '../shared/fixtures/admission/gpu-pod.json'), 'utf8')) as {
    request: { object: { metadata: Record<string, unknown> } };
  };

  const resolveUs = await resolveCostUs(base as { request: { object: unknown } });
  log(`resolveWorkload on a cache hit: ${resolveUs.toFixed(2)} µs per pod (best of 3 x 100,000)`);
  const api = await StandInApiserver.start();
  api.create('namespaces', { metadata: { name: NS, labels: { 'sluice.io/managed': 'true' } } });
  let gets = 0;
  api.onRequest((r) => {
    const m = /^\/apis\/kubeflow\.org\/v1\/namespaces\/team-a\/pytorchjobs\/([^/]+)$/.exec(r.path);
    if (!m || r.method !== 'GET') return undefined;
    gets++;
    return { status: 200, body: pyTorchJob(m[1]!) };
  });
  const kubeconfig = join(tmpdir(), `sluice-bench-workloads-${process.pid}.kubeconfig`);
  writeFileSync(kubeconfig, api.kubeConfig().exportConfig());
  const warmBodies = Array.from({ length: 64 * (WORKERS + 1) }, (_, i) => reviewFor(base, `warm-${i % 64}`, Math.floor(i / 64)));
  let coldSeq = 0;
  // Both servers run at once and the phases alternate round by round (off, warm, cold, then
  // reversed), so a change in the machine's background load hits every mode alike.
  const servers: Array<{ enabled: boolean; url: string; stop: () => Promise<void>; config: string }> = [];
  const lat = new Map<string, { mode: Phase['mode']; c: number; ms: number[]; done: number; seconds: number; errors: number; gets: number }>();
  try {
    for (const enabled of [false, true]) {
      const config = join(tmpdir(), `sluice-bench-workloads-${process.pid}-${enabled}.yaml`);
      writeFileSync(
        config,
        `store:\n  url: ''\nleaderElection: false\nqueue:\n  enabled: false\njobFrameworks:\n  enabled: ${enabled}\nkubeconfig: ${kubeconfig}\n`,
      );
      const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: '' };
      delete env.SLUICE_STORE_URL;
      const s = await startSluice({ dist: join(repoRoot, 'dist'), config, env });
      servers.push({ enabled, url: s.url, stop: () => stop(s.child), config });
    }
    const modes: Array<Phase['mode']> = ['off', 'warm', 'cold'];
    for (let round = 0; round < rounds; round++) {
      for (const c of [1, 16]) {
        for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
          const srv = servers.find((x) => x.enabled === (mode !== 'off'))!;
          const cl = new Client(srv.url, c);
          const body = (i: number): Buffer => (mode === 'cold' ? reviewFor(base, `cold-${coldSeq++}`, 0) : warmBodies[i % warmBodies.length]!);
          // Warm-up: JIT, sockets and (warm) every job read once; not recorded.
          await closedLoop(c, warmBodies.length, seconds * 1000, async (i) => void (await cl.post('/webhooks/mutate', body(i))));
          const key = `${mode}/${c}`;
          let acc = lat.get(key);
          if (!acc) lat.set(key, (acc = { mode, c, ms: [], done: 0, seconds: 0, errors: 0, gets: 0 }));
          const before = gets;
          const a = acc;
          const { done, ms } = await closedLoop(c, 1_000_000, seconds * 1000, async (i) => {
            const r = await cl.post('/webhooks/mutate', body(i));
            a.ms.push(r.ms);
            if (r.status !== 200 || !patchedAsExpected(r.body, srv.enabled)) a.errors++;
          });
          cl.close();
          a.done += done;
          a.seconds += ms / 1000;
          a.gets += gets - before;
          const st = stats(a.ms.slice(-done));
          log(`round ${round + 1} ${mode} c=${c}: ${done} in ${(ms / 1000).toFixed(1)} s, p50 ${st.p50.toFixed(2)} ms, p99 ${st.p99.toFixed(2)} ms`);
        }
      }
    }
  } finally {
    for (const srv of servers) {
      await srv.stop();
      rmSync(srv.config, { force: true });
    }
    rmSync(kubeconfig, { force: true });
    await api.close();
  }
  const phases: Phase[] = [...lat.values()]
    .sort((x, y) => x.c - y.c || ['off', 'warm', 'cold'].indexOf(x.mode) - ['off', 'warm', 'cold'].indexOf(y.mode))
    .map((a) => ({
      mode: a.mode,
      concurrency: a.c,
      done: a.done,
      perSecond: a.done / a.seconds,
      errors: a.errors,
      apiserverGets: a.gets,
      latency: stats(a.ms),
    }));
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, loadAvg: loadavg()[0] ?? 0 };
  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, `workloads-${date}.json`),
    JSON.stringify({ date, machine, seconds, rounds, resolveCacheHitUs: resolveUs, phases }, null, 1) + '\n',
  );
  const rows = phases.map(
    (p) =>
      `| ${p.mode} | ${p.concurrency} | ${p.done} | ${p.perSecond.toFixed(0)} | ${p.latency.p50.toFixed(2)} | ${p.latency.p99.toFixed(2)} | ${p.apiserverGets} | ${p.errors} |`,
  );
  const md = [
    `# Mutating webhook latency, job frameworks off and on (${date})`,
    '',
    `${machine.cpus} CPUs (${machine.model}), Node ${machine.node}, load average ${machine.loadAvg.toFixed(1)} at the end; ${rounds} rounds of ${seconds} s per mode and concurrency, alternating modes.`,
    '',
    '| mode | concurrency | requests | per second | p50 ms | p99 ms | apiserver GETs | errors |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `In process, without HTTP: resolving a pod's workload from the cache costs ${resolveUs.toFixed(2)} µs (best of 3 x 100,000 pods of 64 PyTorchJobs).`,
    '',
  ].join('\n');
  writeFileSync(join(outDir, `workloads-${date}.md`), md);
  process.stdout.write(md);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
