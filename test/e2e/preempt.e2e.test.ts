// End to end: best-effort preemption through the real kube-scheduler with sluice as its
// extender (manifests/scheduler-config.yaml with preemptVerb), sluice's webhooks and
// PriorityClasses installed (manifests/). Runs only when KUBECONFIG points at a reachable
// cluster and SLUICE_E2E_QUEUE names a queue with at least 8 guaranteed nvidia.com/gpu and a
// best-effort cap of at least 16; otherwise it reports itself skipped.
//
// It makes two 8-GPU nodes (Node objects with patched status; no kubelets), fills them with
// best-effort pods (node A: eight 1-GPU pods, node B: two 4-GPU pods), then submits a
// guaranteed 8-GPU pod. Expected: it is released (if the queue manager gates it), kube-
// scheduler preempts exactly node B's two pods (the fewest pods for the 8 GPUs), node A is
// untouched, the victims get sluice's Event, and the pod binds to node B. Without kubelets a
// deleted pod stays Terminating, so the test force-deletes victims once they are marked, as
// a kubelet would finish them.
import t from 'tap';
import { existsSync } from 'node:fs';
import { CoreV1Api, KubeConfig, PatchStrategy, SchedulingV1Api, VersionApi, setHeaderOptions, type V1Node, type V1Pod } from '@kubernetes/client-node';

const NS = 'sluice-e2e';
const RUN = Date.now().toString(36);
const QUEUE = process.env.SLUICE_E2E_QUEUE ?? '';

async function reachableCluster(): Promise<{ kc: KubeConfig } | { skip: string }> {
  const path = process.env.KUBECONFIG;
  if (!path) return { skip: 'KUBECONFIG is not set: end-to-end tests need a real cluster with sluice as scheduler extender' };
  if (!path.split(':').some((p) => existsSync(p))) return { skip: `KUBECONFIG=${path} names no existing file` };
  if (!QUEUE) return { skip: 'SLUICE_E2E_QUEUE is not set: name a sluice queue with >= 8 guaranteed nvidia.com/gpu and a best-effort cap >= 16' };
  const kc = new KubeConfig();
  kc.loadFromDefault();
  try {
    await Promise.race([
      kc.makeApiClient(VersionApi).getCode(),
      new Promise((_, rej) => setTimeout(() => rej(new Error('no answer in 5s')), 5000).unref()),
    ]);
  } catch (e) {
    return { skip: `the cluster in KUBECONFIG is not reachable (${(e as Error).message})` };
  }
  for (const name of ['sluice-guaranteed', 'sluice-best-effort']) {
    try {
      await kc.makeApiClient(SchedulingV1Api).readPriorityClass({ name });
    } catch {
      return { skip: `PriorityClass ${name} does not exist: apply manifests/sluice.yaml first` };
    }
  }
  return { kc };
}

const found = await reachableCluster();
if ('skip' in found) {
  t.comment(`preemption end-to-end tests skipped: ${found.skip}`);
  t.pass('skipped: no cluster', { skip: found.skip });
} else {
  const core = found.kc.makeApiClient(CoreV1Api);
  const [nodeA, nodeB] = [`sluice-e2e-pa-${RUN}`, `sluice-e2e-pb-${RUN}`];
  const created: string[] = [];

  const makeNode = async (name: string): Promise<void> => {
    await core.createNode({
      body: { metadata: { name, labels: { 'kubernetes.io/hostname': name, 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB', 'nvidia.com/gpu.count': '8', 'sluice.io/e2e': RUN } } } as V1Node,
    });
    const alloc = { cpu: '64', memory: '256Gi', pods: '110', 'nvidia.com/gpu': '8' };
    await core.patchNodeStatus(
      { name, body: { status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'sluice e2e', lastHeartbeatTime: new Date(), lastTransitionTime: new Date() }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  };

  const pod = (name: string, gpus: number, qos: 'guaranteed' | 'best-effort', node?: string): V1Pod => ({
    metadata: { name, namespace: NS, labels: { 'sluice.io/queue': QUEUE, 'sluice.io/qos': qos } },
    spec: {
      nodeSelector: node ? { 'kubernetes.io/hostname': node } : { 'sluice.io/e2e': RUN },
      tolerations: [{ operator: 'Exists' }],
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }],
    },
  });

  const read = (name: string): Promise<V1Pod | null> => core.readNamespacedPod({ name, namespace: NS }).catch(() => null);
  const until = async <T>(what: () => Promise<T | null | undefined | false>, seconds: number): Promise<T | null> => {
    for (let i = 0; i < seconds * 4; i++) {
      const v = await what();
      if (v) return v;
      await new Promise((r) => setTimeout(r, 250));
    }
    return null;
  };

  t.before(async () => {
    await core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => undefined);
    await makeNode(nodeA);
    await makeNode(nodeB);
  });
  t.teardown(async () => {
    for (const name of created) await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 }).catch(() => undefined);
    for (const n of [nodeA, nodeB]) await core.deleteNode({ name: n }).catch(() => undefined);
  });

  t.test('a guaranteed 8-GPU pod takes back exactly the fewest best-effort pods', async (t) => {
    const fill: Array<[string, number, string]> = [
      ...Array.from({ length: 8 }, (_, i): [string, number, string] => [`be-a${i}-${RUN}`, 1, nodeA]),
      [`be-b0-${RUN}`, 4, nodeB], [`be-b1-${RUN}`, 4, nodeB],
    ];
    for (const [name, gpus, node] of fill) {
      await core.createNamespacedPod({ namespace: NS, body: pod(name, gpus, 'best-effort', node) });
      created.push(name);
    }
    for (const [name, , node] of fill) t.equal(await until(async () => (await read(name))?.spec?.nodeName, 60), node, `${name} bound`);

    const train = `train-${RUN}`;
    await core.createNamespacedPod({ namespace: NS, body: pod(train, 8, 'guaranteed') });
    created.push(train);
    const released = await until(async () => ((await read(train))?.spec?.schedulingGates ?? []).length === 0, 60);
    t.ok(released, 'released (no scheduling gate left)');
    t.equal((await read(train))?.spec?.priorityClassName, 'sluice-guaranteed', 'the webhook set the class');

    // Act as the kubelets: finish pods marked for deletion.
    const victims = new Set<string>();
    const bound = await until(async () => {
      for (const [name] of fill) {
        const p = await read(name);
        if (p?.metadata?.deletionTimestamp) {
          victims.add(name);
          await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 }).catch(() => undefined);
        }
      }
      return (await read(train))?.spec?.nodeName;
    }, 120);
    t.equal(bound, nodeB, 'bound to the node whose two pods made room');
    t.same([...victims].sort(), [`be-b0-${RUN}`, `be-b1-${RUN}`], 'exactly node B\'s two pods were preempted');
    for (const [name, , node] of fill.filter(([, , n]) => n === nodeA)) {
      const p = await read(name);
      t.ok(p && !p.metadata?.deletionTimestamp && p.spec?.nodeName === node, `${name} untouched`);
    }
    const events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=be-b0-${RUN}` });
    t.ok(events.items.some((e) => e.reason === 'PreemptedBySluice' && /preempted by sluice-e2e\/train-/.test(e.message ?? '')), 'the victim has sluice\'s Event');
  });
}
