// Every deny path of the validating webhook, over HTTPS with a real Store: each answer
// has an HTTP-style code and one sentence that says what to change.
import t from 'tap';
import { loadReview, QUEUE_TEAM_A, SLUICE_SA, startSluice, type Review } from './helpers.js';

const sluice = await startSluice();
t.teardown(() => sluice.close());
await sluice.store.putQueue('team-a', QUEUE_TEAM_A);
await sluice.store.putQueue('closed', { open: false, limits: QUEUE_TEAM_A.limits });
await sluice.store.putQueue('small', { limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 4, bestEffortCap: 6, perJobMax: 0, perUserMax: 0 }] });
await sluice.store.putQueue('pooled', {
  cohort: 'research',
  limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 4, bestEffortCap: 6, perJobMax: 0, perUserMax: 0 }],
});
await sluice.store.putQueue('a100-only', {
  limits: [{ resource: 'nvidia.com/gpu', model: 'a100', guaranteed: 32, bestEffortCap: 32, perJobMax: 16, perUserMax: 0 }],
});
await sluice.store.putQueue('no-gpus', { limits: [] });

/** The captured validate request for train-gpu (2 GPUs, queue team-a), changed by `edit`. */
function review(edit: (pod: any, req: any) => void): Review {
  const r = loadReview('gpu-pod-validate.json');
  edit(r.request.object, r.request);
  return r;
}
const gpus =
  (n: unknown) =>
  (pod: any): void => {
    pod.spec.containers[0].resources.limits['nvidia.com/gpu'] = n;
    pod.spec.containers[0].resources.requests['nvidia.com/gpu'] = n;
  };
const label =
  (k: string, v: string) =>
  (pod: any): void => {
    pod.metadata.labels[k] = v;
  };

const cases: Array<{ name: string; edit: (pod: any, req: any) => void; code: number; message: RegExp | string }> = [
  {
    name: 'unknown queue',
    edit: label('sluice.io/queue', 'nope'),
    code: 404,
    message: /^queue nope does not exist; set label sluice.io\/queue to an existing queue/,
  },
  { name: 'closed queue', edit: label('sluice.io/queue', 'closed'), code: 403, message: /^queue closed is closed to new jobs/ },
  { name: 'per-job maximum', edit: gpus('9'), code: 403, message: 'pod asks 9 nvidia.com/gpu but queue team-a allows at most 8 per job (1 too many)' },
  {
    name: 'per-job maximum, gang',
    edit: (pod) => {
      gpus('4')(pod);
      pod.metadata.labels['sluice.io/gang-size'] = '3';
    },
    code: 403,
    message: 'job asks 12 nvidia.com/gpu (3 pods of 4) but queue team-a allows at most 8 per job (4 too many)',
  },
  {
    name: 'larger than the guaranteed quota',
    edit: (pod) => {
      gpus('6')(pod);
      label('sluice.io/queue', 'small')(pod);
    },
    code: 403,
    message: /^pod asks 6 nvidia.com\/gpu but queue small's guaranteed quota is 4 \(2 over\), so it could never run/,
  },
  {
    name: 'larger than the best-effort cap',
    edit: (pod) => {
      gpus('8')(pod);
      label('sluice.io/queue', 'small')(pod);
      label('sluice.io/qos', 'best-effort')(pod);
    },
    code: 403,
    message: /^pod asks 8 nvidia.com\/gpu but queue small's best-effort cap is 6 \(2 over\)/,
  },
  {
    name: 'a GPU model the queue has no quota row for',
    edit: (pod) => {
      gpus('2')(pod);
      label('sluice.io/queue', 'a100-only')(pod);
      pod.metadata.annotations['sluice.io/gpu-model'] = 'h100';
    },
    code: 403,
    message: /^pod asks 2 nvidia.com\/gpu but queue a100-only has no nvidia.com\/gpu quota for GPU model h100/,
  },
  {
    name: 'a single pod larger than any node',
    edit: (pod) => {
      gpus('12')(pod);
      label('sluice.io/queue', 'a100-only')(pod);
    },
    code: 403,
    message: 'pod asks 12 nvidia.com/gpu but the largest node with a matching GPU has 8 (4 too many); split the job into pods of at most 8',
  },
  {
    name: 'no node with the GPU model',
    edit: (pod) => {
      label('sluice.io/queue', 'small')(pod);
      pod.metadata.annotations['sluice.io/gpu-model'] = 'v100';
    },
    code: 403,
    message: /^no node has a GPU model matching v100 \(present: NVIDIA-A100-SXM4-80GB, NVIDIA-H100-80GB-HBM3\)/,
  },
  {
    name: 'queue without GPU quota',
    edit: label('sluice.io/queue', 'no-gpus'),
    code: 403,
    message: /^pod asks 2 nvidia.com\/gpu but queue no-gpus has no nvidia.com\/gpu quota/,
  },
  {
    name: 'fractional GPUs',
    edit: gpus('500m'),
    code: 422,
    message: /^container trainer asks limits "500m" nvidia.com\/gpu; GPU counts must be whole numbers/,
  },
  {
    name: 'requests differ from limits',
    edit: (pod) => {
      pod.spec.containers[0].resources.requests['nvidia.com/gpu'] = '1';
    },
    code: 422,
    message: 'container trainer asks 1 nvidia.com/gpu in requests but 2 in limits; set them equal',
  },
  { name: 'bad QoS label', edit: label('sluice.io/qos', 'gold'), code: 422, message: 'label sluice.io/qos is "gold"; use one of guaranteed, best-effort' },
  {
    name: 'bad shorthand',
    edit: (pod) => {
      pod.metadata.annotations['sluice.io/gpus'] = 'two';
    },
    code: 422,
    message: /^annotation sluice.io\/gpus is "two"; it must be a whole number/,
  },
  {
    name: 'gpu-container names no container',
    edit: (pod) => {
      pod.metadata.annotations['sluice.io/gpus'] = '1';
      pod.metadata.annotations['sluice.io/gpu-container'] = 'sidecar';
    },
    code: 422,
    message: 'annotation sluice.io/gpu-container names container "sidecar" but the pod has only trainer; fix the name',
  },
  {
    name: 'shorthand not applied (the mutating webhook was skipped)',
    edit: (pod) => {
      pod.metadata.annotations['sluice.io/gpus'] = '4';
    },
    code: 422,
    message: "annotation sluice.io/gpus asks 4 nvidia.com/gpu but container trainer has 2; sluice's mutating webhook did not run, create the pod again",
  },
  { name: 'unknown job type', edit: label('sluice.io/job-type', 'batch'), code: 422, message: /^job type "batch" is not configured; use one of notebook/ },
  {
    name: 'a bare pod claiming another user',
    edit: label('sluice.io/user', 'bob'),
    code: 403,
    message: 'label sluice.io/user is "bob" but the pod is created by admin; remove the label, sluice sets it',
  },
  {
    name: 'a sidecar GPU counts on top of the app containers',
    edit: (pod) => {
      gpus('8')(pod);
      pod.spec.initContainers = [
        { name: 'sidecar', restartPolicy: 'Always', resources: { limits: { 'nvidia.com/gpu': '1' }, requests: { 'nvidia.com/gpu': '1' } } },
      ];
    },
    code: 403,
    message: 'pod asks 9 nvidia.com/gpu but queue team-a allows at most 8 per job (1 too many)',
  },
  {
    name: 'spec.nodeName on a GPU pod',
    edit: (pod) => {
      pod.spec.nodeName = 'gpu-node-1';
    },
    code: 403,
    message: /^pod sets spec.nodeName to gpu-node-1; remove spec.nodeName; sluice places GPU pods/,
  },
  {
    name: 'a controller-made pod claiming a verified user (mutating webhook skipped)',
    edit: (pod, req) => {
      label('sluice.io/user', 'bob')(pod);
      pod.metadata.annotations['sluice.io/user-verified'] = 'true';
      pod.metadata.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'u', controller: true }];
      req.userInfo.username = 'system:serviceaccount:kube-system:job-controller';
    },
    code: 403,
    message: /^annotation sluice.io\/user-verified is "true" but label sluice.io\/user "bob" comes from the pod template/,
  },
  {
    name: 'bad gang size',
    edit: label('sluice.io/gang-size', '0'),
    code: 422,
    message: /^sluice.io\/gang-size is "0"; it must be a whole number of pods, at least 1/,
  },
];

t.test('CREATE deny paths', async (t) => {
  for (const c of cases) {
    const res = await sluice.post('/webhooks/validate', review(c.edit));
    t.equal(res.status, 200, `${c.name}: HTTP 200`);
    t.equal(res.body.response.allowed, false, `${c.name}: denied`);
    t.equal(res.body.response.status.code, c.code, `${c.name}: code ${c.code}`);
    if (typeof c.message === 'string') t.equal(res.body.response.status.message, c.message, `${c.name}: message`);
    else t.match(res.body.response.status.message, c.message, `${c.name}: message`);
  }
});

t.test('allowed: within limits, over free quota, cohort borrowing, models by alias', async (t) => {
  const allowed: Array<[string, (pod: any, req: any) => void]> = [
    ['8 GPUs, the per-job maximum', gpus('8')],
    ['team-a with integer quantities', gpus(2)],
    [
      'a queue in a cohort may borrow beyond its guaranteed quota',
      (pod) => {
        gpus('6')(pod);
        label('sluice.io/queue', 'pooled')(pod);
      },
    ],
    [
      'best-effort within the cap',
      (pod) => {
        gpus('6')(pod);
        label('sluice.io/queue', 'small')(pod);
        label('sluice.io/qos', 'best-effort')(pod);
      },
    ],
    [
      'model alias a100 against the a100 quota row',
      (pod) => {
        label('sluice.io/queue', 'a100-only')(pod);
        pod.metadata.annotations['sluice.io/gpu-model'] = 'a100';
      },
    ],
    ['known job type', label('sluice.io/job-type', 'notebook')],
    [
      'shorthand that the mutation applied',
      (pod) => {
        pod.metadata.annotations['sluice.io/gpus'] = '2';
      },
    ],
    ['the user label sluice sets for the requester', label('sluice.io/user', 'admin')],
    [
      'a controller-made pod keeps the user label of its template',
      (pod, req) => {
        label('sluice.io/user', 'bob')(pod);
        pod.metadata.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'u', controller: true }];
        req.userInfo.username = 'system:serviceaccount:kube-system:job-controller';
      },
    ],
    [
      'an init container peak below the app containers',
      (pod) => {
        gpus('8')(pod);
        pod.spec.initContainers = [{ name: 'warmup', resources: { limits: { 'nvidia.com/gpu': '4' }, requests: { 'nvidia.com/gpu': '4' } } }];
      },
    ],
  ];
  for (const [name, edit] of allowed) {
    const res = await sluice.post('/webhooks/validate', review(edit));
    t.equal(res.body.response.allowed, true, name);
    t.notOk(res.body.response.status, `${name}: no status`);
  }
});

t.test('UPDATE tampering: the gate and queue/qos/user labels belong to sluice', async (t) => {
  const base = loadReview('update-remove-gate-validate.json');
  const variants: Array<[string, (obj: any) => void, RegExp]> = [
    [
      'queue label changed',
      (o) => {
        o.metadata.labels['sluice.io/queue'] = 'team-b';
        o.spec.schedulingGates = [{ name: 'sluice.io/queue' }];
      },
      /^only sluice may change label sluice.io\/queue \(from "team-a" to "team-b"\)/,
    ],
    [
      'qos label added',
      (o) => {
        o.metadata.labels['sluice.io/qos'] = 'guaranteed';
        o.spec.schedulingGates = [{ name: 'sluice.io/queue' }];
      },
      /^only sluice may change label sluice.io\/qos \(from unset to "guaranteed"\)/,
    ],
    [
      'queue label removed',
      (o) => {
        delete o.metadata.labels['sluice.io/queue'];
        o.spec.schedulingGates = [{ name: 'sluice.io/queue' }];
      },
      /from "team-a" to unset/,
    ],
    [
      'user-verified annotation changed',
      (o) => {
        o.metadata.annotations = { ...(o.metadata.annotations ?? {}), 'sluice.io/user-verified': 'true' };
        o.spec.schedulingGates = [{ name: 'sluice.io/queue' }];
      },
      /^only sluice may change annotation sluice.io\/user-verified/,
    ],
    [
      'user label set',
      (o) => {
        o.metadata.labels['sluice.io/user'] = 'someone-else';
        o.spec.schedulingGates = [{ name: 'sluice.io/queue' }];
      },
      /label sluice.io\/user/,
    ],
    ['gate removed', () => undefined, /^only sluice may remove the scheduling gate sluice.io\/queue \(user admin tried\)/],
  ];
  for (const [name, edit, message] of variants) {
    const r = structuredClone(base);
    edit(r.request.object);
    const denied = await sluice.post('/webhooks/validate', r);
    t.equal(denied.body.response.allowed, false, `${name}: denied for admin`);
    t.equal(denied.body.response.status.code, 403, `${name}: 403`);
    t.match(denied.body.response.status.message, message, `${name}: message`);
    (r.request.userInfo as { username: string }).username = SLUICE_SA;
    const ok = await sluice.post('/webhooks/validate', r);
    t.equal(ok.body.response.allowed, true, `${name}: allowed for sluice's service account`);
  }
  // The same checks through the status subresource (PATCH pods/x/status can change labels).
  const viaStatus = structuredClone(base);
  viaStatus.request.subResource = 'status';
  viaStatus.request.object!.spec.schedulingGates = [{ name: 'sluice.io/queue' }];
  viaStatus.request.object!.metadata.labels['sluice.io/queue'] = 'vip';
  const st = await sluice.post('/webhooks/validate', viaStatus);
  t.equal(st.body.response.allowed, false, 'pods/status: label change denied');
  t.match(st.body.response.status?.message, /^only sluice may change label sluice.io\/queue/, 'pods/status: message');
  viaStatus.request.object!.metadata.labels['sluice.io/queue'] = 'team-a';
  t.equal((await sluice.post('/webhooks/validate', viaStatus)).body.response.allowed, true, 'pods/status: a plain status update is allowed');
  // A kubelet's status update is checked too (its pod CREATEs are not: static/mirror pods).
  (viaStatus.request.userInfo as { username: string }).username = 'system:node:gpu-node-1';
  t.equal((await sluice.post('/webhooks/validate', viaStatus)).body.response.allowed, true, 'kubelet status update allowed');
  viaStatus.request.object!.metadata.labels['sluice.io/queue'] = 'vip';
  t.equal((await sluice.post('/webhooks/validate', viaStatus)).body.response.allowed, false, 'a kubelet may not change sluice.io/queue either');
  const harmless = structuredClone(base);
  harmless.request.object!.spec.schedulingGates = [{ name: 'sluice.io/queue' }];
  harmless.request.object!.metadata.labels.app = 'renamed';
  t.equal((await sluice.post('/webhooks/validate', harmless)).body.response.allowed, true, 'other label changes are fine');
});

t.test('pods outside sluice are untouched, even GPU pods', async (t) => {
  for (const file of ['gpu-pod.json', 'gpu-pod-validate.json', 'job-pod.json']) {
    const r = loadReview(file);
    r.request.namespace = 'plain';
    r.request.object!.metadata.namespace = 'plain';
    delete r.request.object!.metadata.labels['sluice.io/queue'];
    const path = file.endsWith('-validate.json') ? '/webhooks/validate' : '/webhooks/mutate';
    const res = await sluice.post(path, r);
    t.equal(res.body.response.allowed, true, `${file}: allowed`);
    t.equal(res.body.response.patch, undefined, `${file}: no patch`);
    // Even a 99-GPU pod, which sluice would deny in a managed namespace.
    r.request.object!.spec.containers[0].resources.limits['nvidia.com/gpu'] = '99';
    r.request.object!.spec.containers[0].resources.requests['nvidia.com/gpu'] = '99';
    t.equal((await sluice.post(path, r)).body.response.allowed, true, `${file}: 99 GPUs allowed outside sluice`);
  }
  // A pod with sluice.io/queue opts in anywhere.
  const optIn = loadReview('gpu-pod.json');
  optIn.request.namespace = 'plain';
  const res = await sluice.post('/webhooks/mutate', optIn);
  t.equal(res.body.response.patchType, 'JSONPatch', 'a pod labelled with a queue is handled in any namespace');
  // Other resources are none of sluice's business.
  const cm = loadReview('gpu-pod-validate.json');
  cm.request.resource = { group: '', version: 'v1', resource: 'configmaps' };
  cm.request.object = { kind: 'ConfigMap', data: {} };
  t.same((await sluice.post('/webhooks/validate', cm)).body.response, { uid: cm.request.uid, allowed: true });
});

t.test('static and mirror pods (created by a kubelet) are untouched, even with spec.nodeName', async (t) => {
  const r = review((pod, req) => {
    pod.spec.nodeName = 'gpu-node-1';
    pod.metadata.annotations['kubernetes.io/config.mirror'] = 'abc';
    req.userInfo = { username: 'system:node:gpu-node-1', groups: ['system:nodes'] };
  });
  const v = await sluice.post('/webhooks/validate', r);
  t.same(v.body.response, { uid: r.request.uid, allowed: true }, 'validate allows');
  const m = await sluice.post('/webhooks/mutate', r);
  t.same(m.body.response, { uid: r.request.uid, allowed: true }, 'mutate leaves it alone');
  // The annotation alone, written by a user, is no way around sluice.
  (r.request.userInfo as { username: string }).username = 'admin';
  const denied = await sluice.post('/webhooks/validate', r);
  t.equal(denied.body.response.allowed, false, 'a user-made pod with the mirror annotation is still checked');
});

t.test('Postgres down: onStoreDown allow admits with a warning, deny refuses with 503', async (t) => {
  for (const policy of ['allow', 'deny'] as const) {
    // A Store on a port where nothing listens: every lookup is 'unavailable'.
    const down = await startSluice({ storeUrl: 'postgres://postgres@127.0.0.1:1/test', migrate: false, webhooks: { onStoreDown: policy } });
    t.teardown(() => down.close());
    const res = await down.post('/webhooks/validate', loadReview('gpu-pod-validate.json'));
    const r = res.body.response;
    if (policy === 'allow') {
      t.equal(r.allowed, true, 'allow: admitted');
      t.match(r.warnings?.[0], /^sluice cannot read queue team-a .*admitted without quota checks/, 'allow: warns');
    } else {
      t.equal(r.allowed, false, 'deny: refused');
      t.equal(r.status.code, 503);
      t.match(r.status.message, /^sluice cannot read queue team-a .*; retry in a minute/);
    }
    const metric = await down.metrics.webhookStoreDown.get();
    t.equal(metric.values.find((v) => v.labels.policy === policy)?.value, 1, `${policy}: counted in sluice_webhook_store_unavailable_total`);
    // The mutating webhook needs no store: the gate still goes on.
    const m = await down.post('/webhooks/mutate', loadReview('gpu-pod.json'));
    t.equal(m.body.response.patchType, 'JSONPatch', `${policy}: mutation works without Postgres`);
  }
});

// Issue 22, defect 10: a 100 KB sluice.io/gang-size was echoed in full in the denial and
// the audit row. Messages and audit text are cut and say so.
t.test('a 100 KB value is cut in the denial and in the audit row, which say so', async (t) => {
  const huge = '9'.repeat(100_000) + 'x';
  const r = review((pod, req) => {
    pod.metadata.labels['sluice.io/gang-size'] = huge;
    req.uid = 'uid-huge-gang-size';
  });
  const res = await sluice.post('/webhooks/validate', r);
  const message: string = res.body.response.status.message;
  t.equal(res.body.response.allowed, false);
  t.ok(message.length < 1100, `the denial is ${message.length} characters`);
  t.match(message, /^sluice.io\/gang-size is "9999.*\.\.\. \(\d+ more characters cut\)$/);
  t.equal(await sluice.store.audit.flush(), 0);
  const rows = await sluice.store.pool.query<{ reason: string }>('SELECT reason FROM admission_decisions WHERE request_uid = $1', [r.request.uid]);
  t.equal(rows.rows.length, 1, 'audited');
  t.ok(rows.rows[0]!.reason.length < 1100 && /more characters cut\)$/.test(rows.rows[0]!.reason), 'the audit row is cut and says so');
});
