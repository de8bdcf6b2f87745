// The container image, without a Docker engine: the Dockerfile's steps performed on the
// host into a temporary folder (build with dev dependencies, npm pack, unpack, install the
// production dependencies only from the lock), then `sluice help` started from there. Also
// checks the Dockerfile says what the manifests rely on (non-root, entrypoint sluice).
import { execFileSync, spawnSync, type ExecFileSyncOptionsWithStringEncoding } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t from 'tap';
import { repoRoot } from '../webhooks/helpers.js';

/** Every file under repoRoot/dir, as paths from repoRoot, skipping the folders in `skip` (also from repoRoot). */
function walk(dir: string, skip: Set<string> = new Set()): string[] {
  const out: string[] = [];
  const go = (d: string): void => {
    for (const e of readdirSync(join(repoRoot, d), { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!skip.has(p)) go(p);
      } else out.push(p);
    }
  };
  if (existsSync(join(repoRoot, dir))) go(dir);
  return out;
}

/**
 * Why the work tree's dist/ is not what `npm run build` would write now, or null when it is:
 * every source the build includes has its .js, every .js in dist/ has its source, and no
 * source or tsconfig is newer than the oldest .js (tsc rewrites every output on each build).
 * `npm test` builds just before the tests, so there it is fresh.
 */
function staleDist(): string | null {
  const build = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { include: string[]; exclude: string[] };
  const excluded = new Set(build.exclude);
  const sources = build.include.flatMap((d) => walk(d, excluded)).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const outputs = walk('dist').filter((f) => f.endsWith('.js'));
  const sourceOf = (out: string): string => relative('dist', out).replace(/\.js$/, '.ts');
  const have = new Set(outputs.map(sourceOf));
  const missing = sources.find((f) => !have.has(f));
  if (missing) return `dist/ has no output for ${missing}`;
  const orphan = outputs.find((f) => !existsSync(join(repoRoot, sourceOf(f))));
  if (orphan) return `${orphan} has no source (left from an older build)`;
  const mtime = (f: string): number => statSync(join(repoRoot, f)).mtimeMs;
  const oldestOutput = Math.min(...outputs.map(mtime));
  const inputs = [...new Set([...sources, ...outputs.map(sourceOf)]), 'tsconfig.json', 'tsconfig.build.json'];
  const newer = inputs.find((f) => mtime(f) > oldestOutput);
  return newer ? `${newer} changed after dist/ was built` : null;
}

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
  t.equal(user.split(':')[0], manifestUser, "the manifests run as the image's user");
});

t.test('pack, install with --omit=dev into a temporary folder, run sluice help', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'sluice-image-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const src = join(tmp, 'src');
  const app = join(tmp, 'app');
  mkdirSync(src);
  mkdirSync(app);
  // npm, tsc and sluice run without tap's NODE_OPTIONS (its process-info loader, which
  // would follow every module they load: seconds of CPU, and none of it the image's).
  const env = { ...process.env, NODE_OPTIONS: '' };
  const quiet: ExecFileSyncOptionsWithStringEncoding = { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env };

  // Build stage: the package's files (package.json "files") in a folder of their own, with
  // dist/ as `npm run build` writes it, then pack. The work tree's dist/ when it is fresh
  // (npm test has just built it: compiling again cost ~13 s of CPU), else compiled here.
  for (const f of ['package.json', 'package-lock.json', 'README.md']) copyFileSync(join(repoRoot, f), join(src, f));
  cpSync(join(repoRoot, 'console/web'), join(src, 'console/web'), { recursive: true });
  const stale = staleDist();
  if (stale) {
    t.comment(`compiling: ${stale}`);
    execFileSync(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(src, 'dist')], quiet);
  } else {
    cpSync(join(repoRoot, 'dist'), join(src, 'dist'), { recursive: true });
  }
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

  const help = spawnSync(process.execPath, [join(app, 'dist/bin/sluice.js'), 'help'], { encoding: 'utf8', cwd: tmpdir(), env });
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /^usage: sluice <command>/);
  t.match(help.stdout, /get\s+get queues\|jobs\|nodes/, 'the CLI is in the image');
  const get = spawnSync(process.execPath, [join(app, 'dist/bin/sluice.js'), 'get', 'queues'], {
    encoding: 'utf8',
    cwd: tmpdir(),
    env: { PATH: process.env.PATH, HOME: tmp },
  });
  t.equal(get.status, 2);
  t.match(get.stderr, /^sluice: no admin API URL; pass --server URL or set SLUICE_API_URL/, 'a CLI error is one line, no stack');
});
