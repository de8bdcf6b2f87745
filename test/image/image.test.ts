// The container image, without a Docker engine: the Dockerfile's steps performed on the
// host into a temporary folder (build with dev dependencies, npm pack, unpack, install the
// production dependencies only from the lock), then `sluice help` started from there. Also
// checks the Dockerfile says what the manifests rely on (non-root, entrypoint sluice).
import { execFileSync, spawnSync, type ExecFileSyncOptionsWithStringEncoding } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../webhooks/helpers.js';

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');

t.test('the Dockerfile: multi-stage on Node 20 slim, production dependencies, non-root, entrypoint sluice', async (t) => {
  const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
  t.ok(froms.length >= 2 && froms.every((f) => /^node:20(\.[\d.]+)?-(bookworm-)?slim$/.test(f)), `stages: ${froms.join(', ')}`);
  t.match(dockerfile, /npm pack/, 'the run stage installs the packed build, as this test does');
  t.match(dockerfile, /npm install --omit=dev/, 'production dependencies only');
  const user = /^USER (\S+)/m.exec(dockerfile)?.[1] ?? '';
  t.ok(user && !/^(0|root)(:|$)/.test(user), `USER ${user} is not root`);
  t.match(dockerfile, /^ENTRYPOINT \["sluice"\]/m);
  const manifestUser = /runAsUser: (\d+)/.exec(readFileSync(join(repoRoot, 'manifests/base/deployment.yaml'), 'utf8'))?.[1];
  t.equal(user.split(':')[0], manifestUser, 'the manifests run as the image\'s user');
});

t.test('pack, install with --omit=dev into a temporary folder, run sluice help', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'sluice-image-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const src = join(tmp, 'src');
  const app = join(tmp, 'app');
  mkdirSync(src);
  mkdirSync(app);
  const quiet: ExecFileSyncOptionsWithStringEncoding = { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 };

  // Build stage: compile into the temporary folder (not the work tree's dist/), then pack.
  for (const f of ['package.json', 'package-lock.json', 'README.md']) copyFileSync(join(repoRoot, f), join(src, f));
  execFileSync(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(src, 'dist')], quiet);
  execFileSync('npm', ['pack', '--pack-destination', tmp, '--loglevel=error'], { ...quiet, cwd: src });
  const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
  t.ok(tgz, `packed ${tgz}`);

  // Run stage: unpack, production dependencies from the lock (the npm cache serves them).
  execFileSync('tar', ['-xzf', join(tmp, tgz!), '--strip-components=1', '-C', app], quiet);
  copyFileSync(join(repoRoot, 'package-lock.json'), join(app, 'package-lock.json'));
  execFileSync('npm', ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { ...quiet, cwd: app });
  t.ok(existsSync(join(app, 'node_modules/fastify')), 'production dependencies installed');
  for (const dev of ['typescript', 'tap', 'aws-cdk-lib', 'kubernetes-models']) t.notOk(existsSync(join(app, 'node_modules', dev)), `no dev dependency ${dev}`);
  t.notOk(existsSync(join(app, 'test')), 'no tests in the package');

  const help = spawnSync(process.execPath, [join(app, 'dist/bin/sluice.js'), 'help'], { encoding: 'utf8', cwd: tmpdir() });
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /^usage: sluice <command>/);
  t.match(help.stdout, /get\s+get queues\|jobs\|nodes/, 'the CLI is in the image');
  const get = spawnSync(process.execPath, [join(app, 'dist/bin/sluice.js'), 'get', 'queues'], { encoding: 'utf8', cwd: tmpdir(), env: { PATH: process.env.PATH, HOME: tmp } });
  t.equal(get.status, 2);
  t.match(get.stderr, /^sluice: no admin API URL; pass --server URL or set SLUICE_API_URL/, 'a CLI error is one line, no stack');
});
