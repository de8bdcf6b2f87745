// How a bind reaches the cluster. KubeBinder posts pods/binding to the apiserver, as
// kube-scheduler's default binder does. SnapshotBinder serves `--cluster-snapshot` mode
// (no apiserver): the binding is applied to the in-memory cluster only, and says so.
//
// The bind is the one apiserver call on the scheduling hot path, so it does not go through
// client-node (a new TLS connection per call) but through ApiTransport's keep-alive agent
// (cluster/api-transport.ts). Reading a pod (rare: a bind for a pod the informer has not
// delivered yet) still uses client-node.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from '../cluster/cache.js';
import { ApiError, ApiTransport } from '../cluster/api-transport.js';
import type { HamiApi } from './hami-bind.js';

export interface PodBinder {
  bind(namespace: string, name: string, uid: string, node: string): Promise<void>;
  readPod(namespace: string, name: string): Promise<V1Pod>;
}

/** An apiserver refusal of a binding (code = HTTP status, body = its text). */
export { ApiError as BindError };

export class KubeBinder implements PodBinder, HamiApi {
  private readonly core: CoreV1Api;
  private readonly api: ApiTransport;

  constructor(
    kc: KubeConfig,
    private readonly timeoutMs = 10_000,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.api = new ApiTransport(kc);
  }

  async bind(namespace: string, name: string, uid: string, node: string): Promise<void> {
    const body = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name, namespace, uid },
      target: { apiVersion: 'v1', kind: 'Node', name: node },
    });
    // api-call: POST /api/v1/namespaces/{namespace}/pods/{name}/binding
    await this.api.call('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/binding`, {
      body,
      timeoutMs: this.timeoutMs,
    });
  }

  readPod(namespace: string, name: string): Promise<V1Pod> {
    return this.core.readNamespacedPod({ name, namespace });
  }

  // HAMi's protocol (scheduler/hami-bind.ts): on the same keep-alive transport as the bind.
  async readNode(name: string): Promise<{ resourceVersion: string; annotations: Record<string, string> }> {
    // api-call: GET /api/v1/nodes/{name}
    const n = JSON.parse(await this.api.call('GET', `/api/v1/nodes/${encodeURIComponent(name)}`, { timeoutMs: this.timeoutMs })) as {
      metadata?: { resourceVersion?: string; annotations?: Record<string, string> };
    };
    return { resourceVersion: n.metadata?.resourceVersion ?? '', annotations: n.metadata?.annotations ?? {} };
  }

  async patchNodeAnnotations(name: string, annotations: Record<string, string | null>, resourceVersion: string): Promise<void> {
    const body = JSON.stringify({ metadata: { annotations, resourceVersion } });
    // api-call: PATCH /api/v1/nodes/{name}
    await this.api.call('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}`, { body, timeoutMs: this.timeoutMs, contentType: 'application/merge-patch+json' });
  }

  async patchPodAnnotations(namespace: string, name: string, annotations: Record<string, string>): Promise<void> {
    const body = JSON.stringify({ metadata: { annotations } });
    // api-call: PATCH /api/v1/namespaces/{namespace}/pods/{name}
    await this.api.call('PATCH', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, {
      body,
      timeoutMs: this.timeoutMs,
      contentType: 'application/merge-patch+json',
    });
  }

  async podExists(namespace: string, name: string): Promise<boolean> {
    try {
      // api-call: GET /api/v1/namespaces/{namespace}/pods/{name}
      await this.api.call('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, { timeoutMs: this.timeoutMs });
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return false;
      throw e;
    }
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
