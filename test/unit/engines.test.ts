// The Node versions sluice promises (package.json engines, the README's requirements line) are
// ones every installed package accepts, so `npm install` never warns EBADENGINE on a version we
// name. The promise was 20.12+ while tap's c8 and yargs need 20.19 (or 22.12) and client-node's
// jsep 20.16. semver is read from node_modules (npm's own range rules; a dependency of tap and
// aws-cdk-lib, not one of ours).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/shared.js';

const semver = createRequire(join(repoRoot, 'package.json'))('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
  validRange(range: string): string | null;
};
const ours = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
/** The lowest version of each alternative: ^20.19 || ^22.12 || ^24 -> 20.19.0, 22.12.0, 24.0.0. */
const floors = ours.split('||').map((alt) => semver.minVersion(alt.trim())!.version);

function* installed(dir: string): Generator<{ name: string; node: string }> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.name.startsWith('@')) {
      yield* installed(p);
      continue;
    }
    const pj = join(p, 'package.json');
    if (existsSync(pj)) {
      const j = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string; engines?: { node?: unknown } };
      if (typeof j.engines?.node === 'string' && semver.validRange(j.engines.node)) yield { name: `${j.name}@${j.version}`, node: j.engines.node };
    }
    if (existsSync(join(p, 'node_modules'))) yield* installed(join(p, 'node_modules'));
  }
}

t.test('every installed package accepts the lowest Node version of each range we promise', async (t) => {
  t.same(
    floors.map((v) => v.split('.')[0]),
    ['20', '22', '24'],
    `engines.node ${ours} names Node 20, 22 and 24`,
  );
  const refused: string[] = [];
  let checked = 0;
  for (const pkg of installed(join(repoRoot, 'node_modules'))) {
    checked++;
    for (const v of floors) if (!semver.satisfies(v, pkg.node)) refused.push(`${pkg.name} wants node ${pkg.node}, not ${v}`);
  }
  t.ok(checked > 100, `read the installed packages (${checked} with engines.node)`);
  t.same(refused, [], 'no package refuses a version we name');
});

t.test("the README's requirements line says the same versions", async (t) => {
  const line = /^Requirements: Node\.js ([^;]+);/m.exec(readFileSync(join(repoRoot, 'README.md'), 'utf8'))?.[1];
  t.ok(line, 'the README names its Node versions');
  const said = [...(line ?? '').matchAll(/(\d+(?:\.\d+)?)\+?/g)].map((m) => (m[1]!.includes('.') ? `${m[1]}.0` : `${m[1]}.0.0`));
  t.same(said, floors, `README "${line}" = engines.node ${ours}`);
});
