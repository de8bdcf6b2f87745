// End to end for the web console's sign-in and visibility on a real cluster: a Kubernetes
// ServiceAccount token pasted into the sign-in form, in a real browser (Debian's chromium
// through puppeteer-core), against the running sluice. sluice asks the apiserver who the
// token is (TokenReview) and where that user may list pods (SubjectAccessReview), so the
// user sees the jobs of those namespaces only; the admin token sees every namespace.
//
// Runs when KUBECONFIG points at a reachable cluster, the sluice admin API is given
// (SLUICE_E2E_API_URL, SLUICE_API_TOKEN; SLUICE_E2E_CA_FILE for its CA), kubectl is on PATH
// (`kubectl create token`, `kubectl auth can-i`) and chromium is installed (CHROMIUM_PATH,
// default /usr/bin/chromium); otherwise it reports itself skipped with the reason.
// SLUICE_E2E_KUBE_ADMIN_TOKEN_FILE (a Kubernetes token of a user in api.adminGroups) adds
// a sign-in with it: an admin through TokenReview, seeing every namespace. sluice
// must run with api.tokenReview on (the default with a cluster) and its ServiceAccount must
// may create tokenreviews and subjectaccessreviews (manifests/base/rbac.yaml).
//
// It creates two namespaces labelled sluice.io/managed=true, a queue with 1 guaranteed GPU,
// two one-GPU pods in each namespace (queued by sluice's webhooks: one may be released, the
// others wait), a ServiceAccount "viewer" with a Role to list pods in the first namespace
// only, and a ServiceAccount "nobody" without any. What each user may do is also asked of
// the apiserver (`kubectl auth can-i --as`), and the console must agree with it. Everything
// is removed at the end.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { CoreV1Api, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import type { Page } from 'puppeteer-core';
import { type El, go, launch, noChromium, open, text } from '../console/browser.js';
import { sluiceTarget, removeTestObjects, sluiceApi } from './cluster.js';

const RUN = Date.now().toString(36);
const SEEN = `sluice-e2e-c-a-${RUN}`;
const HIDDEN = `sluice-e2e-c-b-${RUN}`;
const QUEUE = `e2e-c-${RUN}`;

// Browser globals used inside page.evaluate callbacks (the project compiles without the DOM lib).
declare const document: { title: string };
declare const location: { hash: string };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function kubectl(args: readonly string[]): { code: number; out: string; err: string } {
  const r = spawnSync('kubectl', args, { encoding: 'utf8', env: process.env });
  return { code: r.status ?? 1, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

/**
 * The SPKI pin of the certificate sluice serves, read over TLS and verified against the CA
 * (SLUICE_E2E_CA_FILE, or the system's), for chromium's --ignore-certificate-errors-spki-list:
 * the browser then trusts that one key and nothing else it would not trust anyway.
 */
function servedKeyPin(url: URL, ca: Buffer | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: url.hostname, port: Number(url.port || 443), ca, servername: /^[\d.]+$/.test(url.hostname) ? undefined : url.hostname },
      () => {
        const raw = socket.getPeerCertificate().raw;
        socket.end();
        const spki = new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
        resolve(createHash('sha256').update(spki).digest('base64'));
      },
    );
    socket.on('error', reject);
  });
}

const target = await sluiceTarget({
  test: 'the console end-to-end test',
  cluster: 'sluice serving its web console with api.tokenReview on',
  kubectlFor: 'the test gets a ServiceAccount token with `kubectl create token`',
});
const { found, apiUrl, token, caFile } = target;
const skip = target.skip ?? (noChromium !== false ? noChromium : null);

if (skip !== null || 'skip' in found) {
  t.comment(`console end-to-end test skipped: ${skip}`);
  t.pass('skipped: no cluster, no sluice API or no browser', { skip: skip ?? 'no cluster' });
} else {
  const core = found.kc.makeApiClient(CoreV1Api);
  const rbac = found.kc.makeApiClient(RbacAuthorizationV1Api);
  const ca = caFile ? readFileSync(caFile) : undefined;
  const api = sluiceApi(apiUrl!, token!, ca);
  const base = new URL(apiUrl!);

  t.teardown(async () => {
    await removeTestObjects(core, SEEN, []);
    await removeTestObjects(core, HIDDEN, []);
    // A queue is deleted once no job uses it; the pods are gone by now.
    for (let i = 0; i < 20; i++) {
      const r = await api('DELETE', `/api/v1/queues/${QUEUE}`).catch(() => ({ status: 0 }));
      if (r.status === 204 || r.status === 200 || r.status === 404) break;
      await sleep(500);
    }
  });

  t.test('a ServiceAccount token sees the jobs of the namespaces it may list pods in; the admin token sees all', async (t) => {
    // ---- the cluster side: namespaces, a queue, pods, ServiceAccounts and RBAC -------------
    const put = await api('PUT', `/api/v1/queues/${QUEUE}`, { limits: [{ resource: 'nvidia.com/gpu', guaranteed: 1 }] });
    t.ok(put.status === 200 || put.status === 201, `queue ${QUEUE} created (${put.status})`);
    for (const ns of [SEEN, HIDDEN]) await core.createNamespace({ body: { metadata: { name: ns, labels: { 'sluice.io/managed': 'true' } } } });
    for (const ns of [SEEN, HIDDEN]) {
      for (const i of [1, 2]) {
        const pod: V1Pod = {
          metadata: { name: `c-${i}`, namespace: ns, labels: { 'sluice.io/queue': QUEUE } },
          spec: { containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', resources: { limits: { 'nvidia.com/gpu': '1' } } }] },
        };
        await core.createNamespacedPod({ namespace: ns, body: pod });
      }
    }
    for (const name of ['viewer', 'nobody']) await core.createNamespacedServiceAccount({ namespace: SEEN, body: { metadata: { name } } });
    await rbac.createNamespacedRole({
      namespace: SEEN,
      body: { metadata: { name: 'pod-lister' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: SEEN,
      body: {
        metadata: { name: 'viewer-lists-pods' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-lister' },
        subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: SEEN }],
      },
    });
    const tokenOf = (sa: string): string => {
      const r = kubectl(['create', 'token', sa, '-n', SEEN, '--duration', '10m']);
      if (r.code !== 0) throw new Error(`kubectl create token ${sa}: ${r.err}`);
      return r.out;
    };
    const viewerToken = tokenOf('viewer');
    const nobodyToken = tokenOf('nobody');
    const viewerUser = `system:serviceaccount:${SEEN}:viewer`;
    const nobodyUser = `system:serviceaccount:${SEEN}:nobody`;
    // What the apiserver says each may do: the console must agree.
    const canList = (user: string, ns: string): boolean => kubectl(['auth', 'can-i', 'list', 'pods', '-n', ns, '--as', user]).out === 'yes';
    t.same(
      [canList(viewerUser, SEEN), canList(viewerUser, HIDDEN), canList(nobodyUser, SEEN), canList(nobodyUser, HIDDEN)],
      [true, false, false, false],
      'RBAC as the apiserver answers it',
    );

    // The queue's four jobs, as the admin API lists them once sluice has seen the pods.
    type Jobs = { waiting: Array<{ namespace: string; name: string }>; running: Array<{ namespace: string; name: string }> };
    let jobs: Jobs = { waiting: [], running: [] };
    for (let i = 0; i < 60; i++) {
      const r = await api('GET', `/api/v1/queues/${QUEUE}/jobs`);
      if (r.status === 200) jobs = r.body as Jobs;
      if (jobs.waiting.length + jobs.running.length === 4) break;
      await sleep(500);
    }
    const all = [...jobs.waiting, ...jobs.running].map((j) => `${j.namespace}/${j.name}`).sort();
    t.equal(all.length, 4, `the admin API lists the queue's four jobs: ${all.join(', ')}`);
    const hiddenWaiting = jobs.waiting.filter((j) => j.namespace === HIDDEN).length;

    // ---- the browser -------------------------------------------------------------------------
    const args = base.protocol === 'https:' ? [`--ignore-certificate-errors-spki-list=${await servedKeyPin(base, ca)}`] : [];
    const chromium = await launch(args);
    t.teardown(() => chromium.close());
    /** The jobs of the test's queue on the Jobs page, waiting and running. */
    const shownJobs = async (page: Page): Promise<string[]> => {
      await page.evaluate(() => void (location.hash = '#/jobs'));
      await page.waitForFunction(() => document.title.startsWith('Jobs'), { timeout: 10000 });
      const rows = await page.$$eval(`table[data-queue="${QUEUE}"] tbody tr`, (trs) => trs.map((tr) => (tr as unknown as El).dataset.job ?? ''));
      return rows.sort();
    };

    const viewer = await open(chromium.browser, apiUrl!, viewerToken);
    t.equal(await text(viewer.page, '#user'), viewerUser, 'signed in as the ServiceAccount (TokenReview), not as an admin');
    t.same(
      await shownJobs(viewer.page),
      all.filter((j) => j.startsWith(`${SEEN}/`)),
      "the viewer sees its namespace's jobs and no other (SubjectAccessReview)",
    );
    const jobsText = await text(viewer.page, '#page');
    t.notMatch(jobsText, HIDDEN, 'no job of the other namespace is named');
    if (hiddenWaiting > 0)
      t.match(jobsText, new RegExp(`${hiddenWaiting} more waiting jobs? in namespaces you may not list pods in`), 'the hidden waiting jobs are only counted');
    const other = [...jobs.waiting, ...jobs.running].find((j) => j.namespace === HIDDEN)!;
    await go(viewer.page, `#/job/${HIDDEN}/${other.name}`, '#page .error');
    t.match(
      await text(viewer.page, '#page .error'),
      new RegExp(`may not list pods in namespace ${HIDDEN}`),
      'a job page of the other namespace is refused with the reason',
    );
    t.same(
      viewer.errors.filter((e) => !/403/.test(e)),
      [],
      'no console errors but the refused job page',
    );

    const nobody = await open(chromium.browser, apiUrl!, nobodyToken);
    t.equal(await text(nobody.page, '#user'), nobodyUser, 'a second ServiceAccount signs in too');
    t.same(await shownJobs(nobody.page), [], 'and, without RBAC, sees no job');

    const admin = await open(chromium.browser, apiUrl!, token!);
    t.match(await text(admin.page, '#user'), /\(admin\)$/, 'the admin token signs in as an admin');
    t.same(await shownJobs(admin.page), all, 'and sees the jobs of both namespaces');
    t.same(admin.errors, [], 'no console errors (admin)');

    const kubeAdminFile = process.env.SLUICE_E2E_KUBE_ADMIN_TOKEN_FILE;
    if (kubeAdminFile) {
      const kubeAdmin = await open(chromium.browser, apiUrl!, readFileSync(kubeAdminFile, 'utf8').trim());
      t.match(await text(kubeAdmin.page, '#user'), /\(admin\)$/, 'a Kubernetes user in api.adminGroups is an admin (TokenReview groups)');
      t.same(await shownJobs(kubeAdmin.page), all, 'and sees the jobs of both namespaces');
    }

    // The admin API itself stays admin-only for the ServiceAccount.
    const asViewer = sluiceApi(apiUrl!, viewerToken, ca);
    t.equal((await asViewer('GET', '/api/v1/queues')).status, 403, 'the viewer token is forbidden on the admin API (valid token, no admin)');
    t.same((await asViewer('GET', '/ui/api/whoami')).body, { user: viewerUser, admin: false }, 'and is a signed-in non-admin on the console');
  });
}
