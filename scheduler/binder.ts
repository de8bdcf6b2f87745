// How a bind reaches the cluster. KubeBinder posts pods/binding to the apiserver, as
// kube-scheduler's default binder does. SnapshotBinder serves `--cluster-snapshot` mode
// (no apiserver): the binding is applied to the in-memory cluster only, and says so.
//
// The bind is the one apiserver call on the scheduling hot path, so it does not go through
// client-node: client-node 1.4 builds a new https.Agent for every call, i.e. a new TLS
// connection per bind (measured: ~18 % of sluice's CPU in a real scheduling run went to TLS
// set-up). KubeBinder keeps one keep-alive agent, made from the kubeconfig's TLS material
// and rebuilt only when that changes, and takes the auth headers from the kubeconfig on
// every call (tokens rotate). Everything else still uses client-node.
import http from 'node:http';
import https from 'node:https';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from '../cluster/cache.js';

export interface PodBinder {
  bind(namespace: string, name: string, uid: string, node: string): Promise<void>;
  readPod(namespace: string, name: string): Promise<V1Pod>;
}

/** An apiserver refusal, shaped as client-node reports one (code = HTTP status, body = its text). */
export class BindError extends Error {
  override name = 'BindError';
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    super(`HTTP ${code} from the apiserver`);
  }
}

export class KubeBinder implements PodBinder {
  private readonly core: CoreV1Api;
  private agent: http.Agent | null = null;
  private agentKey = '';

  constructor(
    private readonly kc: KubeConfig,
    private readonly timeoutMs = 10_000,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async bind(namespace: string, name: string, uid: string, node: string): Promise<void> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig names no cluster server');
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts); // auth headers, TLS files; its per-call agent is not used
    // api-call: POST /api/v1/namespaces/{namespace}/pods/{name}/binding
    const url = new URL(`${server.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/binding`);
    const body = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name, namespace, uid },
      target: { apiVersion: 'v1', kind: 'Node', name: node },
    });
    const agent = this.agentFor(url, opts);
    const send = url.protocol === 'https:' ? https.request : http.request;
    await new Promise<void>((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          agent,
          auth: opts.auth,
          timeout: this.timeoutMs,
          headers: { ...(opts.headers ?? {}), 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new BindError(status, text));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`the apiserver did not answer the binding within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** One keep-alive agent per TLS identity (rebuilt when the kubeconfig's TLS material changes). */
  private agentFor(url: URL, o: https.RequestOptions): http.Agent {
    const key = [url.protocol, String(o.ca ?? ''), String(o.cert ?? ''), String(o.key ?? ''), String(o.rejectUnauthorized), String(o.servername ?? '')].join('|');
    if (this.agent && key === this.agentKey) return this.agent;
    this.agent?.destroy();
    this.agentKey = key;
    this.agent =
      url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 16, ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized, servername: o.servername })
        : new http.Agent({ keepAlive: true, maxSockets: 16 });
    return this.agent;
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
