// `npm run demo` (issue 19): the real sluice on the example snapshot, its queue manager on
// the in-memory cluster, the scripted morning. Each of the four steps must really happen in
// the run (the timeline holds what sluice answered and did), so a change that breaks quota
// waits, ETAs, releases, the reclaim or gangs fails here. Needs Postgres, as the demo does.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import pg from 'pg';
import { checkSteps } from '../../demo/checks.js';
import { DemoError, runDemo } from '../../demo/run.js';
import { hhmm, type JobTrack } from '../../demo/timeline.js';
import { DATABASE_URL } from '../store/helpers.js';
import { repoRoot } from '../helpers/k8s.js';

const schema = `sluice_demo_t${Math.random().toString(36).slice(2, 8)}`;
const out = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
t.teardown(async () => {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
});

// No PNG here (chromium is slow to start on a loaded machine): the picture is the SVG.
const run = await runDemo({
  snapshot: resolve(repoRoot, 'examples/cluster-snapshot.json'),
  out,
  storeUrl: DATABASE_URL,
  storeSchema: schema,
  chromium: '/nonexistent/chromium',
});
const tl = run.timeline;
const job = (k: string): JobTrack => {
  const j = tl.jobs.find((x) => x.job === k);
  if (!j) throw new Error(`no job ${k} in the timeline`);
  return j;
};
const at = (hh: number, mm: number): number => {
  const d = new Date(tl.startMs);
  d.setUTCHours(hh, mm, 0, 0);
  return d.getTime();
};

t.test('every step of the scenario happened', async (t) => {
  const checks = checkSteps(tl);
  t.same(
    checks.map((c) => c.step),
    [1, 2, 3, 4],
  );
  for (const c of checks) t.ok(c.ok, `step ${c.step}: ${c.why}`);
  t.ok(run.ok);
});

t.test('1. over quota: the warning kubectl prints and the admin API give the ETA', async (t) => {
  const ft2 = job('team-a/ft-2');
  t.match(
    ft2.warnings[0],
    /^queued in team-a: 8 of 8 guaranteed nvidia\.com\/gpu in use, job needs 2, position 1 of 1; expected start in about 30 min \(from 1 declared duration; 4 of unknown duration taken as never ending\)$/,
  );
  t.same([ft2.atSubmit?.state, ft2.atSubmit?.waitingFor], ['queued', 'quota']);
  t.equal(ft2.atSubmit?.etaMs, at(9, 30), 'ft-1 (30m from 09:00) ends at 09:30');
  const ft3 = job('team-a/ft-3');
  t.match(ft3.warnings[0], /position 2 of 2; expected start in about 50 min/);
  t.equal(ft3.atSubmit?.etaMs, at(9, 50), 'then ft-2 runs 20 minutes');
});

t.test('2. capacity frees: each waiting job released when the one before it finished, as its ETA said', async (t) => {
  t.equal(job('team-a/ft-1').pods[0]!.endedMs, at(9, 30));
  t.equal(job('team-a/ft-2').pods[0]!.releasedMs, at(9, 30));
  t.ok(job('team-a/ft-2').pods[0]!.node, 'and bound by the extender');
  t.equal(job('team-a/ft-3').pods[0]!.releasedMs, at(9, 50));
});

t.test('3. the best-effort sweep is reclaimed for the guaranteed eval, and sluice recorded it', async (t) => {
  const sweep = job('research/sweep');
  t.same([sweep.qos, sweep.endedHow, sweep.reclaimedFor], ['best-effort', 'reclaimed', 'team-b/eval']);
  t.equal(sweep.apiAfterReclaim?.state, 'preempted');
  t.match(sweep.apiAfterReclaim?.preemptedBy, /team-b\/eval/);
  const evalJob = job('team-b/eval');
  t.equal(evalJob.pods[0]!.node, sweep.pods[0]!.node, 'eval runs where the sweep ran');
  t.equal(job('team-b/pod-infer-1').endedHow, null, "team-b's own guaranteed infer-1 on that node is untouched");
  const kinds = tl.events.filter((e) => e.step === 3).map((e) => `${e.kind} ${e.job}`);
  t.ok(
    kinds.indexOf('release team-b/eval') < kinds.indexOf('reclaim research/sweep') &&
      kinds.indexOf('reclaim research/sweep') < kinds.indexOf('bind team-b/eval'),
    `released, then the victim goes, then bound: ${kinds.join('; ')}`,
  );
});

t.test('4. the gang waits whole and starts whole', async (t) => {
  const gang = job('team-b/dist-train');
  t.equal(gang.pods.length, 2);
  t.match(gang.warnings[0], /a gang of 2; released when all 2 pods exist and fit/);
  t.same(
    gang.pods.map((p) => p.releasedMs),
    [at(10, 20), at(10, 20)],
    'both pods released when big-h100 ended, not before',
  );
  t.same(
    gang.pods.map((p) => p.node),
    ['h100-1', 'h100-1'],
  );
});

t.test('the files: the timeline as text, data and picture', async (t) => {
  const text = readFileSync(run.files.txt, 'utf8');
  for (const s of ['1. Jobs over quota wait', '2. Capacity frees', '3. A best-effort job is reclaimed', '4. A gang starts whole']) t.match(text, s);
  t.match(text, `${hhmm(at(9, 30))}  team-a/ft-2 released by the queue manager`);
  const svg = readFileSync(run.files.svg, 'utf8');
  t.match(svg, /^<svg /);
  t.match(svg, /reclaimed for team-b\/eval/);
  t.match(svg, /gang starts whole/);
  t.same(JSON.parse(readFileSync(run.files.json, 'utf8')).timeline.events.length, tl.events.length);
  t.equal(run.files.png, null);
  t.match(run.pngSkipped, /no chromium at \/nonexistent\/chromium/);
  t.ok(existsSync(run.files.log), "sluice's own log");
});

t.test('Postgres down, or a schema the demo would empty: it says what to do and starts nothing', async (t) => {
  const o = { snapshot: resolve(repoRoot, 'examples/cluster-snapshot.json'), out, storeSchema: schema, chromium: '/nonexistent/chromium' };
  await t.rejects(
    runDemo({ ...o, storeUrl: 'postgres://postgres@127.0.0.1:1/test' }),
    new DemoError(
      'the demo keeps its queues and quotas in PostgreSQL and cannot reach it at postgres://postgres@127.0.0.1:1/test (ECONNREFUSED); start PostgreSQL or point --store-url (or DATABASE_URL) at one. Redis is not needed: in snapshot mode the queue manager releases jobs in memory',
    ),
  );
  await t.rejects(runDemo({ ...o, storeUrl: DATABASE_URL, storeSchema: 'public' }), {
    name: 'DemoError',
    message: /--store-schema public: .* only uses schemas named sluice_demo/,
  });
});
