// A synthetic GPU cluster for the latency benchmark, written as a snapshot file that
// `sluice serve --cluster-snapshot` loads: N nodes of realistic shapes (1/2/4/8 GPUs,
// several models, NVIDIA GPU Feature Discovery labels, Ready, allocatable nvidia.com/gpu)
// and M pods already placed on them. Also the pods kube-scheduler would ask about, and
// the node subset it would send (it stops looking after numFeasibleNodesToFind nodes).
// Pure: returns plain objects; the caller writes them.
import type { V1Node, V1Pod } from '@kubernetes/client-node';

const MODELS = [
  { product: 'NVIDIA-A100-SXM4-80GB', memory: '81920', gpus: [8, 8, 4] },
  { product: 'NVIDIA-H100-80GB-HBM3', memory: '81920', gpus: [8] },
  { product: 'NVIDIA-L4', memory: '23034', gpus: [1, 2, 4] },
  { product: 'Tesla-T4', memory: '15360', gpus: [1, 2, 4] },
  { product: 'NVIDIA-A10G', memory: '23028', gpus: [1, 4] },
] as const;

/** Small seeded PRNG so that every run benchmarks the same cluster. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const nodeName = (i: number): string => `gpu-node-${String(i).padStart(5, '0')}`;

function node(i: number, r: () => number): V1Node {
  const m = MODELS[Math.floor(r() * MODELS.length)]!;
  const gpus = m.gpus[Math.floor(r() * m.gpus.length)]!;
  const name = nodeName(i);
  const cpu = String(Math.max(16, gpus * 16));
  const memory = `${Math.max(64, gpus * 128)}Gi`;
  const resources = { cpu, memory, pods: '110', 'nvidia.com/gpu': String(gpus) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      resourceVersion: String(1000 + i),
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': `gpu-${gpus}x`,
        'nvidia.com/gpu.product': m.product,
        'nvidia.com/gpu.memory': m.memory,
        'nvidia.com/gpu.count': String(gpus),
        'nvidia.com/gpu.present': 'true',
      },
    },
    spec: {},
    status: {
      capacity: resources,
      allocatable: resources,
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
    },
  } as V1Node;
}

/** A pod as kube-scheduler sends it (shape of the captured filter-1.json fixture). */
export function gpuPod(name: string, uid: string, gpus: number, nodeName?: string): V1Pod {
  const resources =
    gpus > 0
      ? { limits: { 'nvidia.com/gpu': String(gpus) }, requests: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': String(gpus) } }
      : { requests: { cpu: '1', memory: '2Gi' } };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'team-a',
      uid,
      resourceVersion: '256',
      labels: { app: name, 'sluice.io/queue': 'team-a', 'sluice.io/qos': 'best-effort' },
    },
    spec: {
      containers: [{ name: 'trainer', image: 'nvcr.io/nvidia/pytorch:24.05-py3', command: ['python', 'train.py'], resources }],
      restartPolicy: 'Always',
      schedulerName: 'default-scheduler',
      priority: 0,
      ...(nodeName ? { nodeName } : {}),
    },
    status: nodeName ? { phase: 'Running' } : { phase: 'Pending' },
  } as V1Pod;
}

const uid = (prefix: number, i: number): string => `${prefix.toString(16).padStart(8, '0')}-0000-4000-8000-${String(i).padStart(12, '0')}`;

/** N nodes and M placed pods; GPU pods fill about `fill` of the GPUs, the rest are CPU pods. */
export function syntheticCluster(nodes: number, pods: number, fill = 0.5, seed = 7): { nodes: V1Node[]; pods: V1Pod[] } {
  const r = rng(seed);
  const ns = Array.from({ length: nodes }, (_, i) => node(i, r));
  const free = ns.map((n) => Number(n.status?.allocatable?.['nvidia.com/gpu'] ?? 0));
  const budget = Math.floor(free.reduce((a, b) => a + b, 0) * fill);
  const ps: V1Pod[] = [];
  let used = 0;
  for (let i = 0; i < pods; i++) {
    const n = i % nodes;
    const want = used < budget ? 1 : 0;
    const gpus = want && free[n]! > 0 ? 1 : 0;
    free[n]! -= gpus;
    used += gpus;
    ps.push(gpuPod(`placed-${i}`, uid(1, i), gpus, nodeName(n)));
  }
  return { nodes: ns, pods: ps };
}

/** kube-scheduler's numFeasibleNodesToFind with the default percentageOfNodesToScore:
 * all nodes up to 100; else 50% - n/125, at least 5%, at least 100 nodes. */
export function feasibleNodesToFind(n: number): number {
  if (n < 100) return n;
  const pct = Math.max(5, 50 - Math.floor(n / 125));
  return Math.max(100, Math.floor((n * pct) / 100));
}

/** The NodeNames kube-scheduler would send for cycle `k`: it resumes its node scan where
 * the previous cycle stopped. */
export function nodeNamesForCycle(total: number, k: number): string[] {
  const want = feasibleNodesToFind(total);
  const start = (k * want) % total;
  return Array.from({ length: want }, (_, j) => nodeName((start + j) % total));
}

/** Pending pods to schedule: mostly 1 GPU, some 2/4/8. */
export function pendingPods(count: number, seed = 11): V1Pod[] {
  const r = rng(seed);
  const sizes = [1, 1, 1, 1, 1, 2, 2, 4, 8];
  return Array.from({ length: count }, (_, i) => gpuPod(`bench-${i}`, uid(2, i), sizes[Math.floor(r() * sizes.length)]!));
}

/** GPUs not taken by the placed pods. */
export function freeGpuCount(c: { nodes: V1Node[]; pods: V1Pod[] }): number {
  const gpu = (o: Record<string, unknown> | undefined): number => Number(o?.['nvidia.com/gpu'] ?? 0);
  const total = c.nodes.reduce((s, n) => s + gpu(n.status?.allocatable as Record<string, unknown> | undefined), 0);
  const used = c.pods.reduce((s, p) => s + gpu(p.spec?.containers[0]?.resources?.limits as Record<string, unknown> | undefined), 0);
  return total - used;
}
