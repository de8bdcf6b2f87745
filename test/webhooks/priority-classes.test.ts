// Priorities come from the cluster's PriorityClasses, not from config: classes whose values
// differ from the defaults, a missing class (the pod is admitted unchanged on that point,
// with a warning saying how to create it), classes not listed yet, and snapshot mode.
import t from 'tap';
import type { V1Node, V1Pod, V1PriorityClass } from '@kubernetes/client-node';
import { PriorityClassStore } from '../../cluster/priority-classes.js';
import { loadConfig } from '../../config/load.js';
import { CacheFacts } from '../../webhooks/cluster-facts.js';
import { mutatePod } from '../../webhooks/mutate.js';
import { policyFromConfig } from '../../webhooks/policy.js';
import { startServer } from '../helpers/server.js';
import { applyPatch, decodePatch, loadReview, testCluster } from './helpers.js';

const webhooks = loadConfig({ env: {} }).webhooks;
const policy = policyFromConfig(webhooks, ['nvidia.com/gpu']);
const names = new Set([webhooks.guaranteedPriorityClass, webhooks.bestEffortPriorityClass]);
const pc = (name: string, value: number, preemptionPolicy?: string): V1PriorityClass =>
  ({
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name },
    value,
    ...(preemptionPolicy ? { preemptionPolicy } : {}),
  }) as V1PriorityClass;
const gpuPod = (qos: string): V1Pod =>
  ({
    metadata: { name: 'p', namespace: 'team-a', labels: { 'sluice.io/queue': 'team-a', 'sluice.io/qos': qos } },
    spec: { containers: [{ name: 'main', image: 'x', resources: { limits: { 'nvidia.com/gpu': '1' }, requests: { 'nvidia.com/gpu': '1' } } }], priority: 0 },
  }) as V1Pod;

function mutateWith(store: PriorityClassStore, qos: string) {
  const { cache, namespaces } = testCluster();
  const facts = new CacheFacts(cache, namespaces, Date.now, store);
  const pod = gpuPod(qos);
  const m = mutatePod({ pod, username: 'ann', nsLabels: namespaces.get('team-a'), policy, facts });
  return {
    m,
    pod: applyPatch(pod, m.ops) as V1Pod,
    again: (p: V1Pod) => mutatePod({ pod: p, username: 'ann', nsLabels: namespaces.get('team-a'), policy, facts }),
  };
}

t.test("the classes' real values are written, not the configured ones", async (t) => {
  t.equal(webhooks.bestEffortPriority, 100, 'the configured default differs from the cluster below');
  const store = new PriorityClassStore(names);
  store.replaceAll([pc('sluice-best-effort', 10, 'PreemptLowerPriority'), pc('sluice-guaranteed', 5000), pc('unrelated', 1)]);
  const be = mutateWith(store, 'best-effort');
  t.same([be.pod.spec!.priorityClassName, be.pod.spec!.priority, be.pod.spec!.preemptionPolicy], ['sluice-best-effort', 10, 'PreemptLowerPriority']);
  t.same(be.m.warnings, []);
  t.same(be.again(be.pod).ops, [], 'idempotent');
  const g = mutateWith(store, 'guaranteed');
  t.same([g.pod.spec!.priority, g.pod.spec!.preemptionPolicy], [5000, 'PreemptLowerPriority'], 'preemptionPolicy defaults as the apiserver defaults it');
  t.equal(store.get('unrelated'), null, 'only the configured names are kept');
});

t.test('a configured class the cluster lacks: the pod keeps its priority and the warning says how to fix it', async (t) => {
  const store = new PriorityClassStore(names);
  store.replaceAll([pc('sluice-guaranteed', 1000, 'PreemptLowerPriority')]);
  const be = mutateWith(store, 'best-effort');
  t.notOk(
    be.m.ops.some((o) => /priority|preemptionPolicy/i.test(o.path)),
    'no priority class, priority or preemptionPolicy written',
  );
  t.same(be.m.warnings, [
    "PriorityClass sluice-best-effort (sluice.io/qos=best-effort) does not exist, so sluice left this pod's priority as it was; " +
      'ask a cluster admin to create it: kubectl create priorityclass sluice-best-effort --value=100 --preemption-policy=Never',
  ]);
  t.ok(
    be.m.ops.some((o) => o.path === '/spec/tolerations'),
    'the rest of the mutation still happens',
  );
  const g = mutateWith(store, 'guaranteed');
  t.equal(g.pod.spec!.priority, 1000, 'the class that exists is used');
  t.same(g.m.warnings, []);
});

t.test('classes not listed yet (informer not synced): the configured values', async (t) => {
  const store = new PriorityClassStore(names);
  store.upsert(pc('sluice-guaranteed', 7));
  t.equal(store.get('sluice-best-effort'), undefined, 'unknown, not missing');
  const be = mutateWith(store, 'best-effort');
  t.same([be.pod.spec!.priority, be.m.warnings], [100, []]);
  t.equal(mutateWith(store, 'guaranteed').pod.spec!.priority, 7, 'a class already seen is used');
});

t.test('snapshot mode: PriorityClasses from the file; none in the file: the config values', async (t) => {
  const review = loadReview('gpu-pod.json');
  const nodes = [] as V1Node[];
  const withClasses = await startServer({ nodes, pods: [], priorityClasses: [pc('sluice-guaranteed', 2500, 'PreemptLowerPriority')] } as never);
  try {
    const r = await withClasses.post<{ response: { patch: string; warnings?: string[] } }>('/webhooks/mutate', review);
    const ops = decodePatch(r.body.response);
    t.same(ops.find((o: { path: string }) => o.path === '/spec/priority')?.value, 2500);
    t.notOk(
      (r.body.response.warnings ?? []).some((w) => /PriorityClass/.test(w)),
      'no PriorityClass warning (the queue position may be there)',
    );
  } finally {
    await withClasses.close();
  }
  const without = await startServer({ nodes, pods: [] });
  try {
    const r = await without.post<{ response: { patch: string } }>('/webhooks/mutate', review);
    t.same(decodePatch(r.body.response).find((o: { path: string }) => o.path === '/spec/priority')?.value, 1000);
  } finally {
    await without.close();
  }
  // The classes in the file but not sluice-best-effort: a best-effort pod is warned about it.
  const missing = await startServer({ nodes, pods: [], priorityClasses: [pc('sluice-guaranteed', 1000)] } as never);
  try {
    const be = structuredClone(review);
    be.request.object!.metadata.labels['sluice.io/qos'] = 'best-effort';
    const r = await missing.post<{ response: { allowed: boolean; warnings: string[] } }>('/webhooks/mutate', be);
    t.equal(r.body.response.allowed, true, 'never a rejected pod');
    t.match(r.body.response.warnings, [/PriorityClass sluice-best-effort .* does not exist.*kubectl create priorityclass sluice-best-effort/]);
  } finally {
    await missing.close();
  }
});
