// The console's routes without a browser: sign-in, the fixed set of files, the live stream
// and shutting down while a page is open.
import t, { type Test } from 'tap';
import { fastify } from 'fastify';
import { ApiAuth } from '../../api/auth.js';
import { ClusterCache } from '../../cluster/cache.js';
import { createLogger } from '../../observability/logger.js';
import { consoleRoutes } from '../../console/routes.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';

const log = createLogger('silent');

async function start(t: Test) {
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 1000, recentPodWindow: 100 });
  cache.replaceAll([gpuNode('g1', { gpus: 4 })], []);
  const app = fastify();
  await app.register(consoleRoutes, {
    cache,
    store: null,
    manager: null,
    auth: new ApiAuth({ token: 'admin', reviewer: null, adminGroups: [], log }),
    kubeConfig: null,
    log,
    tickMs: 20,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  t.teardown(async () => void (closed || (await app.close())));
  return { app, cache, url, close: async () => ((closed = true), await app.close()) };
}

t.test('files: a fixed set, with a strict CSP; nothing else under /ui/', async (t) => {
  const { url } = await start(t);
  const index = await fetch(`${url}/ui/`);
  t.equal(index.status, 200);
  t.match(index.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  t.equal((await fetch(`${url}/ui/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
  for (const p of ['/ui/..%2fpackage.json', '/ui/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/routes.ts', '/ui/index.html', '/ui/web%2fapp.js']) {
    t.equal((await fetch(`${url}${p}`)).status, 404, `${p}: 404`);
  }
  const nope = await fetch(`${url}/ui/api/cluster`);
  t.equal(nope.status, 401, 'data needs a token');
  t.match(((await nope.json()) as { message: string }).message, /bearer token/);
  const queues = await fetch(`${url}/ui/api/queues`, { headers: { authorization: 'Bearer admin' } });
  t.equal(queues.status, 503, 'no queue manager: 503 with the reason');
  t.match(((await queues.json()) as { message: string }).message, /queue manager is off/);
});

t.test('the event stream sends changed rows, and ends when sluice shuts down', async (t) => {
  const { url, cache, close } = await start(t);
  const res = await fetch(`${url}/ui/api/events`, { headers: { authorization: 'Bearer admin' } });
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let got = '';
  const until = async (re: RegExp): Promise<void> => {
    while (!re.test(got)) {
      const { value, done } = await reader.read();
      if (done) return;
      got += value;
    }
  };
  cache.upsertPod(gpuPod('p', { node: 'g1', gpus: 1 }));
  await until(/event: nodes\ndata: .*"name":"g1"/);
  t.match(got, /"cells":\[1000,0,0,0\]/, 'g1 with one GPU in use');
  const started = Date.now();
  await close();
  t.ok(Date.now() - started < 3000, `the listener closes with a page open (${Date.now() - started} ms)`);
  t.same(await reader.read(), { done: true, value: undefined }, 'and the stream ends');
});
