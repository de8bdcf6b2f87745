// What HAMi's NVIDIA device plugin does on kubelet's Allocate, for tests (stand-in
// apiserver and real control plane alike; it only talks to the apiserver). Written from
// Project-HAMi/HAMi's source, deliberately apart from sluice's own encoder/decoder
// (cluster/hami.ts) so that a test of the two together can fail:
//   - find the pod (pkg/util/util.go GetPendingPod): the pod named by the node's
//     hami.io/mutex.lock ("<time>,<ns>,<name>", GetAllocatePodByNode), else the first pod
//     on the node that is Pending, has hami.io/bind-time, bind phase "allocating" or
//     "success", and hami.io/vgpu-node equal to the node;
//   - decode hami.io/vgpu-devices-to-allocate (pkg/device/devices.go DecodePodDevices,
//     DecodeContainerDevices): containers split by ";", devices by ":", a device is
//     "uuid,type,mem,cores" (at least 4 fields, mem and cores integers);
//   - pop the containers' devices (plugin/util.go popNextContainerDevices), write the
//     erased list back, then (PodAllocationTrySuccess / PodAllocationFailed) set
//     hami.io/bind-phase and release the node lock if this pod holds it.
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from '@kubernetes/client-node';

export interface AgentDevice {
  uuid: string;
  type: string;
  mem: number;
  cores: number;
}

/** DecodePodDevices for one annotation: per container, its devices. Throws like HAMi on a
 * device with fewer than 4 fields or non-integer numbers. */
export function decodeAsPlugin(value: string): AgentDevice[][] {
  return value.split(';').map((ctr) => {
    if (ctr.length === 0) return [];
    const out: AgentDevice[] = [];
    for (const val of ctr.split(':')) {
      if (!val.includes(',')) continue;
      const f = val.split(',');
      if (f.length < 4) throw new Error('pod annotation format error, missing fields');
      const mem = Number.parseInt(f[2]!, 10);
      const cores = Number.parseInt(f[3]!, 10);
      if (!/^-?\d+$/.test(f[2]!) || !/^-?\d+$/.test(f[3]!)) throw new Error(`invalid field in ${val}`);
      out.push({ uuid: f[0]!, type: f[1]!, mem, cores });
    }
    return out;
  });
}

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export class HamiAgent {
  private readonly core: CoreV1Api;
  /** Every allocation this agent made: pod, node, the devices per container. */
  readonly allocations: Array<{ pod: string; node: string; devices: AgentDevice[][]; outcome: 'success' | 'failed' }> = [];

  constructor(
    kc: KubeConfig,
    private readonly decide: (pod: V1Pod, devices: AgentDevice[][]) => 'success' | 'failed' = () => 'success',
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** GetPendingPod: the pod HAMi's plugin would allocate for on `node` now, or null. */
  async pendingPod(node: string): Promise<V1Pod | null> {
    const n = await this.core.readNode({ name: node });
    const lock = n.metadata?.annotations?.['hami.io/mutex.lock'];
    if (lock !== undefined) {
      const parts = lock.split(',');
      if (parts.length === 3 && parts[1] && parts[2]) {
        try {
          return await this.core.readNamespacedPod({ namespace: parts[1], name: parts[2] });
        } catch {
          return null;
        }
      }
    }
    const list = await this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` });
    for (const p of list.items) {
      const a = p.metadata?.annotations ?? {};
      if (p.status?.phase !== 'Pending') continue;
      if (a['hami.io/bind-time'] === undefined) continue;
      if (a['hami.io/bind-phase'] !== 'allocating' && a['hami.io/bind-phase'] !== 'success') continue;
      if (a['hami.io/vgpu-node'] === node) return p;
    }
    return null;
  }

  /** One Allocate on `node` (kubelet calls it once the pod is bound there). Returns the pod
   * allocated for, or null when none was pending or it is not bound yet. */
  async allocate(node: string): Promise<V1Pod | null> {
    const pod = await this.pendingPod(node);
    if (!pod || pod.spec?.nodeName !== node) return null; // kubelet has not seen it yet
    const a = pod.metadata?.annotations ?? {};
    if (a['hami.io/bind-phase'] !== 'allocating') return null;
    const ns = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    let devices: AgentDevice[][] = [];
    let outcome: 'success' | 'failed';
    try {
      devices = decodeAsPlugin(a['hami.io/vgpu-devices-to-allocate'] ?? '');
      outcome = this.decide(pod, devices);
    } catch {
      outcome = 'failed';
    }
    // popNextContainerDevices for every container, then the erased list written back.
    const erased = devices.map(() => '').join(';');
    await this.core.patchNamespacedPod(
      { namespace: ns, name, body: { metadata: { annotations: { 'hami.io/vgpu-devices-to-allocate': erased, 'hami.io/bind-phase': outcome } } } },
      merge,
    );
    const n = await this.core.readNode({ name: node });
    const lock = n.metadata?.annotations?.['hami.io/mutex.lock'];
    if (lock !== undefined && lock.endsWith(`,${ns},${name}`)) {
      await this.core
        .patchNode({ name: node, body: { metadata: { annotations: { 'hami.io/mutex.lock': null }, resourceVersion: n.metadata!.resourceVersion } } }, merge)
        .catch(() => undefined);
    }
    this.allocations.push({ pod: `${ns}/${name}`, node, devices, outcome });
    return pod;
  }

  /** Calls allocate on each node every `everyMs` until stopped, one loop per node (one
   * plugin per node, as HAMi's DaemonSet runs). */
  run(nodes: readonly string[], everyMs = 20): () => Promise<void> {
    let stopped = false;
    const loops = nodes.map(async (n) => {
      while (!stopped) {
        await this.allocate(n).catch(() => undefined);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    });
    return async () => {
      stopped = true;
      await Promise.all(loops);
    };
  }
}

/** A node as HAMi's plugin registers it: GPUs of `memMiB` with 100 cores and `split`
 * slots each, allocatable nvidia.com/gpu = GPUs x split. `form` picks the annotation
 * encoding (HAMi today writes JSON; older plugins the 9- or 7-field colon form). */
export function hamiNode(
  name: string,
  o: { gpus?: number; memMiB?: number; split?: number; form?: 'json' | '9' | '7'; product?: string } = {},
): import('@kubernetes/client-node').V1Node {
  const gpus = o.gpus ?? 2;
  const mem = o.memMiB ?? 16384;
  const split = o.split ?? 10;
  const type = o.product ?? 'NVIDIA-Tesla T4';
  const ids = Array.from({ length: gpus }, (_, i) => `GPU-${name}-${i}`);
  const form = o.form ?? 'json';
  const register =
    form === 'json'
      ? JSON.stringify(ids.map((id, i) => ({ id, ...(i ? { index: i } : {}), count: split, devmem: mem, devcore: 100, type, mode: 'hami-core', health: true })))
      : ids.map((id, i) => `${id},${split},${mem},100,${type},0,true${form === '9' ? `,${i},hami-core` : ''}:`).join('');
  const alloc = { cpu: '64', memory: '256Gi', pods: '110', 'nvidia.com/gpu': String(gpus * split) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: { 'kubernetes.io/hostname': name, 'nvidia.com/gpu.product': type.replace(/[^A-Za-z0-9_.-]/g, '-') },
      annotations: { 'hami.io/node-nvidia-register': register },
    },
    spec: {},
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] },
  };
}

/** A pod asking one GPU share: `memMiB` of memory and `cores` percent of compute. */
export function sharePod(name: string, o: { memMiB?: number; cores?: number; gpus?: number; namespace?: string; percent?: number } = {}): V1Pod {
  const limits: Record<string, string> = { 'nvidia.com/gpu': String(o.gpus ?? 1) };
  if (o.memMiB !== undefined) limits['nvidia.com/gpumem'] = String(o.memMiB);
  if (o.percent !== undefined) limits['nvidia.com/gpumem-percentage'] = String(o.percent);
  if (o.cores !== undefined) limits['nvidia.com/gpucores'] = String(o.cores);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.namespace ?? 'team-a' },
    spec: { containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', resources: { limits, requests: { cpu: '100m' } } }] },
  } as V1Pod;
}
