// A kube-apiserver stand-in on 127.0.0.1 for tests that run sluice in live mode: it
// answers the lists and watches of the informers (nodes, pods, namespaces), pod reads and
// pods/binding, the way kube-apiserver 1.28 does for those calls. The pod list can be held
// back (`holdPods`) to reproduce a restart during which the node informer has synced and
// the pod informer has not.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';

export interface Binding {
  namespace: string;
  name: string;
  uid: string;
  node: string;
}

export interface FakeApiserver {
  url: string;
  pods: Map<string, V1Pod>;
  bindings: Binding[];
  /** Lets the held pod list go out (no-op when it was not held). */
  releasePods(): void;
  close(): Promise<void>;
}

export interface FakeApiserverOptions {
  nodes: V1Node[];
  pods: V1Pod[];
  namespaces?: V1Namespace[];
  /** Hold the answer to the pod list until releasePods(). */
  holdPods?: boolean;
}

const key = (ns: string, name: string): string => `${ns}/${name}`;

export async function startFakeApiserver(o: FakeApiserverOptions): Promise<FakeApiserver> {
  const pods = new Map(o.pods.map((p) => [key(p.metadata!.namespace!, p.metadata!.name!), structuredClone(p)]));
  const bindings: Binding[] = [];
  const podWatchers = new Set<ServerResponse>();
  let rv = 100;
  let release: () => void = () => undefined;
  const podsReleased = o.holdPods ? new Promise<void>((r) => (release = r)) : Promise.resolve();

  const json = (res: ServerResponse, code: number, body: unknown): void => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const status = (res: ServerResponse, code: number, reason: string, message: string): void =>
    json(res, code, { apiVersion: 'v1', kind: 'Status', status: 'Failure', reason, message, code });
  const list = (kind: string, items: unknown[]) => ({ apiVersion: 'v1', kind, metadata: { resourceVersion: String(rv) }, items });
  const watch = (res: ServerResponse, set?: Set<ServerResponse>): void => {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.write('');
    set?.add(res);
    res.on('close', () => set?.delete(res));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const isWatch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const path = url.pathname;
    if (path === '/version') return json(res, 200, { major: '1', minor: '28', gitVersion: 'v1.28.0' });
    if (path === '/api/v1/nodes') return isWatch ? watch(res) : json(res, 200, list('NodeList', o.nodes));
    if (path === '/api/v1/namespaces') return isWatch ? watch(res) : json(res, 200, list('NamespaceList', o.namespaces ?? []));
    if (path === '/api/v1/pods') {
      if (isWatch) return watch(res, podWatchers);
      await podsReleased;
      return json(res, 200, list('PodList', [...pods.values()]));
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/binding)?$/.exec(path);
    if (m) {
      const [, ns, name, binding] = m as unknown as [string, string, string, string | undefined];
      const pod = pods.get(key(ns, name));
      if (!pod) return status(res, 404, 'NotFound', `pods "${name}" not found`);
      if (!binding && req.method === 'GET') return json(res, 200, pod);
      if (binding && req.method === 'POST') {
        const body = JSON.parse(await readBody(req)) as { metadata?: { uid?: string }; target?: { name?: string } };
        const uid = body.metadata?.uid ?? '';
        if (uid && uid !== pod.metadata!.uid)
          return status(res, 409, 'Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata!.uid}`);
        if (pod.spec!.nodeName) return status(res, 409, 'Conflict', `pod ${name} is already assigned to node "${pod.spec!.nodeName}"`);
        pod.spec!.nodeName = body.target?.name ?? '';
        pod.metadata!.resourceVersion = String(++rv);
        bindings.push({ namespace: ns, name, uid: pod.metadata!.uid!, node: pod.spec!.nodeName });
        for (const w of podWatchers) w.write(JSON.stringify({ type: 'MODIFIED', object: pod }) + '\n');
        return json(res, 201, { apiVersion: 'v1', kind: 'Status', status: 'Success', code: 201 });
      }
    }
    return status(res, 404, 'NotFound', `the stand-in apiserver does not serve ${req.method} ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => status(res, 500, 'InternalError', String(e)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    pods,
    bindings,
    releasePods: () => release(),
    async close() {
      release();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (s += c));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}
