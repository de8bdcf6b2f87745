// Small builders for Node and Pod objects shaped like the ones kube-apiserver returns
// (see ../shared/fixtures), for tests that need hand-made clusters.
import { KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { sharedPath } from './shared.js';

export { repoRoot } from './shared.js';

/** A captured payload, fixtures/REL in the shared folder (test/helpers/shared.ts). */
export function fixture<T = unknown>(rel: string): T {
  return JSON.parse(readFileSync(sharedPath('fixtures', rel), 'utf8')) as T;
}

export interface NodeOpts {
  gpus?: number;
  product?: string;
  resource?: string;
  ready?: boolean;
  cordoned?: boolean;
  labels?: Record<string, string>;
}

export function gpuNode(name: string, o: NodeOpts = {}): V1Node {
  const gpus = o.gpus ?? 8;
  const alloc: Record<string, string> = { cpu: '64', memory: '256Gi', pods: '110' };
  if (gpus > 0) alloc[o.resource ?? 'nvidia.com/gpu'] = String(gpus);
  const labels: Record<string, string> = { 'kubernetes.io/hostname': name, ...(o.labels ?? {}) };
  if (gpus > 0) labels['nvidia.com/gpu.product'] = o.product ?? 'NVIDIA-A100-SXM4-80GB';
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels },
    spec: o.cordoned ? { unschedulable: true } : {},
    status: {
      capacity: alloc,
      allocatable: alloc,
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', reason: o.ready === false ? 'KubeletNotReady' : 'KubeletReady' }],
    },
  } as V1Node;
}

export interface PodOpts {
  node?: string;
  gpus?: number;
  phase?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  uid?: string;
  resource?: string;
}

let counter = 0;
export function gpuPod(name: string, o: PodOpts = {}): V1Pod {
  const res = o.resource ?? 'nvidia.com/gpu';
  const gpus = o.gpus ?? 1;
  const resources = gpus > 0 ? { requests: { cpu: '1', [res]: String(gpus) }, limits: { [res]: String(gpus) } } : { requests: { cpu: '1' } };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'team-a',
      uid: o.uid ?? `uid-${name}-${++counter}`,
      resourceVersion: '1',
      labels: o.labels ?? {},
      annotations: o.annotations ?? {},
    },
    spec: { nodeName: o.node, containers: [{ name: 'main', image: 'x', resources }] },
    status: { phase: o.phase ?? (o.node ? 'Running' : 'Pending') },
  } as V1Pod;
}

/** A kubeconfig for an apiserver at `server` (a stand-in on 127.0.0.1 in tests). */
export function kubeConfigFor(server: string, token?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [token === undefined ? { name: 'u' } : { name: 'u', token }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

/** A kubeconfig whose apiserver address refuses connections (127.0.0.1:1): a real
 * "apiserver down" without a cluster. */
export const unreachableKubeConfig = (): KubeConfig => kubeConfigFor('http://127.0.0.1:1');
