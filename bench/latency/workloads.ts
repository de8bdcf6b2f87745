// `node dist/bench/latency/workloads.js`: the mutating webhook's latency with job
// frameworks off and on. sluice's production build runs as a child process against a
// stand-in apiserver (bench/apiserver/standin.ts, in this process) that serves
// PyTorchJobs (Master + 7 Workers); the driver posts AdmissionReviews of pods owned by them
// (the captured gpu-pod CREATE with an owner reference), closed loop at concurrency 1 and 16:
//   off   jobFrameworks.enabled false: the job is the pod's controller, nothing is read;
//   warm  on, pods of 64 PyTorchJobs already read (every job's 2nd..8th pod: a cache hit);
//   cold  on, every pod owned by a PyTorchJob never seen before: one GET each (the worst
//         case; a real job's first pod only).
// Writes bench/results/workloads-<date>.{json,md}. Progress on stderr.
//   --seconds 3   time limit of each measured phase
//   --out DIR     results folder (default bench/results)
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StandInApiserver } from '../apiserver/standin.js';
import { Client, closedLoop, startChild, stats, stop, type LatencyStats } from './driver.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const arg = (n: string): string | undefined => {
  const i = process.argv.indexOf(`--${n}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const NS = 'team-a';
const WORKERS = 7;

function pyTorchJob(name: string): Record<string, unknown> {
  const template = { spec: { containers: [{ name: 'pytorch', image: 'pytorch', resources: { limits: { 'nvidia.com/gpu': '2' } } }] } };
  return {
    apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob',
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
  return enabled ? patch.includes(`sluice.io~1gang-size","value":"${WORKERS + 1}"`) && !(res.warnings ?? []).some((w) => w.includes('job and gang')) : !patch.includes('gang-size');
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
  const outDir = resolve(process.cwd(), arg('out') ?? 'bench/results');
  if (!existsSync(join(repoRoot, 'dist/bin/sluice.js'))) throw new Error('no production build: run npm run build first');
  const base = JSON.parse(readFileSync(join(repoRoot, '../shared/fixtures/admission/gpu-pod.json'), 'utf8')) as { request: { object: { metadata: Record<string, unknown> } } };

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
  const configFile = join(tmpdir(), `sluice-bench-workloads-${process.pid}.yaml`);
  const warmBodies = Array.from({ length: 64 * (WORKERS + 1) }, (_, i) => reviewFor(base, `warm-${i % 64}`, Math.floor(i / 64)));
  let coldSeq = 0;
  const phases: Phase[] = [];
  try {
    for (const enabled of [false, true]) {
      writeFileSync(configFile, `store:\n  url: ''\nleaderElection: false\nqueue:\n  enabled: false\njobFrameworks:\n  enabled: ${enabled}\nkubeconfig: ${kubeconfig}\n`);
      const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: '' };
      delete env.SLUICE_STORE_URL;
      const s = await startChild([join(repoRoot, 'dist/bin/sluice.js'), 'serve', '--config', configFile, '--https-host', '127.0.0.1', '--https-port', '0', '--http-host', '127.0.0.1', '--http-port', '0', '--log-level', 'info'], 'sluice is serving', env);
      try {
        for (const mode of enabled ? (['warm', 'cold'] as const) : (['off'] as const)) {
          for (const c of [1, 16]) {
            const cl = new Client(s.url, c);
            const body = (i: number): Buffer => (mode === 'cold' ? reviewFor(base, `cold-${coldSeq++}`, 0) : warmBodies[i % warmBodies.length]!);
            // Warm-up: JIT, sockets and (warm) every job read once; not recorded.
            await closedLoop(c, warmBodies.length, seconds * 1000, async (i) => void (await cl.post('/webhooks/mutate', body(i))));
            const lat: number[] = [];
            let errors = 0;
            const before = gets;
            const { done, ms } = await closedLoop(c, 1_000_000, seconds * 1000, async (i) => {
              const r = await cl.post('/webhooks/mutate', body(i));
              lat.push(r.ms);
              if (r.status !== 200 || !patchedAsExpected(r.body, enabled)) errors++;
            });
            cl.close();
            const p: Phase = { mode, concurrency: c, done, perSecond: done / (ms / 1000), errors, apiserverGets: gets - before, latency: stats(lat) };
            phases.push(p);
            log(`${mode} c=${c}: ${done} in ${(ms / 1000).toFixed(1)} s, p50 ${p.latency.p50.toFixed(2)} ms, p99 ${p.latency.p99.toFixed(2)} ms, ${p.apiserverGets} GETs, ${errors} errors`);
          }
        }
      } finally {
        await stop(s.child);
      }
    }
  } finally {
    rmSync(kubeconfig, { force: true });
    rmSync(configFile, { force: true });
    await api.close();
  }
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, loadAvg: loadavg()[0] ?? 0 };
  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `workloads-${date}.json`), JSON.stringify({ date, machine, seconds, phases }, null, 1) + '\n');
  const rows = phases.map((p) => `| ${p.mode} | ${p.concurrency} | ${p.done} | ${p.perSecond.toFixed(0)} | ${p.latency.p50.toFixed(2)} | ${p.latency.p99.toFixed(2)} | ${p.apiserverGets} | ${p.errors} |`);
  const md = [
    `# Mutating webhook latency, job frameworks off and on (${date})`,
    '',
    `${machine.cpus} CPUs (${machine.model}), Node ${machine.node}, load average ${machine.loadAvg.toFixed(1)} at the end; ${seconds} s per phase.`,
    '',
    '| mode | concurrency | requests | per second | p50 ms | p99 ms | apiserver GETs | errors |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  writeFileSync(join(outDir, `workloads-${date}.md`), md);
  process.stdout.write(md);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
