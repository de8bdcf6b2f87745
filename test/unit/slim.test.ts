// cluster/slim.ts: what the informers keep of a Pod or Node is enough for every reader.
// podRecord() and podGpuRequests() on the projection equal those on the full object (real
// apiserver shapes: the captured fixtures and the benchmark's live pods), and the fields
// the CPU/memory accounting of the placement work will read are kept.
import t from 'tap';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { LAST_APPLIED, slimNode, slimPod } from '../../cluster/slim.js';
import { podRecord } from '../../cluster/pod-record.js';
import { nodeFacts } from '../../cluster/node-facts.js';
import { podGpuRequests } from '../../cluster/pod-request.js';
import { livePod } from '../../bench/cluster/shapes.js';
import { gpuPod as benchPod, syntheticCluster } from '../../bench/latency/synthetic.js';
import { fixture, gpuNode, gpuPod } from '../helpers/k8s.js';

const RESOURCES = ['nvidia.com/gpu', 'amd.com/gpu'];
const json = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T; // as the wire delivers it

function sidecarPod(): V1Pod {
  const p = json(
    gpuPod('sidecars', { gpus: 2, uid: 'u-side', node: 'g1', annotations: { [LAST_APPLIED]: '{"big":"manifest"}', 'sluice.io/gpu-model': 'H100' } }),
  );
  p.metadata!.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'u-j', controller: true }];
  p.metadata!.deletionTimestamp = '2026-11-29T12:00:00Z' as unknown as Date;
  p.spec!.initContainers = [
    { name: 'proxy', image: 'envoy', restartPolicy: 'Always', resources: { requests: { cpu: '100m', memory: '64Mi', 'nvidia.com/gpu': '1' } } },
    { name: 'init', image: 'busybox', resources: { requests: { cpu: '2', 'nvidia.com/gpu': '4' }, limits: { memory: '1Gi' } } },
  ];
  p.spec!.overhead = { cpu: '250m', memory: '120Mi' };
  p.spec!.schedulingGates = [{ name: 'sluice.io/queue' }];
  p.spec!.priorityClassName = 'sluice-guaranteed';
  p.spec!.priority = 5000;
  p.spec!.nodeSelector = { 'nvidia.com/gpu.product': 'H100' };
  p.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] },
    },
    podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname' }] },
  };
  p.spec!.tolerations = [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }];
  p.status = { phase: 'Running', startTime: '2026-11-29T11:00:00Z' as unknown as Date, conditions: [{ type: 'Ready', status: 'True' }] };
  return p;
}

t.test('podRecord and GPU requests are the same from the projection as from the full pod', async (t) => {
  const c = syntheticCluster(20, 60);
  const pods: V1Pod[] = [
    sidecarPod(),
    ...c.pods.map((p, i) => json(livePod(p, i))),
    json(livePod(benchPod('pending', 'u-pending', 8), 3)),
    fixture<{ Pod: V1Pod }>('scheduler-extender/filter-1.json').Pod,
  ];
  for (const full of pods) {
    const slim = slimPod(full);
    const uid = full.metadata?.uid ?? 'x';
    const a = podRecord(full, uid, RESOURCES, 1);
    const b = podRecord(slim, uid, RESOURCES, 1);
    const { [LAST_APPLIED]: _dropped, ...annotations } = a.annotations;
    t.same(b, { ...a, annotations }, `${full.metadata?.name}: same record (without kubectl's last-applied copy)`);
    t.same(podGpuRequests(slim, RESOURCES), podGpuRequests(full, RESOURCES));
  }
});

t.test('the projection keeps what CPU/memory accounting and scheduling facts need, and drops the rest', async (t) => {
  const full = sidecarPod();
  const s = slimPod(full);
  t.same(
    s.spec!.containers.map((c) => c.resources),
    full.spec!.containers.map((c) => c.resources),
    'containers: every request and limit',
  );
  t.same(
    s.spec!.initContainers,
    [
      { name: 'proxy', restartPolicy: 'Always', resources: full.spec!.initContainers![0]!.resources },
      { name: 'init', resources: full.spec!.initContainers![1]!.resources },
    ],
    'init containers: name, resources, restartPolicy (sidecars)',
  );
  t.same(s.spec!.overhead, full.spec!.overhead);
  t.same(s.spec!.tolerations, full.spec!.tolerations);
  t.equal(s.spec!.priorityClassName, 'sluice-guaranteed');
  t.same(s.spec!.affinity, { nodeAffinity: full.spec!.affinity!.nodeAffinity }, 'node affinity only');
  t.same(s.metadata!.ownerReferences, full.metadata!.ownerReferences);
  t.equal(s.metadata!.deletionTimestamp, full.metadata!.deletionTimestamp);
  t.equal(s.metadata!.resourceVersion, full.metadata!.resourceVersion);
  t.same(s.status, { phase: 'Running', startTime: '2026-11-29T11:00:00Z' });
  t.equal(s.spec!.containers[0]!.image, undefined, 'images, env, probes and volumes are not kept');
  t.equal(s.metadata!.annotations![LAST_APPLIED], undefined);

  const live = json(livePod(benchPod('x', 'u-x', 1, 'gpu-node-00001'), 1));
  t.ok(JSON.stringify(slimPod(live)).length * 4 < JSON.stringify(live).length, 'a live pod shrinks to under a quarter');
});

t.test('nodeFacts are the same from the projected node', async (t) => {
  const nodes: V1Node[] = [
    ...syntheticCluster(10, 0).nodes,
    json(gpuNode('cordoned', { cordoned: true })),
    json(gpuNode('notready', { ready: false, gpus: 4, product: 'NVIDIA-L4' })),
    json(gpuNode('disabled', { labels: { 'sluice.io/gpu-disabled': 'true' } })),
  ];
  for (const n of nodes) {
    const slim = slimNode(n);
    t.same(nodeFacts(slim, RESOURCES), nodeFacts(n, RESOURCES), n.metadata!.name!);
    t.same(slim.status?.allocatable, n.status?.allocatable, 'every allocatable resource (CPU, memory too)');
  }
  const tainted = json(gpuNode('t'));
  tainted.spec = { taints: [{ key: 'k', effect: 'NoSchedule' }] };
  t.same(slimNode(tainted).spec?.taints, tainted.spec.taints);
});
