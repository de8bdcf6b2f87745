// --help on every command and bench entry point, --version, and unknown flags that name the
// closest known one (issue 21 item 3). The commands run as processes from the build (dist/,
// which `npm test` builds first), as a user runs them; --help must print and exit, never start the work.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseArgs } from '../../bench/simulate/main.js';
import { certsCommand, parseGenerateArgs } from '../../certs/cli.js';
import { cliCommand } from '../../cli/commands.js';
import { CONFIG_KEYS } from '../../config/load.js';
import { repoRoot, sharedPath } from '../helpers/shared.js';

if (!existsSync(join(repoRoot, 'dist/bin/sluice.js'))) throw new Error('no dist/: run npm run build first (npm test does)');

function run(script: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return runWith([], join('dist', script.replace(/\.ts$/, '.js')), args);
}

function runWith(nodeFlags: string[], script: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeFlags, join(repoRoot, script), ...args], {
      cwd: repoRoot,
      env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: '' },
    }); // without tap's TypeScript loader
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const sluice = (...args: string[]) => run('bin/sluice.ts', args);

t.test('sluice --version and sluice version print the version of package.json', async (t) => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const [a, b] = await Promise.all([sluice('--version'), sluice('version')]);
  t.same([a.code, a.out], [0, `sluice ${version}\n`]);
  t.same([b.code, b.out], [0, `sluice ${version}\n`]);
});

t.test('sluice serve --help: every config key with its default and meaning', async (t) => {
  const r = await sluice('serve', '--help');
  t.equal(r.code, 0, 'help, not "flag --help needs a value"');
  for (const k of CONFIG_KEYS) {
    const line = r.out.split('\n').find((l) => l.startsWith(`  ${k.flag} `));
    t.ok(line, `${k.flag} listed`);
    const text = r.out.slice(r.out.indexOf(`  ${k.flag} `)).split('\n  --')[0]!;
    t.match(text, `(default: ${k.default})`, `${k.flag}: its default`);
    t.match(text, `[${k.path.join('.')}, ${k.env}]`, `${k.flag}: its key and env name`);
    t.ok(k.description.length > 10, `${k.flag}: one line of meaning`);
  }
  const help = await sluice('help', 'serve');
  t.equal(help.out, r.out, 'sluice help serve is the same text');
});

t.test('every subcommand answers --help with its flags', async (t) => {
  const out = async (f: (w: NodeJS.WritableStream) => Promise<number> | number): Promise<[number, string]> => {
    let text = '';
    const w = { write: (c: string) => ((text += c), true) } as unknown as NodeJS.WritableStream;
    const code = await f(w);
    return [code, text];
  };
  const cases: Array<[string, (w: NodeJS.WritableStream) => Promise<number> | number, RegExp]> = [
    ['certs --help', (w) => certsCommand(['--help'], w), /^usage: sluice certs generate/],
    ['certs generate --help', (w) => certsCommand(['generate', '--help'], w), /--ca-days N\s+days a new CA is valid \(default: 3650\)/],
    ['get --help', (w) => cliCommand(['get', '--help'], w, {}), /-o, --output wide\|json\|yaml\s+output format/],
    ['describe --help', (w) => cliCommand(['describe', '--help'], w, {}), /^usage: sluice describe job NAMESPACE\/NAME/],
    ['apply --help', (w) => cliCommand(['apply', '--help'], w, {}), /-f, --filename FILE\s+the queue file/],
  ];
  for (const [what, f, re] of cases) {
    const [code, text] = await out(f);
    t.equal(code, 0, `sluice ${what}: exit 0`);
    t.match(text, re, `sluice ${what}: its text`);
  }
  await t.rejects(cliCommand(['get', 'queues', '--outptu', 'json'], process.stdout, {}), { message: /unknown flag --outptu \(did you mean --output\?\)/ });
  t.throws(() => parseGenerateArgs(['--namespce', 'x']), { message: /unknown flag --namespce \(did you mean --namespace\?\)/ });
});

t.test('unknown flags and commands of sluice are errors naming the closest known one', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--help'], /^$/],
    [['serve', '--http-prot', '8080'], /unknown flag --http-prot \(did you mean --http-port\?\)/],
    [['serv'], /unknown command "serv" \(did you mean serve\?\)/],
    [['get', 'queus'], /unknown command "get queus" \(did you mean queues\?\)/],
    [['certs', 'generat'], /unknown command "generat" \(did you mean generate\?\)/],
  ];
  const results = await Promise.all(cases.map(([args]) => sluice(...args)));
  t.equal(results[0]!.code, 0);
  t.match(results[0]!.out, /^usage: sluice <command>/);
  cases.slice(1).forEach(([args, re], i) => {
    t.equal(results[i + 1]!.code, 2, `sluice ${args.join(' ')}: exit 2`);
    t.match(results[i + 1]!.err, re, `sluice ${args.join(' ')}: names it`);
    t.notMatch(results[i + 1]!.err, /\n\s+at /, 'no stack trace');
  });
});

/** Every entry point a user runs: the bench/simulate/replay npm scripts (read from package.json,
 * so a new one is covered the day it is added) and the scripts the docs tell people to run with node. */
function entryPoints(): Array<{ name: string; node: string[] }> {
  const { scripts } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const fromNpm = Object.entries(scripts)
    .filter(([name]) => /^(bench|simulate|replay|demo)/.test(name))
    .map(([name, cmd]) => {
      // npm appends `-- ARGS` to the end of the script: only a script that ends in one node
      // command passes them on (`a && b -- --help` ran all of a before b saw --help).
      const m = /^npm run build --silent *[;&]+ *node ((?:--[\w-]+=\S+ )*)(dist\/\S+\.js)$/.exec(cmd);
      return { name: `npm run ${name}`, node: m ? [...m[1]!.trim().split(' ').filter(Boolean), m[2]!] : [`unparsed script: ${cmd}`] };
    });
  const direct = ['bench/cluster/profile-summary.js', 'bench/cluster/share-binds.js', 'bench/baseline-server.js', 'bench/simulate/replot.js'];
  return [...fromNpm, ...direct.map((f) => ({ name: `node dist/${f}`, node: [`dist/${f}`] }))];
}

t.test('every bench, simulate and replay entry point: --help prints and exits 0; an unknown flag names the closest', async (t) => {
  const points = entryPoints();
  t.ok(points.length >= 12, `found the entry points (${points.map((p) => p.name).join(', ')})`);
  // Four at a time: each is a node process loading its module graph.
  const check = async (p: (typeof points)[number]): Promise<void> => {
    t.notMatch(p.node[0]!, /^unparsed/, `${p.name}: the script ends in one node command, so -- ARGS reach it`);
    const script = p.node.find((a) => a.startsWith('dist/'));
    if (!script) return;
    const nodeFlags = p.node.filter((a) => a !== script);
    const help = await runWith(nodeFlags, script, ['--help']);
    t.equal(help.code, 0, `${p.name} --help: exit 0`);
    t.match(help.out, /^usage: /, `${p.name} --help: usage first`);
    t.match(help.out, /\n {2}-h, --help +show this text\n/, `${p.name} --help: the flags, aligned`);
    t.equal(help.err, '', `${p.name} --help: nothing started (no progress on stderr)`);
    // A typo of its first flag (or, with none, a made-up one): exit 2 and the closest named.
    const first = /\nflags:\n {2}(?:-\w, )?(--[\w-]+)/.exec(help.out)?.[1] ?? '--help';
    const typo = first === '--help' ? '--nonsense' : `${first}x`;
    const bad = await runWith(nodeFlags, script, [typo, '1']);
    t.equal(bad.code, 2, `${p.name} ${typo}: exit 2`);
    t.match(bad.err, first === '--help' ? `unknown flag ${typo}` : `unknown flag ${typo} (did you mean ${first}?)`, `${p.name} ${typo}: named`);
    t.notMatch(bad.err, /\n\s+at /, `${p.name} ${typo}: no stack trace`);
  };
  const queue = [...points];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let p = queue.shift(); p; p = queue.shift()) await check(p);
    }),
  );
  t.match(
    (await runWith([], 'dist/bench/simulate/main.js', ['--help'])).out,
    /--seeds N\s+seeds per policy and pod list \(default: 10\)/,
    'the simulator lists its flags with defaults',
  );
  t.match(
    (await runWith([], 'dist/demo/main.js', ['--help'])).out,
    /--store-schema NAME\s+schema the demo empties and uses .*\(default: sluice_demo\)/,
    'npm run demo --help: its flags with defaults, and it starts nothing',
  );
  const seed = await runWith([], 'dist/bench/simulate/main.js', ['--seed', '1']);
  t.match(seed.err, /unknown flag --seed \(did you mean --seeds\?\)/);
});

t.test('the simulator reads --flag=value', async (t) => {
  const data = sharedPath('data/openb');
  t.equal(parseArgs([`--data=${data}`, '--seeds=2']).seeds, 2, '--seeds=2 is 2 seeds, not silently 10');
  t.throws(() => parseArgs([`--data=${data}`, '--quick=yes']), /flag --quick takes no value/);
});

t.test('killing `npm start` stops sluice too (the start script execs node)', async (t) => {
  const npm = spawn(
    'npm',
    ['start', '--', '--cluster-snapshot', 'examples/cluster-snapshot.json', '--https-port', '0', '--http-port', '0', '--store-url', ''],
    {
      cwd: repoRoot,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.teardown(() => void npm.kill('SIGTERM')); // when the test fails or is cut short
  let out = '';
  npm.stdout.on('data', (c: Buffer) => (out += c.toString()));
  for (let i = 0; i < 600 && !out.includes('sluice is serving'); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(out, /sluice is serving/);
  const child = Number(
    execFileSync('pgrep', ['-P', String(npm.pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')[0],
  );
  t.match(readFileSync(`/proc/${child}/cmdline`, 'utf8'), /^node\0dist\/bin\/sluice\.js\0serve/, "npm's child is node itself, no shell between");
  npm.kill('SIGTERM');
  let alive = true;
  for (let i = 0; i < 300 && alive; i++) {
    await new Promise((r) => setTimeout(r, 100));
    alive = existsSync(`/proc/${child}`) && !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z ');
  }
  t.notOk(alive, 'sluice exited with npm');
});
