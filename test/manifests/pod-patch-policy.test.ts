// The ValidatingAdmissionPolicy that narrows sluice's `pods patch` (issue 22, defect 11):
// every pod patch sluice makes (queue/releaser.ts gate removal, cluster/leader-label.ts,
// scheduler/hami-bind.ts allocation annotations), applied to a pod as the apiserver would,
// passes the policy's CEL; every other change is denied. Evaluated with @bufbuild/cel, not
// by a kube-apiserver: the local v1.28 control plane does not serve
// admissionregistration.k8s.io/v1beta1 (no feature gate), so this is the structural check.
// Also: the kustomize components and the chart ship the same expressions, at the right
// apiVersion.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { isCelError, run, type CelInput } from '@bufbuild/cel';
import type { V1Pod } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import t from 'tap';
import { applyJsonPatch, applyMergePatch } from '../../bench/apiserver/standin.js';
import { allocationAnnotations } from '../../scheduler/hami-bind.js';
import { kubectlPath } from '../helpers/k8s-tools.js';
import { repoRoot } from '../webhooks/helpers.js';
import type { K8sObject } from './k8s-schema.js';
import { helmTemplate } from './render.js';

interface PolicySpec {
  matchConditions: Array<{ name: string; expression: string }>;
  variables: Array<{ name: string; expression: string }>;
  validations: Array<{ expression: string; message: string }>;
}
type Json = Parameters<typeof applyMergePatch>[1];

const policyFile = join(repoRoot, 'manifests/components/pod-patch-policy/policy.yaml');
const [policy] = yaml.loadAll(readFileSync(policyFile, 'utf8')) as Array<K8sObject & { spec: PolicySpec }>;
const SLUICE = 'system:serviceaccount:sluice-system:sluice';
const SLUICE_POD = 'sluice-7d9f-abcde';

/** JSON as CEL sees it: objects are maps (numbers stay doubles, as in the test of equality). */
const toCel = (v: unknown): CelInput =>
  Array.isArray(v) ? v.map(toCel) : v !== null && typeof v === 'object' ? new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)])) : (v as CelInput);

interface Request {
  username: string;
  podName?: string;
}

/** What the apiserver does with the policy for one UPDATE: null = allowed, else the denial messages. */
function admit(spec: PolicySpec, oldPod: V1Pod, newPod: V1Pod, req: Request): string[] | null {
  const extra: Record<string, string[]> = req.podName ? { 'authentication.kubernetes.io/pod-name': [req.podName] } : {};
  const bindings: Record<string, CelInput> = {
    object: toCel(newPod),
    oldObject: toCel(oldPod),
    request: toCel({ operation: 'UPDATE', userInfo: { username: req.username, extra } }),
  };
  for (const m of spec.matchConditions) {
    const r = run(m.expression, bindings);
    if (isCelError(r)) throw new Error(`match condition ${m.name} failed: ${String(r)}`);
    if (r !== true) return null; // the policy does not apply
  }
  const variables = new Map<string, CelInput>();
  for (const v of spec.variables) {
    const r = run(v.expression, { ...bindings, variables });
    if (isCelError(r)) throw new Error(`variable ${v.name} failed: ${String(r)}`);
    variables.set(v.name, r as CelInput);
  }
  const denied: string[] = [];
  for (const v of spec.validations) {
    const r = run(v.expression, { ...bindings, variables });
    // An expression that errors denies (failurePolicy: Fail), so it counts as a denial here.
    if (isCelError(r)) denied.push(`error: ${String(r)} in ${v.expression}`);
    else if (r !== true) denied.push(v.message);
  }
  return denied.length > 0 ? denied : null;
}

const gatedPod = (): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'train-0',
    namespace: 'team-a',
    uid: 'uid-train-0',
    labels: { 'sluice.io/queue': 'research', 'sluice.io/qos': 'guaranteed', 'sluice.io/job': 'train' },
    annotations: { 'sluice.io/gpu-model': 'NVIDIA-A100-SXM4-80GB' },
    ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'train', uid: 'uid-job', controller: true }],
  },
  spec: {
    schedulingGates: [{ name: 'example.com/other' }, { name: 'sluice.io/queue' }],
    containers: [{ name: 'main', image: 'trainer:1', resources: { limits: { 'nvidia.com/gpu': '2' } } }],
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    nodeSelector: { pool: 'gpu' },
  },
});

const sluicePod = (): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: SLUICE_POD, namespace: 'sluice-system', uid: 'uid-sluice', labels: { app: 'sluice' } },
  spec: { containers: [{ name: 'sluice', image: 'sluice:1' }] },
});

const jsonPatch = (pod: V1Pod, ops: unknown): V1Pod => applyJsonPatch(pod as unknown as Json, ops) as unknown as V1Pod;
const mergePatch = (pod: V1Pod, patch: unknown): V1Pod => applyMergePatch(pod as unknown as Json, patch as Json) as unknown as V1Pod;

/** The gate removal of queue/releaser.ts KubeGatePatcher.removeGate. */
const removeGate = (pod: V1Pod, index: number): V1Pod =>
  jsonPatch(pod, [
    { op: 'test', path: '/metadata/uid', value: pod.metadata!.uid },
    { op: 'test', path: `/spec/schedulingGates/${index}/name`, value: 'sluice.io/queue' },
    { op: 'remove', path: `/spec/schedulingGates/${index}` },
  ]);
/** cluster/leader-label.ts LeaderLabel.patch. */
const leaderLabel = (pod: V1Pod, leading: boolean): V1Pod => mergePatch(pod, { metadata: { labels: { 'sluice.io/leader': leading ? 'true' : null } } });

t.test("every pod patch sluice makes passes the policy's CEL", async (t) => {
  const spec = policy!.spec;
  const pod = gatedPod();
  t.equal(admit(spec, pod, removeGate(pod, 1), { username: SLUICE }), null, 'removing its gate sluice.io/queue');
  const single = { ...pod, spec: { ...pod.spec!, schedulingGates: [{ name: 'sluice.io/queue' }] } };
  t.equal(admit(spec, single, removeGate(single, 0), { username: SLUICE }), null, 'removing its gate, the only one (schedulingGates left empty)');

  const own = sluicePod();
  const led = leaderLabel(own, true);
  t.equal(admit(spec, own, led, { username: SLUICE, podName: SLUICE_POD }), null, 'setting sluice.io/leader on its own pod');
  t.equal(admit(spec, led, leaderLabel(led, false), { username: SLUICE, podName: SLUICE_POD }), null, 'removing it from its own pod');

  const bound = removeGate(pod, 1);
  const annotated = mergePatch(bound, {
    metadata: { annotations: allocationAnnotations('gpu-1', [[{ uuid: 'GPU-1', memMiB: 8192, cores: 25 }]], Date.parse('2026-12-06T12:00:00Z')) },
  });
  t.ok(
    Object.keys(annotated.metadata!.annotations!).some((k) => k.startsWith('hami.io/')),
    'the share bind writes hami.io annotations',
  );
  t.equal(admit(spec, bound, annotated, { username: SLUICE }), null, "writing HAMi's allocation annotations at a share bind");
  const rewritten = mergePatch(annotated, {
    metadata: { annotations: allocationAnnotations('gpu-2', [[{ uuid: 'GPU-7', memMiB: 4096, cores: 10 }]], Date.parse('2026-12-06T12:05:00Z')) },
  });
  t.equal(admit(spec, annotated, rewritten, { username: SLUICE }), null, 'rewriting them at a later bind attempt');
});

t.test('any other change by sluice is denied, with a message naming what it may do', async (t) => {
  const spec = policy!.spec;
  const pod = gatedPod();
  const denied = (what: string, after: V1Pod, req: Request = { username: SLUICE }, before: V1Pod = pod): void => {
    const r = admit(spec, before, after, req);
    t.ok(r && r.length > 0, `${what}: denied${r ? ` (${r.join('; ')})` : ''}`);
    t.notOk(
      r?.some((m) => m.startsWith('error:')),
      `${what}: by a message, not an evaluation error`,
    );
  };
  denied('removing another gate', jsonPatch(pod, [{ op: 'remove', path: '/spec/schedulingGates/0' }]));
  denied('adding a gate', jsonPatch(pod, [{ op: 'add', path: '/spec/schedulingGates/-', value: { name: 'x.io/hold' } }]));
  denied('changing a container image', jsonPatch(pod, [{ op: 'replace', path: '/spec/containers/0/image', value: 'evil:1' }]));
  denied('changing the node selector of a gated pod', jsonPatch(pod, [{ op: 'replace', path: '/spec/nodeSelector/pool', value: 'kube-system' }]));
  denied('adding affinity to a gated pod', mergePatch(pod, { spec: { affinity: { nodeAffinity: {} } } }));
  denied('adding a toleration', jsonPatch(pod, [{ op: 'add', path: '/spec/tolerations/-', value: { operator: 'Exists' } }]));
  denied('setting activeDeadlineSeconds', mergePatch(pod, { spec: { activeDeadlineSeconds: 1 } }));
  denied('changing a label', mergePatch(pod, { metadata: { labels: { 'sluice.io/queue': 'other' } } }));
  denied('adding a label', mergePatch(pod, { metadata: { labels: { 'evil.io/x': 'y' } } }));
  denied('removing a label', mergePatch(pod, { metadata: { labels: { 'sluice.io/job': null } } }));
  denied('changing an annotation that is not HAMi allocation', mergePatch(pod, { metadata: { annotations: { 'sluice.io/gpu-model': 'H100' } } }));
  denied('writing another hami.io annotation', mergePatch(pod, { metadata: { annotations: { 'hami.io/mutex.lock': 'x' } } }));
  denied('removing an annotation', mergePatch(pod, { metadata: { annotations: { 'sluice.io/gpu-model': null } } }));
  denied('adding a finalizer', mergePatch(pod, { metadata: { finalizers: ['evil.io/keep'] } }));
  denied('removing owner references', mergePatch(pod, { metadata: { ownerReferences: null } }));
  denied('the leader label on a pod that is not its own', leaderLabel(pod, true), { username: SLUICE, podName: SLUICE_POD });
  denied('the leader label with a token bound to no pod', leaderLabel(sluicePod(), true), { username: SLUICE }, sluicePod());
  denied(
    'the leader label set to another value',
    mergePatch(sluicePod(), { metadata: { labels: { 'sluice.io/leader': 'false' } } }),
    { username: SLUICE, podName: SLUICE_POD },
    sluicePod(),
  );
  denied('a gate removal that also changes an image', jsonPatch(removeGate(pod, 1), [{ op: 'replace', path: '/spec/containers/0/image', value: 'evil:1' }]));

  t.equal(
    admit(spec, pod, jsonPatch(pod, [{ op: 'replace', path: '/spec/containers/0/image', value: 'new:2' }]), {
      username: 'system:serviceaccount:team-a:deployer',
    }),
    null,
    'other users are not matched',
  );
});

t.test('the v1beta1 component is the same policy at admissionregistration.k8s.io/v1beta1, and leaves the webhooks at v1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-vap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rel = (p: string): string => relative(dir, join(repoRoot, p));
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${rel('manifests/base')}]\ncomponents: [${rel('manifests/components/pod-patch-policy-v1beta1')}]\n`,
  );
  const objects = (
    yaml.loadAll(execFileSync(kubectlPath(), ['kustomize', '--load-restrictor', 'LoadRestrictionsNone', dir], { encoding: 'utf8' })) as K8sObject[]
  ).filter(Boolean);
  const vap = objects.find((o) => o.kind === 'ValidatingAdmissionPolicy') as (K8sObject & { spec: PolicySpec }) | undefined;
  t.equal(vap?.apiVersion, 'admissionregistration.k8s.io/v1beta1', 'the policy at v1beta1');
  t.equal(objects.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding')?.apiVersion, 'admissionregistration.k8s.io/v1beta1', 'its binding at v1beta1');
  t.same(vap?.spec, policy!.spec, 'the same spec as the v1 component');
  for (const o of objects.filter((x) => x.kind.endsWith('WebhookConfiguration')))
    t.equal(o.apiVersion, 'admissionregistration.k8s.io/v1', `${o.kind} stays at v1`);
});

t.test('the chart renders the same policy with the apiVersion the cluster serves', async (t) => {
  const vapOf = (args: string[]): Array<K8sObject & { spec: PolicySpec }> =>
    helmTemplate(args, 'gpu-platform').filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy')) as Array<K8sObject & { spec: PolicySpec }>;
  const v1 = vapOf(['--api-versions', 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy']);
  t.same(
    v1.map((o) => `${o.apiVersion} ${o.kind}`).sort(),
    ['admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy', 'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding'],
    '1.30+: v1',
  );
  const beta = vapOf(['--kube-version', '1.28.0', '--api-versions', 'admissionregistration.k8s.io/v1beta1/ValidatingAdmissionPolicy']);
  t.same(
    beta.map((o) => o.apiVersion),
    ['admissionregistration.k8s.io/v1beta1', 'admissionregistration.k8s.io/v1beta1'],
    '1.28/1.29 with the beta API served: v1beta1',
  );
  t.same(vapOf(['--kube-version', '1.28.0']), [], 'not rendered where neither is served');
  t.same(
    vapOf(['--api-versions', 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy', '--set', 'podPatchPolicy.enabled=false']),
    [],
    'podPatchPolicy.enabled=false: not rendered',
  );

  const chartPolicy = v1.find((o) => o.kind === 'ValidatingAdmissionPolicy')!;
  t.same(chartPolicy.spec.variables, policy!.spec.variables, 'the same variables as manifests/');
  t.same(chartPolicy.spec.validations, policy!.spec.validations, 'the same validations as manifests/');
  t.same(
    chartPolicy.spec.matchConditions,
    [{ name: 'sluice-service-account', expression: "request.userInfo.username == 'system:serviceaccount:gpu-platform:sluice'" }],
    "matched to the release namespace's ServiceAccount",
  );
  const binding = v1.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding') as unknown as K8sObject & { spec: { policyName: string } };
  t.equal(binding.spec.policyName, chartPolicy.metadata.name, 'the binding names the policy');

  const pod = gatedPod();
  const chartSpec = { ...chartPolicy.spec, matchConditions: chartPolicy.spec.matchConditions };
  t.equal(
    admit(chartSpec, pod, removeGate(pod, 1), { username: 'system:serviceaccount:gpu-platform:sluice' }),
    null,
    "the chart's policy lets the release's sluice remove its gate",
  );
  t.ok(
    admit(chartSpec, pod, mergePatch(pod, { metadata: { labels: { x: 'y' } } }), { username: 'system:serviceaccount:gpu-platform:sluice' }),
    'and denies another change',
  );
});
