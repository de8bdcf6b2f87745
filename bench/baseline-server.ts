// The latency benchmark's baseline: a minimal fastify server that parses the same request
// bodies as sluice and returns a trivial valid answer (every node passes, score 5, bind
// ok, admission allowed). sluice/baseline ratios factor out the machine and the HTTP/JSON
// cost that any extender pays. Prints one JSON line {"msg":"baseline is serving","api":URL}.
import { fastify } from 'fastify';

interface Args {
  NodeNames?: string[] | null;
  Nodes?: { items?: unknown[] } | null;
}

export async function startBaseline(port = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const app = fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  app.post('/scheduler/filter', async (req) => {
    const a = req.body as Args;
    return { Nodes: a.Nodes ?? null, NodeNames: a.NodeNames ?? null, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: '' };
  });
  app.post('/scheduler/prioritize', async (req) => {
    const a = req.body as Args;
    return (a.NodeNames ?? []).map((Host) => ({ Host, Score: 5 }));
  });
  app.post('/scheduler/bind', async () => ({ Error: '' }));
  app.post('/webhooks/mutate', async (req) => {
    const r = req.body as { apiVersion?: string; request?: { uid?: string } };
    return { apiVersion: r.apiVersion ?? 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: r.request?.uid ?? '', allowed: true } };
  });
  const url = await app.listen({ host: '127.0.0.1', port });
  return { url, close: () => app.close() };
}

if (process.argv[1]?.endsWith('baseline-server.js')) {
  const b = await startBaseline(Number(process.argv[2] ?? 0));
  process.stdout.write(JSON.stringify({ msg: 'baseline is serving', api: b.url }) + '\n');
  const stop = (): void => void b.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
