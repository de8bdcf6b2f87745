// Replays every captured AdmissionReview in ../shared/fixtures/admission through the real
// HTTPS listener (certificates from certs/, client trusting the generated CA) with a real
// Store on Postgres, and checks the decoded patches, the decisions and the audit rows.
import t from 'tap';
import { applyPatch, decodePatch, fixtureNames, loadReview, QUEUE_TEAM_A, SLUICE_SA, startSluice, type Review } from './helpers.js';

const sluice = await startSluice();
t.teardown(() => sluice.close());
await sluice.store.putQueue('team-a', QUEUE_TEAM_A);

const endpoint = (file: string): string => (file.endsWith('-validate.json') ? '/webhooks/validate' : '/webhooks/mutate');
const labelOps = (ops: Array<{ path: string; value?: unknown }>): Record<string, unknown> =>
  Object.fromEntries(ops.filter((o) => o.path.startsWith('/metadata/labels/')).map((o) => [o.path.slice('/metadata/labels/'.length), o.value]));

// What each captured request must produce. Label keys appear escaped (~1) in patch paths.
const expected: Record<string, { allowed: boolean; labels?: Record<string, string>; paths?: string[]; noPatch?: boolean; code?: number }> = {
  'cpu-pod.json': { allowed: true, noPatch: true },
  'gpu-pod.json': {
    allowed: true,
    labels: { 'sluice.io~1qos': 'guaranteed', 'sluice.io~1user': 'admin', 'sluice.io~1job': 'pod-train-gpu' },
    paths: ['/metadata/annotations/sluice.io~1user', '/spec/tolerations/-', '/spec/priorityClassName', '/spec/priority', '/spec/schedulingGates'],
  },
  'gpu-pod-validate.json': { allowed: true },
  'deployment-pod.json': {
    allowed: true,
    labels: {
      'sluice.io~1qos': 'guaranteed',
      'sluice.io~1user': 'system-serviceaccount-kube-system-replicaset-controller',
      'sluice.io~1job': 'replicaset-infer-5b47788459',
    },
    paths: ['/metadata/annotations', '/spec/tolerations/-', '/spec/priorityClassName', '/spec/priority', '/spec/schedulingGates'],
  },
  'deployment-pod-validate.json': { allowed: true },
  'job-pod.json': {
    allowed: true,
    labels: { 'sluice.io~1qos': 'guaranteed', 'sluice.io~1job': 'job-finetune', 'sluice.io~1user': 'system-serviceaccount-kube-system-job-controller' },
    paths: ['/metadata/annotations', '/spec/schedulingGates'],
  },
  // No sluice.io/queue label: the namespace's default-queue label (team-a) fills it in.
  'dry-run-pod.json': { allowed: true, labels: { 'sluice.io~1queue': 'team-a', 'sluice.io~1qos': 'guaranteed' }, paths: ['/spec/schedulingGates'] },
  // Already gated: no second gate.
  'gated-pod.json': { allowed: true, labels: { 'sluice.io~1qos': 'guaranteed' }, paths: ['/spec/tolerations/-'] },
  'update-remove-gate.json': { allowed: true, noPatch: true },
  // admin is not sluice's service account: removing the gate is tampering.
  'update-remove-gate-validate.json': { allowed: false, code: 403 },
};

t.test('every captured request gets the expected answer over HTTPS', async (t) => {
  const names = fixtureNames();
  t.ok(names.length >= 10, 'fixtures present');
  for (const file of names) {
    const want = expected[file];
    t.ok(want, `${file} has an expectation`);
    if (!want) continue;
    const review = loadReview(file);
    const res = await sluice.post(endpoint(file), review);
    t.equal(res.status, 200, `${file}: HTTP 200`);
    const r = res.body.response;
    t.equal(res.body.kind, 'AdmissionReview', `${file}: AdmissionReview back`);
    t.equal(res.body.apiVersion, 'admission.k8s.io/v1');
    t.equal(r.uid, review.request.uid, `${file}: uid echoed`);
    t.equal(r.allowed, want.allowed, `${file}: allowed=${want.allowed}`);
    if (want.code) t.equal(r.status?.code, want.code, `${file}: code ${want.code}`);
    if (!want.allowed) t.match(r.status?.message, /only sluice may remove the scheduling gate sluice.io\/queue/, `${file}: says why`);
    const ops = decodePatch(r);
    if (want.noPatch) t.equal(r.patch, undefined, `${file}: no patch`);
    if (want.labels) {
      t.equal(r.patchType, 'JSONPatch', `${file}: JSONPatch`);
      t.match(labelOps(ops), want.labels, `${file}: labels`);
    }
    for (const p of want.paths ?? [])
      t.ok(
        ops.some((o) => o.path === p),
        `${file}: patches ${p}`,
      );
  }
});

t.test('the patched gpu-pod has what the issue lists, and passes validation', async (t) => {
  const review = loadReview('gpu-pod.json');
  const res = await sluice.post('/webhooks/mutate', review);
  const pod = applyPatch(review.request.object!, decodePatch(res.body.response));
  t.same(pod.spec.schedulingGates, [{ name: 'sluice.io/queue' }]);
  t.equal(pod.spec.priorityClassName, 'sluice-guaranteed');
  t.equal(pod.spec.priority, 1000);
  t.same(pod.spec.tolerations.at(-1), { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
  t.equal(pod.spec.tolerations.length, 3, 'the two default tolerations kept');
  t.equal(pod.metadata.labels['sluice.io/queue'], 'team-a');
  t.equal(pod.metadata.annotations['sluice.io/user'], 'admin');
  t.equal(pod.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'].length > 0, true, 'other annotations kept');
  const v = structuredClone(review) as Review;
  v.request.object = pod;
  const val = await sluice.post('/webhooks/validate', v);
  t.equal(val.body.response.allowed, true, 'validation allows the mutated pod');
});

t.test('running the mutation on its own output yields no patch (every fixture)', async (t) => {
  for (const file of fixtureNames().filter((f) => !f.endsWith('-validate.json'))) {
    const review = loadReview(file);
    const first = await sluice.post('/webhooks/mutate', review);
    const ops = decodePatch(first.body.response);
    const again = structuredClone(review) as Review;
    again.request.object = applyPatch(review.request.object, ops);
    const second = await sluice.post('/webhooks/mutate', again);
    t.equal(second.body.response.allowed, true, `${file}: allowed again`);
    t.same(decodePatch(second.body.response), [], `${file}: empty patch the second time`);
  }
});

t.test("sluice's own service account may remove the gate", async (t) => {
  const review = loadReview('update-remove-gate-validate.json');
  (review.request.userInfo as { username: string }).username = SLUICE_SA;
  const res = await sluice.post('/webhooks/validate', review);
  t.equal(res.body.response.allowed, true);
});

t.test('decisions are audited in Postgres, dry runs are not', async (t) => {
  for (const file of ['gpu-pod-validate.json', 'update-remove-gate-validate.json', 'dry-run-pod.json', 'gpu-pod.json']) {
    await sluice.post(endpoint(file), loadReview(file));
  }
  const dry = loadReview('dry-run-pod.json');
  const dryValidate = structuredClone(dry);
  await sluice.post('/webhooks/validate', dryValidate);
  await sluice.store.audit.flush();
  const q = async (uid: string): Promise<Array<{ allowed: boolean; code: number; reason: string; username: string; dry_run: boolean }>> =>
    (await sluice.store.pool.query('SELECT allowed, code, reason, username, dry_run FROM admission_decisions WHERE request_uid = $1', [uid])).rows;
  const denied = await q(loadReview('update-remove-gate-validate.json').request.uid);
  t.ok(denied.length >= 1, 'the deny is recorded');
  t.match(denied[0], { allowed: false, code: 403, username: 'admin', dry_run: false, reason: /scheduling gate/ });
  const allowed = await q(loadReview('gpu-pod-validate.json').request.uid);
  t.match(allowed[0], { allowed: true, code: 200, username: 'admin' });
  const mutated = await q(loadReview('gpu-pod.json').request.uid);
  t.match(mutated[0], { allowed: true, reason: /patched .*gate/ });
  t.same(await q(dry.request.uid), [], 'dryRun requests leave no audit row');
});

t.test('decisions are counted and timed', async (t) => {
  const counts = (await sluice.metrics.webhookRequests.get()).values;
  const n = (webhook: string, outcome: string): number => counts.find((v) => v.labels.webhook === webhook && v.labels.outcome === outcome)?.value ?? 0;
  t.ok(n('mutate', 'patched') >= 6, 'mutate patched');
  t.ok(n('validate', 'denied') >= 1, 'validate denied');
  t.ok(n('validate', 'allowed') >= 2, 'validate allowed');
  const hist = (await sluice.metrics.webhookLatency.get()).values;
  const total = hist.filter((v) => v.metricName === 'sluice_webhook_duration_seconds_count').reduce((a, v) => a + v.value, 0);
  t.equal(
    total,
    counts.reduce((a, v) => a + v.value, 0),
    'every counted request was timed',
  );
});
