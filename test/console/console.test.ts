// The web console in a real browser (Debian's chromium, driven by puppeteer-core): each
// page's numbers against the admin API, a pod change showing up live, what a non-admin
// Kubernetes user sees, no console errors, no serious accessibility violations (axe-core),
// and the first render of a 5,000-node, 40,000-GPU cluster. Skips when no chromium is
// installed (.ci/run installs it). SLUICE_CONSOLE_SCREENSHOTS=<dir> also saves screenshots.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import t from 'tap';
import type { Browser, Page } from 'puppeteer-core';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import { gpuPod } from '../helpers/k8s.js';
import { type El, go, launch, noChromium, open, text } from './browser.js';
import { ADMIN_TOKEN, H100, bigSnapshot, startScenario } from './scenario.js';

// Browser globals used inside page.evaluate callbacks (the project compiles without the DOM lib).
declare const document: { body: El; querySelector(s: string): El | null; querySelectorAll(s: string): ArrayLike<El> & Iterable<El> };
declare const location: { hash: string };
declare const window: unknown;

const SHOTS = process.env.SLUICE_CONSOLE_SCREENSHOTS ?? '';
const BIG_NODES = 5000;

const skip = noChromium;

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

async function axe(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    const r = await (
      window as unknown as { axe: { run(o: unknown): Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: unknown[] }> }> } }
    ).axe.run({ resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, n: v.nodes.length }));
  });
  return res.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}, ${v.n} nodes): ${v.help}`);
}

/** Screenshots at 1280 px and at a phone's width; `fullPhone`: the whole page on the phone (what is below the first screen matters). */
async function shoot(page: Page, name: string, o: { fullPhone?: boolean } = {}): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewport({ width, height: width > 600 ? 900 : 844 });
    await new Promise((r) => setTimeout(r, 150));
    await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`) as `${string}.png`, fullPage: width < 600 && o.fullPhone === true });
  }
  await page.setViewport({ width: 1280, height: 900 });
}

/** Free GPUs of a node's row, from the summary a screen reader reads ("…, 2 free"). */
const freeOn = (page: Page, node: string): Promise<number> =>
  page.$eval(`li[data-id="${node}|nvidia.com/gpu"] .sr`, (e) => Number(/(\d+) free/.exec(e.textContent ?? '')?.[1] ?? -1));
const FREE_IS = (node: string, n: number): boolean => {
  const sr = document.querySelector(`li[data-id="${node}|nvidia.com/gpu"] .sr`);
  return Number(/(\d+) free/.exec(sr?.textContent ?? '')?.[1] ?? -1) === n;
};

// One browser for both tests, started by the first: starting chromium is slow on a busy machine.
let started: ReturnType<typeof launch> | null = null;
const getBrowser = async (): Promise<Browser> => (await (started ??= launch())).browser;
t.teardown(async () => void (started && (await (await started).close())));

t.test('the console against the admin API, live, per user', { skip }, async (t) => {
  const browser = await getBrowser();
  const live = await startScenario();
  t.teardown(async () => {
    await live.close();
    await live.api.close();
  });
  const base = live.running.apiUrl;
  const adminApi = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    t.equal(r.status, 200, `GET ${path}`);
    return (await r.json()) as T;
  };

  const admin = await open(browser, base, ADMIN_TOKEN);
  const { page } = admin;

  // ---- Cluster: totals against GET /api/v1/nodes ------------------------------------------
  await go(page, '#/cluster', '#totals [data-k=gpus]');
  const nodes = (await adminApi<{ items: Array<{ name: string; total: number; free: number; used: number; health: string; reason: string }> }>('/api/v1/nodes'))
    .items;
  const fig = async (k: string): Promise<number> => Number(await page.$eval(`#totals [data-k=${k}] .v`, (e) => e.textContent));
  const healthy = nodes.filter((n) => n.health === 'healthy');
  t.equal(await fig('nodes'), nodes.length, 'GPU nodes');
  t.equal(
    await fig('gpus'),
    nodes.reduce((a, n) => a + n.total, 0),
    'GPUs',
  );
  t.equal(
    await fig('free'),
    healthy.reduce((a, n) => a + n.free, 0),
    'free GPUs of healthy nodes',
  );
  t.equal(
    await fig('whole'),
    healthy.reduce((a, n) => a + n.used, 0),
    'GPUs in use, whole',
  );
  t.equal(
    await fig('unhealthy'),
    nodes.filter((n) => n.health !== 'healthy').reduce((a, n) => a + n.total, 0),
    'GPUs of unhealthy nodes',
  );
  const bad = nodes.find((n) => n.name === 'bad1')!;
  t.match(await text(page, 'li[data-id="bad1|nvidia.com/gpu"]'), bad.reason, 'the unhealthy node shows its reason');
  t.ok((await fig('stranded')) >= 0, 'a stranded figure is shown');
  t.same(
    await page.$$eval('.group h2', (hs) => hs.map((h) => h.textContent)),
    ['NVIDIA-A100-SXM4-80GB nvidia.com/gpu', 'NVIDIA-H100-80GB-HBM3 nvidia.com/gpu'],
    'grouped by model',
  );
  t.same(await axe(page), [], 'cluster page: no serious accessibility violations');
  await shoot(page, 'cluster');

  // ---- live: a pod bound on h1 shows within a second, and only h1's row is redrawn --------
  await page.evaluate(() => {
    for (const li of document.querySelectorAll('li.node')) (li as El)._kept = true;
  });
  const h1Free = (): Promise<number> => freeOn(page, 'h1');
  const before = await h1Free();
  const started = Date.now();
  live.api.create('pods', gpuPod('notebook', { node: 'h1', gpus: 1 }));
  await page.waitForFunction(FREE_IS, { timeout: 3000 }, 'h1', before - 1);
  const liveMs = Date.now() - started;
  t.ok(liveMs < 1000, `the pod shows on the open cluster page within a second (${liveMs} ms)`);
  t.equal(await h1Free(), before - 1);
  const kept = await page.$$eval('li.node', (lis) => lis.filter((li) => (li as El)._kept).map((li) => (li as unknown as El).dataset.id));
  t.same(
    kept.sort(),
    ['bad1|nvidia.com/gpu', 'g1|nvidia.com/gpu', 'g2|nvidia.com/gpu', 'h1|nvidia.com/gpu'],
    'rows are patched in place: no row element was replaced',
  );

  // ---- Queues, per GPU model: against /api/v1/queues/:name/usage and /jobs ------------------
  await go(page, '#/queues', '#queues tbody tr');
  const queues = (await adminApi<{ items: Array<{ name: string }> }>('/api/v1/queues')).items;
  type Usage = {
    byModel: Array<{ resource: string; model: string; guaranteed: number; bestEffort: number }>;
    limits: Array<{ resource: string; model: string; guaranteed: number; bestEffortCap: number }>;
  };
  for (const q of queues.filter((x) => x.name !== 'default')) {
    const usage = await adminApi<Usage>(`/api/v1/queues/${q.name}/usage`);
    const jobs = await adminApi<{ waiting: unknown[] }>(`/api/v1/queues/${q.name}/jobs`);
    t.equal((await page.$$(`#queues tr[data-queue="${q.name}"]`)).length, usage.limits.length, `${q.name}: a line per quota row (resource and model)`);
    for (const l of usage.limits) {
      const sel = `#queues tr[data-queue="${q.name}"][data-resource="${l.resource}"][data-model="${l.model}"]`;
      const cell = (k: string): Promise<number> => page.$eval(`${sel} [data-v=${k}]`, (e) => Number(e.textContent));
      // The scenario's rows name full products, so a row holds the pods on nodes of exactly its model ('' = every model).
      const on = usage.byModel.filter((u) => u.resource === l.resource && (l.model === '' || u.model === l.model));
      const what = `${q.name}, ${l.model || 'any model'}`;
      t.equal(await cell('guaranteedQuota'), l.guaranteed, `${what}: guaranteed quota`);
      t.equal(await cell('bestEffortCap'), l.bestEffortCap, `${what}: best-effort cap`);
      t.equal(
        await cell('guaranteedHeld'),
        on.reduce((a, u) => a + u.guaranteed, 0),
        `${what}: guaranteed GPUs held`,
      );
      t.equal(
        await cell('bestEffortHeld'),
        on.reduce((a, u) => a + u.bestEffort, 0),
        `${what}: best-effort GPUs held`,
      );
    }
    t.equal(
      Number(await page.$eval(`#queues tr[data-queue="${q.name}"] [data-k=waiting]`, (e) => e.textContent)),
      jobs.waiting.length,
      `${q.name}: waiting jobs`,
    );
  }
  const researchH100 = `#queues tr[data-queue="research"][data-model="${H100}"]`;
  t.equal(
    Number(await page.$eval(`${researchH100} [data-k=borrowed]`, (e) => e.textContent)),
    1,
    'research holds 2 H100s on an H100 quota of 1: 1 borrowed from its cohort',
  );
  t.equal(
    Number(await page.$eval(`#queues tr[data-queue="research"][data-model="NVIDIA-A100-SXM4-80GB"] [data-k=borrowed]`, (e) => e.textContent)),
    0,
    'and nothing on its A100 row',
  );
  t.same(await axe(page), [], 'queues page: no serious accessibility violations');
  await shoot(page, 'queues', { fullPhone: true });

  // ---- Jobs: release order, positions and reasons as the API says --------------------------
  await go(page, '#/jobs', 'table.waiting');
  for (const q of ['prod', 'research']) {
    const api = await adminApi<{
      waiting: Array<{ namespace: string; name: string; position: number; reason: string }>;
      running: Array<{ namespace: string; name: string }>;
    }>(`/api/v1/queues/${q}/jobs`);
    const shown = await page.$$eval(`table.waiting[data-queue="${q}"] tbody tr`, (trs) =>
      trs.map((tr) => ({
        job: (tr as unknown as El).dataset.job,
        position: Number(tr.querySelector('[data-k=position]')!.textContent),
        reason: tr.querySelector('[data-k=reason]')!.textContent,
      })),
    );
    t.same(
      shown,
      api.waiting.map((w) => ({ job: `${w.namespace}/${w.name}`, position: w.position, reason: w.reason })),
      `${q}: waiting jobs, positions and reasons`,
    );
    const running = await page.$$eval(`table.running[data-queue="${q}"] tbody tr`, (trs) => trs.map((tr) => (tr as unknown as El).dataset.job));
    t.same(
      running,
      api.running.map((r) => `${r.namespace}/${r.name}`),
      `${q}: running jobs`,
    );
  }
  t.same(await axe(page), [], 'jobs page: no serious accessibility violations');
  await shoot(page, 'jobs');

  // live on the jobs page: a new waiting job appears without a reload
  live.submit('late', { queue: 'prod', gpus: 8, user: 'alice' });
  await page.waitForSelector('table.waiting[data-queue="prod"] tr[data-job="team-a/pod-late"]', { timeout: 5000 });
  t.pass('a newly submitted job shows on the open jobs page');

  // ---- a job's page ------------------------------------------------------------------------
  await go(page, '#/job/team-a/pod-train', '#pods');
  const train = await adminApi<{ state: string; pods: Array<{ name: string; node: string }> }>('/api/v1/jobs/team-a/pod-train');
  t.equal(await text(page, '[data-k=state]'), train.state, 'job state');
  t.same(
    await page.$$eval('#pods [data-k=node]', (tds) => tds.map((td) => td.textContent)),
    train.pods.map((p) => p.node),
    'its pods and nodes',
  );
  t.match(await text(page, 'ol.timeline'), /Released by the queue/, 'history: released');
  t.same(await axe(page), [], 'job page: no serious accessibility violations');
  await shoot(page, 'job');
  await go(page, '#/job/team-a/pod-g-keep', '#pods');
  t.match(await text(page, 'ol.timeline'), /Pod g-keep: bind to g9 failed: the node is gone/, "a job's history shows its failed bind");

  // ---- Activity: the preemption and the releases --------------------------------------------
  await go(page, '#/activity', '#activity');
  const activity = await text(page, '#activity');
  t.match(activity, /preempted.*team-a\/pod-train/s, 'the preemption, by train');
  t.match(activity, /team-a\/be-d/, 'its victims');
  t.match(activity, /released.*team-a\/pod-big|released/s, 'releases');
  // Failed binds: one entry per row of bind_failures, as recorded.
  const failures = (
    await live.store.pool.query<{ namespace: string; job: string; node: string }>(`SELECT namespace, job, node FROM bind_failures ORDER BY last_at DESC`)
  ).rows;
  const shownFailures = await page.$$eval('#activity > li[data-kind=bind_failed]', (lis) => lis.map((li) => (li as unknown as El).innerText));
  t.equal(shownFailures.length, failures.length, 'every failed bind recorded is on the timeline');
  for (const [i, f] of failures.entries()) t.match(shownFailures[i], `${f.namespace}/${f.job}`, `failed bind of ${f.namespace}/${f.job} on ${f.node}`);
  t.match(activity, /bind failed\s+team-a\/pod-g-keep \(pod g-keep, queue prod\): bind to g9 failed: the node is gone/, 'the bind to a node that is gone');
  t.match(
    activity,
    /bind failed\s+team-b\/pod-b-run \(pod b-run, queue research\): bind to bad1 refused by the re-check: .*NotReady/,
    'the bind to a NotReady node',
  );
  t.same(await axe(page), [], 'activity page: no serious accessibility violations');
  await shoot(page, 'activity');
  t.same(admin.errors, [], 'no console errors (admin)');

  // ---- a Kubernetes user who may list pods in team-a only ----------------------------------
  const alice = await open(browser, base, 'alice-token');
  t.match(await text(alice.page, '#user'), /^alice$/, 'signed in as alice, not an admin');
  await go(alice.page, '#/jobs', 'table.waiting');
  const jobsText = await text(alice.page, '#page');
  t.match(jobsText, /team-a\/pod-big/, "her namespace's waiting job");
  t.notMatch(jobsText, /team-b|b-wait|b-run/, 'nothing of team-b');
  t.match(jobsText, /1 more waiting job in namespaces you may not list pods in/, 'but how many others wait');
  await shoot(alice.page, 'jobs-alice');
  await go(alice.page, '#/cluster', '#totals [data-k=gpus]');
  t.equal(
    Number(await alice.page.$eval('#totals [data-k=gpus] .v', (e) => e.textContent)),
    nodes.reduce((a, n) => a + n.total, 0),
    'the cluster map, like an admin',
  );
  await go(alice.page, '#/queues', '#queues tbody tr');
  t.equal(await alice.page.$eval(`${researchH100} [data-v=guaranteedHeld]`, (e) => e.textContent), '2', "queue totals, including team-b's");
  await go(alice.page, '#/activity', '#activity');
  const aliceActivity = await text(alice.page, '#page');
  t.notMatch(aliceActivity, /team-b|b-run/, 'no team-b names in the activity');
  t.match(aliceActivity, /bind to g9 failed/, "her namespace's failed bind");
  t.same(alice.errors, [], 'no console errors (alice)');
  const asAlice = (path: string) => fetch(`${base}${path}`, { headers: { authorization: 'Bearer alice-token' } });
  const other = await asAlice('/ui/api/v1/jobs/team-b/pod-b-wait');
  t.equal(other.status, 403, 'a job of another namespace is refused');
  t.match(((await other.json()) as { message: string }).message, /may not list pods in namespace team-b/);
  t.equal((await asAlice('/api/v1/queues')).status, 403, 'the admin API itself stays admin-only (403: her token is valid, she is no admin)');
  const olga = await fetch(`${base}/ui/api/whoami`, { headers: { authorization: 'Bearer ops-token' } });
  t.same(await olga.json(), { user: 'olga', admin: true }, 'a Kubernetes user in api.adminGroups is an admin');
  t.equal((await fetch(`${base}/ui/api/whoami`, { headers: { authorization: 'Bearer nobody' } })).status, 401, 'an unknown token is refused');

  // ---- files: CSP, and nothing outside the fixed set ----------------------------------------
  const index = await fetch(`${base}/ui/`);
  t.match(index.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/, 'a strict CSP');
  for (const p of ['/ui/..%2fpackage.json', '/ui/%2e%2e%2fpackage.json', '/ui/../package.json', '/ui/routes.ts', '/ui/web%2fapp.js']) {
    const r = await fetch(`${base}${p}`);
    t.not(r.status, 200, `${p} is not served`);
  }
});

t.test(`first render of ${BIG_NODES} nodes (${BIG_NODES * 8} GPUs) and a live update of one`, { skip }, async (t) => {
  const browser = await getBrowser();
  const file = bigSnapshot(BIG_NODES);
  const config = loadConfig({
    env: {},
    base: {
      logLevel: 'warn',
      clusterSnapshot: file,
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: '' },
      api: { token: ADMIN_TOKEN, tokenReview: false },
    },
  });
  const running = await serve(config, { log: createLogger('silent') });
  t.teardown(async () => {
    await running.close();
    rmSync(dirname(file), { recursive: true, force: true });
  });
  const { page, errors } = await open(browser, running.apiUrl, ADMIN_TOKEN);
  const times: number[] = [];
  const complete: number[] = [];
  for (let i = 0; i < 3; i++) {
    // From the moment the page is asked for until the map is drawn: fetch, parse, DOM, layout.
    await page.evaluate(() => {
      delete document.body.dataset.clusterRendered;
      delete document.body.dataset.clusterComplete;
      location.hash = '#/queues';
    });
    await page.waitForSelector('#queues, .error', { timeout: 10000 });
    await page.evaluate(() => void (location.hash = '#/cluster'));
    // The page's own clock, from the hash change (the fetch included) to the frame with the
    // map painted; then to the last row drawn.
    await page.waitForFunction(() => document.body.dataset.clusterRendered !== undefined, { timeout: 20000 });
    times.push(Number(await page.evaluate(() => document.body.dataset.clusterRendered)));
    await page.waitForFunction(() => document.body.dataset.clusterComplete !== undefined, { timeout: 20000 });
    complete.push(Number(await page.evaluate(() => document.body.dataset.clusterComplete)));
  }
  const best = Math.min(...times);
  t.comment(`cluster page, ${BIG_NODES} nodes: first render ${times.join(', ')} ms (best ${best} ms); every row drawn ${complete.join(', ')} ms`);
  t.ok(best < 1000, `the 5,000-node map draws in under a second (${best} ms)`);
  t.equal(Number(await page.$eval('#totals [data-k=gpus] .v', (e) => e.textContent)), BIG_NODES * 8, 'every GPU is on the map');
  await shoot(page, 'cluster-5000');

  await page.evaluate(() => {
    for (const li of document.querySelectorAll('li.node')) (li as El)._kept = true;
  });
  const target = 'node-00008';
  const freeOf = (): Promise<number> => freeOn(page, target);
  const before = await freeOf();
  t.ok(before > 0, 'the node has a free GPU');
  const started = Date.now();
  running.cache.upsertPod(gpuPod('late', { node: target, gpus: 1 }));
  await page.waitForFunction(FREE_IS, { timeout: 3000 }, target, before - 1);
  t.comment(`live update at ${BIG_NODES} nodes: ${Date.now() - started} ms`);
  const replaced = await page.$$eval('li.node', (lis) => lis.filter((li) => !(li as El)._kept).length);
  t.equal(replaced, 0, "no row element replaced: only the changed row's content was redrawn");
  t.same(errors, [], 'no console errors');
});
