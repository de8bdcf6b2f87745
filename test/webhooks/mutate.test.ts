// The pure mutation logic directly: shorthand, requests = limits, affinity merging,
// model aliases against present products, job-type pools, tolerations, label escaping.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { escapePointer, labelSafe, isLabelValue } from '../../webhooks/labels.js';
import { mutatePod, withRequiredExpressions } from '../../webhooks/mutate.js';
import { parseTaint, policyFromConfig, PolicyError, type ClusterFacts } from '../../webhooks/policy.js';
import { CacheFacts } from '../../webhooks/cluster-facts.js';
import { loadConfig } from '../../config/load.js';
import { applyPatch, testCluster } from './helpers.js';

const policy = policyFromConfig(
  {
    // The configured defaults, with queueing on (asserted below) and two job types.
    ...loadConfig({ env: {} }).webhooks,
    queueing: true,
    jobTypes: { notebook: { 'sluice.io/pool': 'notebooks' }, training: { 'sluice.io/pool': 'training', 'node.kubernetes.io/instance-type': 'dgx' } },
  },
  ['nvidia.com/gpu', 'amd.com/gpu'],
);
const { cache, namespaces } = testCluster();
const facts: ClusterFacts = new CacheFacts(cache, namespaces);
const managed = namespaces.get('team-a');

function pod(over: { labels?: Record<string, string>; annotations?: Record<string, string>; containers?: any[]; spec?: Record<string, unknown> } = {}): V1Pod {
  return {
    metadata: { name: 'p', namespace: 'team-a', labels: over.labels ?? {}, annotations: over.annotations ?? {} },
    spec: { containers: over.containers ?? [{ name: 'main', image: 'x' }], ...(over.spec ?? {}) },
  } as V1Pod;
}
const run = (p: V1Pod, username = 'alice@example.com') => mutatePod({ pod: p, username, nsLabels: managed, policy, facts });
const patched = (p: V1Pod, username?: string): any => applyPatch(p, run(p, username).ops);

t.test('sluice.io/gpus puts requests = limits on the first or the named container', async (t) => {
  const first = patched(pod({ annotations: { 'sluice.io/gpus': '2' }, containers: [{ name: 'a' }, { name: 'b' }] }));
  t.same(first.spec.containers[0].resources, { limits: { 'nvidia.com/gpu': '2' }, requests: { 'nvidia.com/gpu': '2' } });
  t.notOk(first.spec.containers[1].resources);
  const named = patched(
    pod({
      annotations: { 'sluice.io/gpus': '4', 'sluice.io/gpu-container': 'b' },
      containers: [{ name: 'a' }, { name: 'b', resources: { limits: { cpu: '2' }, requests: { cpu: '1' } } }],
    }),
  );
  t.same(named.spec.containers[1].resources, { limits: { cpu: '2', 'nvidia.com/gpu': '4' }, requests: { cpu: '1', 'nvidia.com/gpu': '4' } }, 'cpu kept');
  t.same(run(named).ops, [], 'idempotent');
  const zero = run(pod({ annotations: { 'sluice.io/gpus': '0' } }));
  t.notOk(zero.gpu, '0 GPUs is not a GPU pod: no gate, no labels');
  t.notOk(zero.ops.some((o) => o.path.startsWith('/spec/schedulingGates')));
});

t.test('requests are set equal to limits for every managed resource, and limits to lone requests', async (t) => {
  const p = patched(
    pod({
      containers: [
        { name: 'a', resources: { limits: { 'nvidia.com/gpu': '2' } } },
        { name: 'b', resources: { requests: { 'amd.com/gpu': '1' } } },
        { name: 'c', resources: { limits: { 'nvidia.com/gpu': '3' }, requests: { 'nvidia.com/gpu': '1' } } },
      ],
      spec: { initContainers: [{ name: 'init', resources: { limits: { 'nvidia.com/gpu': '1' } } }] },
    }),
  );
  t.same(p.spec.containers[0].resources.requests, { 'nvidia.com/gpu': '2' });
  t.same(p.spec.containers[1].resources.limits, { 'amd.com/gpu': '1' });
  t.same(p.spec.containers[2].resources.requests, { 'nvidia.com/gpu': '3' }, 'limits win');
  t.same(p.spec.initContainers[0].resources.requests, { 'nvidia.com/gpu': '1' }, 'init containers too');
  t.same(run(p).ops, [], 'idempotent');
});

const gpuPod = (extra: Parameters<typeof pod>[0] = {}): V1Pod =>
  pod({ ...extra, containers: [{ name: 'main', resources: { limits: { 'nvidia.com/gpu': '1' }, requests: { 'nvidia.com/gpu': '1' } } }] });

t.test('labels: queue from the namespace default, qos default, label-safe user with the raw name kept', async (t) => {
  const p = patched(gpuPod({ labels: { app: 'x' } }));
  t.match(p.metadata.labels, {
    app: 'x',
    'sluice.io/queue': 'team-a',
    'sluice.io/qos': 'guaranteed',
    'sluice.io/user': 'alice-example.com',
    'sluice.io/job': 'pod-p',
  });
  t.equal(p.metadata.annotations['sluice.io/user'], 'alice@example.com');
  const ops = run(gpuPod({ labels: { app: 'x' } })).ops;
  t.ok(
    ops.some((o) => o.path === '/metadata/labels/sluice.io~1queue'),
    'label keys escaped with ~1',
  );
  // A user label set by someone else on a bare pod is replaced by the requester.
  const spoof = patched(gpuPod({ labels: { 'sluice.io/user': 'bob' } }));
  t.equal(spoof.metadata.labels['sluice.io/user'], 'alice-example.com');
  // ... but a controller-made pod keeps the user label from its template.
  const owned = gpuPod({ labels: { 'sluice.io/user': 'bob' } });
  owned.metadata!.ownerReferences = [{ apiVersion: 'ray.io/v1', kind: 'RayCluster', name: 'rc', uid: 'u', controller: true }];
  const op = patched(owned, 'system:serviceaccount:ray:kuberay-operator');
  t.equal(op.metadata.labels['sluice.io/user'], 'bob');
  t.equal(op.metadata.labels['sluice.io/job'], 'raycluster-rc', 'job from the controlling owner');
  // ... recorded as unverified: the webhook only knows the controller, not who wrote the template.
  t.equal(op.metadata.annotations['sluice.io/user-verified'], 'false', 'template user label marked unverified');
  t.equal(p.metadata.annotations['sluice.io/user-verified'], 'true', 'user from userInfo marked verified');
  t.equal(spoof.metadata.annotations['sluice.io/user-verified'], 'true', 'bare pod: sluice wrote the user');
  const claimsVerified = gpuPod({ labels: { 'sluice.io/user': 'bob' }, annotations: { 'sluice.io/user-verified': 'true' } });
  claimsVerified.metadata!.ownerReferences = owned.metadata!.ownerReferences;
  t.equal(
    patched(claimsVerified, 'system:serviceaccount:ray:kuberay-operator').metadata.annotations['sluice.io/user-verified'],
    'false',
    'a template cannot claim verified',
  );
  t.same(run(op as V1Pod, 'system:serviceaccount:ray:kuberay-operator').ops, [], 'idempotent');
  // No labels map at all: one op creates it.
  const bare = gpuPod();
  delete bare.metadata!.labels;
  const bareOps = run(bare).ops;
  t.same(bareOps.find((o) => o.path === '/metadata/labels')?.value, {
    'sluice.io/queue': 'team-a',
    'sluice.io/qos': 'guaranteed',
    'sluice.io/user': 'alice-example.com',
    'sluice.io/job': 'pod-p',
  });
  const nsNoDefault = mutatePod({ pod: gpuPod(), username: 'a', nsLabels: namespaces.get('team-b'), policy, facts });
  t.ok(
    nsNoDefault.ops.some((o) => o.path === '/metadata/labels/sluice.io~1queue' && o.value === 'default'),
    'queue "default" without a namespace default',
  );
});

t.test('best-effort QoS picks the best-effort priority class', async (t) => {
  const p = patched(gpuPod({ labels: { 'sluice.io/qos': 'best-effort' } }));
  t.equal(p.spec.priorityClassName, 'sluice-best-effort');
  t.equal(p.spec.priority, 100);
  t.equal(p.spec.preemptionPolicy, 'Never', 'the class never preempts, and the pod says so too');
  t.same(run(p).ops, [], 'idempotent');
});

t.test('toleration: added once, not when an existing one already tolerates the taint', async (t) => {
  t.same(patched(gpuPod()).spec.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
  for (const existing of [
    { operator: 'Exists' },
    { key: 'nvidia.com/gpu', operator: 'Exists' },
    { key: 'nvidia.com/gpu', operator: 'Equal', value: '', effect: 'NoSchedule' },
  ]) {
    const ops = run(gpuPod({ spec: { tolerations: [existing] } })).ops;
    t.notOk(
      ops.some((o) => o.path.startsWith('/spec/tolerations')),
      `${JSON.stringify(existing)} already tolerates`,
    );
  }
  const other = run(gpuPod({ spec: { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoExecute' }] } })).ops;
  t.ok(
    other.some((o) => o.path === '/spec/tolerations/-'),
    'a toleration for another effect does not count',
  );
  t.same(parseTaint('gpu=yes:NoExecute'), { key: 'gpu', operator: 'Equal', value: 'yes', effect: 'NoExecute' });
  t.equal(parseTaint(''), null);
  t.throws(() => parseTaint('nvidia.com/gpu'), PolicyError);
});

t.test('gpu-model aliases resolve to the products present; job type adds its pool', async (t) => {
  const p = patched(gpuPod({ annotations: { 'sluice.io/gpu-model': 'a100, h100' }, labels: { 'sluice.io/job-type': 'notebook' } }));
  t.same(p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [
    {
      matchExpressions: [
        { key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-A100-SXM4-80GB', 'NVIDIA-H100-80GB-HBM3'] },
        { key: 'sluice.io/pool', operator: 'In', values: ['notebooks'] },
      ],
    },
  ]);
  t.same(run(p).ops, [], 'idempotent');
  const unknown = patched(gpuPod({ annotations: { 'sluice.io/gpu-model': 'b200' } }));
  t.same(
    unknown.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values,
    ['b200'],
    'no present product: the name as written',
  );
});

t.test('affinity: every existing required term gets the requirements (terms are ORed)', async (t) => {
  const want = [{ key: 'sluice.io/pool', operator: 'In', values: ['training'] }];
  const aff = {
    podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] },
    nodeAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] } }],
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
          { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] },
        ],
      },
    },
  };
  const next = withRequiredExpressions(aff, want)!;
  t.same(next.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms, [
    { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }, ...want] },
    { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }], matchExpressions: want },
  ]);
  t.same(next.podAntiAffinity, aff.podAntiAffinity, 'pod (anti-)affinity kept');
  t.same(
    next.nodeAffinity!.preferredDuringSchedulingIgnoredDuringExecution,
    aff.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution,
    'preferences kept',
  );
  t.equal(withRequiredExpressions(next, want), null, 'nothing to add the second time');
});

t.test('queueing off: no gate', async (t) => {
  const off = { ...policy, queueing: false };
  const m = mutatePod({ pod: gpuPod(), username: 'a', nsLabels: managed, policy: off, facts });
  t.notOk(m.ops.some((o) => o.path.startsWith('/spec/schedulingGates')));
  const gated = gpuPod({ spec: { schedulingGates: [{ name: 'other.io/hold' }] } });
  t.same(patched(gated).spec.schedulingGates, [{ name: 'other.io/hold' }, { name: 'sluice.io/queue' }], 'appended after other gates');
});

t.test('spec.nodeName: no gate (the apiserver refuses nodeName with gates)', async (t) => {
  const m = run(gpuPod({ spec: { nodeName: 'gpu-node-1' } }));
  t.notOk(
    m.ops.some((o) => o.path.startsWith('/spec/schedulingGates')),
    'no scheduling gate',
  );
  t.ok(m.gpu, 'still a GPU pod');
});

t.test('label-safe values and JSON pointer escaping', async (t) => {
  t.equal(labelSafe('admin'), 'admin');
  t.equal(labelSafe('system:serviceaccount:ml:runner'), 'system-serviceaccount-ml-runner');
  t.equal(labelSafe('-x-'), 'x');
  const long = labelSafe('oidc:' + 'a'.repeat(100) + '@corp.example.com');
  t.ok(isLabelValue(long), 'long names are shortened to a valid value');
  t.not(long, labelSafe('oidc:' + 'a'.repeat(100) + '@corp.example.org'), 'with a hash that keeps them apart');
  t.ok(isLabelValue(labelSafe('@@@')));
  t.equal(escapePointer('sluice.io/queue'), 'sluice.io~1queue');
  t.equal(escapePointer('a~b/c'), 'a~0b~1c');
});
