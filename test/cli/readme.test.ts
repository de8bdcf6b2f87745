// The README's no-cluster commands, run as a newcomer runs them (issue 21): the line `npm start`
// prints without a cluster, and the "Without a cluster" block, read from README.md and run
// line by line in sh against the build (dist/, which `npm test` builds first). Only the ports
// change (0, then the ones sluice took, so a sluice on 8080/9443 elsewhere is not disturbed)
// and the store schema (one of its own, dropped at the end).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { repoRoot } from '../helpers/shared.js';
import { DATABASE_URL, randomSchema } from '../store/helpers.js';

if (!existsSync(join(repoRoot, 'dist/bin/sluice.js'))) throw new Error('no dist/: run npm run build first (npm test does)');
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The commands of the ```sh block that contains `marker`, continuation lines joined. */
function shBlock(marker: string): string[] {
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(marker));
  if (!block) throw new Error(`README has no sh block with ${marker}`);
  return block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

t.test('the no-cluster line is what sluice prints', async (t) => {
  const shown = /\n(sluice: no Kubernetes cluster configured[^\n]*)\n/.exec(readme)?.[1];
  t.ok(shown, 'the README shows the line');
  const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', HOME: '/nonexistent-home', DATABASE_URL: '', KUBERNETES_SERVICE_HOST: '' };
    delete env.KUBECONFIG;
    const child = spawn(process.execPath, [join(repoRoot, 'dist/bin/sluice.js'), 'serve', '--store-url', ''], { cwd: repoRoot, env });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => resolve({ code, err }));
  });
  t.equal(r.code, 1);
  t.equal(r.err.trim(), shown, 'the same line, word for word');
});

t.test('"Without a cluster": every command of the block runs and prints what it says', async (t) => {
  const lines = shBlock('--cluster-snapshot examples/cluster-snapshot.json &');
  const start = /^SLUICE_API_TOKEN=(\S+) npm start -- (.*) &$/.exec(lines[0]!);
  t.ok(start, `the block starts the snapshot server with a token for the CLI: ${lines[0]}`);
  if (!start) return;
  t.equal(lines.at(-1)?.replace(/\s+#.*$/, ''), 'kill %1', 'and ends by stopping it');

  const schema = randomSchema();
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', SLUICE_API_TOKEN: start[1]! };
  for (const k of ['DATABASE_URL', 'SLUICE_STORE_URL', 'SLUICE_API_URL', 'KUBECONFIG']) delete env[k];
  const server = spawn('npm', ['start', '--', ...start[2]!.split(' '), '--https-port', '0', '--http-port', '0', '--store-schema', schema], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void server.kill('SIGTERM'));
  let log = '';
  server.stdout.on('data', (c: Buffer) => (log += c.toString()));
  server.stderr.on('data', (c: Buffer) => (log += c.toString()));
  let serving: { api: string; ops: string } | undefined;
  for (let i = 0; i < 600 && !serving; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const line = log.split('\n').find((l) => l.includes('"msg":"sluice is serving"'));
    if (line) serving = JSON.parse(line) as { api: string; ops: string };
  }
  t.ok(serving, 'sluice is serving');
  if (!serving) return;
  t.match(log, /keeps queues and job records in Postgres .* schema/, 'it says where it keeps queues');

  // The README's ports become the ones sluice took.
  const api = new URL(serving.api).host;
  const ops = new URL(serving.ops).host;
  const commands = lines.slice(1, -1).map((l) => l.replaceAll('localhost:8080', ops).replaceAll('localhost:9443', api));
  // One sh runs them all (the export carries over), each after a marker line, stopping at the first failure.
  const script = ['set -e', ...commands.flatMap((c, i) => [`printf '\\n@@@ ${i}\\n'`, c])].join('\n');
  const r = spawnSync('sh', ['-c', script], { cwd: repoRoot, env: { ...env, NODE_OPTIONS: '' }, encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `every command exits 0${r.stderr ? `; stderr: ${r.stderr}` : ''}`);
  const out = new Map<string, string>();
  for (const part of r.stdout.split('\n@@@ ').slice(1)) {
    const nl = part.indexOf('\n');
    out.set(lines[Number(part.slice(0, nl)) + 1]!, part.slice(nl + 1).trimEnd());
  }
  const of = (prefix: string): string => [...out].find(([c]) => c.startsWith(prefix))?.[1] ?? '';
  const expected: Array<[string, RegExp]> = [
    ['until curl -sf localhost:8080/readyz', /^\{"status":"ready","leader":true\}$/],
    ['curl -s -XPOST localhost:9443/scheduler/filter', /^\{"Nodes":null,"NodeNames":\["a100-2"\],"FailedNodes":\{"a100-1":/],
    ['curl -s localhost:8080/metrics | grep sluice_gpus', /^sluice_gpus\{resource="nvidia.com\/gpu",state="allocatable"\} 32$/m],
    [
      'node dist/bin/sluice.js get nodes',
      /^NAME\s+RESOURCE\s+MODEL\s+TOTAL\s+USED\s+FREE\s+HEALTH\na100-1\s+nvidia.com\/gpu\s+NVIDIA-A100-SXM4-80GB\s+8\s+6\s+2\s+healthy\n/,
    ],
    ['node dist/bin/sluice.js get queues', /^NAME\s+COHORT\s+WEIGHT\s+GPU USED\/GUARANTEED\s+BE USED\/CAP\s+WAITING\ndefault\s/],
    ['node dist/bin/sluice.js describe job team-a/train-a', /^Name:\s+pod-train-a\nNamespace:\s+team-a\n[\s\S]*\n {2}train-a\s+a100-1\s/],
  ];
  t.equal(out.size, commands.length, 'every command ran');
  t.same(
    expected.map(([c]) => lines.some((l) => l.startsWith(c))),
    expected.map(() => true),
    'the README still has each command checked here',
  );
  for (const [c, re] of expected) t.match(of(c), re, c);

  // `kill %1` is for the reader's shell (a job of its own); here the same signal to npm start.
  server.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => (server.exitCode !== null ? resolve(server.exitCode) : server.on('close', resolve)));
  t.not(code, null, 'the server stops');
});
