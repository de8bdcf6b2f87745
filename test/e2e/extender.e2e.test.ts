// End to end against a real cluster whose kube-scheduler uses sluice as its extender
// (manifests/scheduler/extender.yaml). Runs only when KUBECONFIG points at a reachable
// cluster; otherwise it reports itself skipped. It creates GPU nodes (Node objects whose
// status capacity is patched, no kubelets needed), pods asking GPUs, and asserts where
// they land; everything it creates is removed at the end.
import t from 'tap';
import { reachableCluster, removeTestObjects } from './cluster.js';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Node, type V1Pod } from '@kubernetes/client-node';

const NS = 'sluice-e2e';
const RUN = Date.now().toString(36);

const found = await reachableCluster('sluice as scheduler extender');
if ('skip' in found) {
  t.comment(`end-to-end tests skipped: ${found.skip}`);
  t.pass('skipped: no cluster', { skip: found.skip });
} else {
  const core = found.kc.makeApiClient(CoreV1Api);
  const nodeNames = [`sluice-e2e-a100-${RUN}`, `sluice-e2e-l4-${RUN}`];

  const makeNode = async (name: string, gpus: number, product: string): Promise<void> => {
    await core.createNode({
      body: {
        metadata: { name, labels: { 'nvidia.com/gpu.product': product, 'nvidia.com/gpu.count': String(gpus), 'sluice.io/e2e': RUN } },
      } as V1Node,
    });
    const alloc = { cpu: '64', memory: '256Gi', pods: '110', 'nvidia.com/gpu': String(gpus) };
    await core.patchNodeStatus(
      {
        name,
        body: {
          status: {
            capacity: alloc,
            allocatable: alloc,
            conditions: [
              { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'sluice e2e', lastHeartbeatTime: new Date(), lastTransitionTime: new Date() },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  };

  const gpuPod = (name: string, gpus: number, annotations: Record<string, string> = {}): V1Pod => ({
    metadata: { name, namespace: NS, annotations },
    spec: {
      // Only our nodes: other GPU nodes of the cluster must not change the answer.
      nodeSelector: { 'sluice.io/e2e': RUN },
      tolerations: [{ operator: 'Exists' }],
      containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }],
    },
  });

  const placedOn = async (name: string): Promise<string> => {
    for (let i = 0; i < 60; i++) {
      const p = await core.readNamespacedPod({ name, namespace: NS });
      if (p.spec?.nodeName) return p.spec.nodeName;
      await new Promise((r) => setTimeout(r, 500));
    }
    return '';
  };

  t.before(async () => {
    await core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => undefined);
    await makeNode(nodeNames[0]!, 8, 'NVIDIA-A100-SXM4-80GB');
    await makeNode(nodeNames[1]!, 4, 'NVIDIA-L4');
  });
  // The header promises everything is removed: pods, the namespace and the nodes.
  t.teardown(() => removeTestObjects(core, NS, nodeNames));

  t.test('a pod asking for an A100 lands on the A100 node', async (t) => {
    const name = `want-a100-${RUN}`;
    await core.createNamespacedPod({ namespace: NS, body: gpuPod(name, 2, { 'sluice.io/gpu-model': 'a100' }) });
    t.equal(await placedOn(name), nodeNames[0]);
  });

  t.test('binpack: a 1-GPU pod goes to the node it leaves fullest', async (t) => {
    // A100 node: 2 of 8 used -> 1 GPU leaves 5 free (5/8); L4 node: 0 of 4 -> 3 free (3/4).
    const name = `binpack-${RUN}`;
    await core.createNamespacedPod({ namespace: NS, body: gpuPod(name, 1) });
    t.equal(await placedOn(name), nodeNames[0]);
  });

  t.test('a pod larger than any node stays pending', async (t) => {
    const name = `too-big-${RUN}`;
    await core.createNamespacedPod({ namespace: NS, body: gpuPod(name, 16) });
    await new Promise((r) => setTimeout(r, 3000));
    const p = await core.readNamespacedPod({ name, namespace: NS });
    t.notOk(p.spec?.nodeName, 'not bound');
  });
}
