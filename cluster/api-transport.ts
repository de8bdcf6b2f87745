// Plain HTTP(S) to the apiserver for the calls on sluice's hot paths: the bind POST
// (scheduler/binder.ts) and the node and pod list/watch (cluster/list-watch.ts). They do
// not go through client-node: client-node 1.4 builds a new https.Agent for every call (a
// new TLS connection per bind: ~18 % of sluice's CPU in a real scheduling run went to TLS
// set-up) and turns every object into class instances through its ObjectSerializer.
//
// One keep-alive agent, made from the kubeconfig's TLS material and rebuilt only when that
// changes; the auth headers are taken from the kubeconfig on every call (tokens rotate).
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** An apiserver refusal (code = HTTP status, body = its text), shaped as client-node reports one. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    super(`HTTP ${code} from the apiserver`);
  }
}

export interface ApiTransportOptions {
  /** Most connections kept to the apiserver (a watch holds one for its lifetime). */
  maxSockets?: number;
}

export class ApiTransport {
  private agent: http.Agent | null = null;
  private agentKey = '';
  private readonly maxSockets: number;

  constructor(
    private readonly kc: KubeConfig,
    o: ApiTransportOptions = {},
  ) {
    this.maxSockets = o.maxSockets ?? 16;
  }

  /** Opens a request; resolves with the response once its headers arrived. */
  async open(
    method: string,
    path: string,
    o: { body?: string; timeoutMs?: number; signal?: AbortSignal; contentType?: string } = {},
  ): Promise<http.IncomingMessage> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig names no cluster server');
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts); // auth headers, TLS files; its per-call agent is not used
    const url = new URL(server.replace(/\/$/, '') + path);
    const agent = this.agentFor(url, opts);
    const send = url.protocol === 'https:' ? https.request : http.request;
    const headers: http.OutgoingHttpHeaders = { ...(opts.headers as http.OutgoingHttpHeaders | undefined), accept: 'application/json' };
    if (o.body !== undefined) {
      headers['content-type'] = o.contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(o.body);
    }
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = send(
        url,
        { method, agent, auth: opts.auth, headers, ...(o.timeoutMs ? { timeout: o.timeoutMs } : {}), ...(o.signal ? { signal: o.signal } : {}) },
        resolve,
      );
      if (o.timeoutMs) req.on('timeout', () => req.destroy(new Error(`nothing from the apiserver on ${method} ${url.pathname} for ${o.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(o.body);
    });
  }

  /** A whole request: resolves with the body text of a 2xx answer, rejects with ApiError otherwise. */
  async call(method: string, path: string, o: { body?: string; timeoutMs?: number; contentType?: string } = {}): Promise<string> {
    const res = await this.open(method, path, o);
    const text = await readText(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw new ApiError(status, text);
    return text;
  }

  /** One keep-alive agent per TLS identity (rebuilt when the kubeconfig's TLS material changes). */
  private agentFor(url: URL, o: https.RequestOptions): http.Agent {
    const key = [url.protocol, String(o.ca ?? ''), String(o.cert ?? ''), String(o.key ?? ''), String(o.rejectUnauthorized), String(o.servername ?? '')].join(
      '|',
    );
    if (this.agent && key === this.agentKey) return this.agent;
    this.agent?.destroy();
    this.agentKey = key;
    this.agent =
      url.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            maxSockets: this.maxSockets,
            ca: o.ca,
            cert: o.cert,
            key: o.key,
            rejectUnauthorized: o.rejectUnauthorized,
            servername: o.servername,
          })
        : new http.Agent({ keepAlive: true, maxSockets: this.maxSockets });
    return this.agent;
  }

  /** Closes the kept connections. */
  close(): void {
    this.agent?.destroy();
    this.agent = null;
  }
}

export function readText(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}
