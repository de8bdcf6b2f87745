// The benchmarks' baseline: a minimal fastify server that parses the same request bodies
// as sluice and returns a trivial valid answer (every node passes, score 5, bind ok,
// admission allowed). sluice/baseline ratios factor out the machine and the HTTP/JSON
// cost that any extender pays. Given an apiserver (second argument: a plain-HTTP URL with
// no auth, like the stand-in, or `kubeconfig:PATH` for a real cluster), bind really posts
// pods/binding there over one keep-alive connection pool, as a no-op extender that binds
// must (the cluster benchmarks).
// Prints one JSON line {"msg":"baseline is serving","api":URL}.
import { Agent, request } from 'node:http';
import { fastify } from 'fastify';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiTransport } from '../cluster/api-transport.js';
import { parseOrExit } from '../cli/flags.js';

interface Args {
  NodeNames?: string[] | null;
  Nodes?: { items?: unknown[] } | null;
}

interface BindingArgs {
  PodName: string;
  PodNamespace: string;
  PodUID: string;
  Node: string;
}

/** POSTs a Binding; resolves with '' or the apiserver's refusal. */
function postBinding(apiserver: URL, agent: Agent, a: BindingArgs): Promise<string> {
  const body = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name: a.PodName, namespace: a.PodNamespace, uid: a.PodUID },
    target: { apiVersion: 'v1', kind: 'Node', name: a.Node },
  });
  const path = `/api/v1/namespaces/${encodeURIComponent(a.PodNamespace)}/pods/${encodeURIComponent(a.PodName)}/binding`;
  return new Promise((resolve) => {
    const req = request(
      {
        host: apiserver.hostname,
        port: apiserver.port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve((res.statusCode ?? 0) < 300 ? '' : `HTTP ${res.statusCode}: ${text}`));
      },
    );
    req.on('error', (e) => resolve(e.message));
    req.end(body);
  });
}

/** The same POST through a kubeconfig's server and credentials (a real cluster). */
async function postBindingKube(api: ApiTransport, a: BindingArgs): Promise<string> {
  const body = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name: a.PodName, namespace: a.PodNamespace, uid: a.PodUID },
    target: { apiVersion: 'v1', kind: 'Node', name: a.Node },
  });
  try {
    await api.call('POST', `/api/v1/namespaces/${encodeURIComponent(a.PodNamespace)}/pods/${encodeURIComponent(a.PodName)}/binding`, {
      body,
      timeoutMs: 10_000,
    });
    return '';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export async function startBaseline(port = 0, apiserverArg = ''): Promise<{ url: string; close: () => Promise<void> }> {
  let kube: ApiTransport | null = null;
  if (apiserverArg.startsWith('kubeconfig:')) {
    const kc = new KubeConfig();
    kc.loadFromFile(apiserverArg.slice('kubeconfig:'.length));
    kube = new ApiTransport(kc);
  }
  const apiserver = apiserverArg && !kube ? new URL(apiserverArg) : null;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const app = fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  app.post('/scheduler/filter', async (req) => {
    const a = req.body as Args;
    return { Nodes: a.Nodes ?? null, NodeNames: a.NodeNames ?? null, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: '' };
  });
  app.post('/scheduler/prioritize', async (req) => {
    const a = req.body as Args;
    return (a.NodeNames ?? []).map((Host) => ({ Host, Score: 5 }));
  });
  app.post('/scheduler/bind', async (req) => {
    const a = req.body as BindingArgs;
    return { Error: kube ? await postBindingKube(kube, a) : apiserver ? await postBinding(apiserver, agent, a) : '' };
  });
  app.post('/webhooks/mutate', async (req) => {
    const r = req.body as { apiVersion?: string; request?: { uid?: string } };
    return { apiVersion: r.apiVersion ?? 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: r.request?.uid ?? '', allowed: true } };
  });
  const url = await app.listen({ host: '127.0.0.1', port });
  return { url, close: () => app.close().then(() => (agent.destroy(), kube?.close())) };
}

if (process.argv[1]?.endsWith('baseline-server.js')) {
  const spec = {
    usage: 'node dist/bench/baseline-server.js [PORT [APISERVER]]',
    about: `The benchmarks' baseline extender (they start it themselves): parses what sluice parses and
answers trivially. PORT 0 (the default) takes a free port. APISERVER (a plain-HTTP URL, or
kubeconfig:PATH) makes bind really post pods/binding there. Prints {"msg":"baseline is serving","api":URL}.`,
    flags: [],
  };
  const [port = '0', apiserver = '', ...extra] = parseOrExit(process.argv.slice(2), spec, 'baseline-server', { positional: true }).positional;
  if (extra.length > 0 || !/^\d+$/.test(port)) {
    process.stderr.write('baseline-server: arguments are [PORT [APISERVER]]; see --help\n');
    process.exit(2);
  }
  const b = await startBaseline(Number(port), apiserver);
  process.stdout.write(JSON.stringify({ msg: 'baseline is serving', api: b.url }) + '\n');
  const stop = (): void => void b.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
