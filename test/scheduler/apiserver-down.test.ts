// With the apiserver unreachable sluice keeps serving, says so in its log, retries with
// backoff, and reports not ready until its cache has synced.
import t from 'tap';
import { Writable } from 'node:stream';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve, resolveKubeConfig, NoClusterError } from '../../server/run.js';
import { unreachableKubeConfig } from '../helpers/k8s.js';

t.test('unreachable apiserver: not ready, logged, retried', async (t) => {
  const kc = unreachableKubeConfig();
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write: (c: Buffer, _e, d) => {
      for (const l of c.toString().split('\n')) if (l) logs.push(JSON.parse(l));
      d();
    },
  });
  const config = loadConfig({
    env: {},
    base: { https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' }, http: { host: '127.0.0.1', port: 0 }, store: { url: '' } },
  });
  const running = await serve(config, { log: createLogger('info', sink), kubeConfig: kc });
  t.teardown(() => running.close());
  const r = await fetch(running.opsUrl + '/readyz');
  t.equal(r.status, 503);
  t.match(await r.json(), { status: 'not ready', reason: /not synced/ });
  for (let i = 0; i < 40 && !logs.some((l) => /retrying in/.test(String(l.msg))); i++) await new Promise((res) => setTimeout(res, 50));
  t.ok(
    logs.some((l) => /cannot list\/watch (node|pod)s from the apiserver; retrying in 1s/.test(String(l.msg))),
    'the log says what failed and when it retries',
  );
  const m = await (await fetch(running.opsUrl + '/metrics')).text();
  t.match(m, /sluice_cluster_cache_synced 0/);
  t.match(m, /sluice_informer_errors_total\{kind="(node|pod)"\} [1-9]/);
  // The extender answers, but decides nothing from an unsynced cache: a retryable Error.
  const f = await fetch(running.apiUrl + '/scheduler/filter', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      Pod: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', resources: { limits: { 'nvidia.com/gpu': '1' } } }] } },
      NodeNames: ['g1'],
    }),
  });
  t.match(await f.json(), { NodeNames: [], Error: /sluice is not ready: the cluster cache has not synced yet/ });
});

t.test('no cluster configured at all: a clear error', async (t) => {
  const config = loadConfig({ env: {} });
  t.throws(() => resolveKubeConfig(config, { HOME: '/nonexistent' }), NoClusterError);
  t.throws(() => resolveKubeConfig(config, { KUBECONFIG: '/nope/config' }), { message: 'KUBECONFIG=/nope/config names no existing file' });
  t.throws(() => resolveKubeConfig({ ...config, kubeconfig: '/nope' }), { message: 'kubeconfig /nope does not exist' });
});
