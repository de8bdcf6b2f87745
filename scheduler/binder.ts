// How a bind reaches the cluster. KubeBinder posts pods/binding to the apiserver, as
// kube-scheduler's default binder does. SnapshotBinder serves `--cluster-snapshot` mode
// (no apiserver): the binding is applied to the in-memory cluster only, and says so.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from '../cluster/cache.js';

export interface PodBinder {
  bind(namespace: string, name: string, uid: string, node: string): Promise<void>;
  readPod(namespace: string, name: string): Promise<V1Pod>;
}

export class KubeBinder implements PodBinder {
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async bind(namespace: string, name: string, uid: string, node: string): Promise<void> {
    await this.core.createNamespacedPodBinding({
      name,
      namespace,
      body: {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace, uid },
        target: { apiVersion: 'v1', kind: 'Node', name: node },
      },
    });
  }

  readPod(namespace: string, name: string): Promise<V1Pod> {
    return this.core.readNamespacedPod({ name, namespace });
  }
}

export class SnapshotBinder implements PodBinder {
  constructor(private readonly cache: ClusterCache) {}

  async bind(namespace: string, name: string, uid: string): Promise<void> {
    this.cache.confirmAssumed(uid, namespace, name);
  }

  async readPod(namespace: string, name: string): Promise<V1Pod> {
    throw new Error(`pod ${namespace}/${name} is not in the cluster snapshot (sluice runs without an apiserver)`);
  }
}
