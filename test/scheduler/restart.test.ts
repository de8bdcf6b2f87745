// A freshly (re)started sluice in live mode: binds, filters and prioritizes that arrive
// after the node informer has synced but before the pod informer has must not decide from
// a cache that shows every node empty (issue 12, defect 1: 16 of 8 GPUs after a kill -9).
import t from 'tap';
import { Writable } from 'node:stream';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import { startFakeApiserver } from '../helpers/fake-apiserver.js';
import { gpuNode, gpuPod, kubeConfigFor } from '../helpers/k8s.js';

const until = async (what: string, ok: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

t.test('binds fired before the pod informer has synced never overcommit', async (t) => {
  const holder = gpuPod('holder', { node: 'g1', gpus: 8, uid: 'u-holder' });
  const pending = Array.from({ length: 8 }, (_, i) => gpuPod(`p${i}`, { gpus: 1, uid: `u-p${i}` }));
  const apiserver = await startFakeApiserver({ nodes: [gpuNode('g1', { gpus: 8 })], pods: [holder, ...pending], holdPods: true });
  t.teardown(() => apiserver.close());

  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write: (c: Buffer, _e, d) => {
      for (const l of c.toString().split('\n')) if (l) logs.push(JSON.parse(l));
      d();
    },
  });
  const config = loadConfig({
    env: {},
    base: {
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: '' },
      leaderElection: false,
      queue: { enabled: false },
    },
  });
  const running = await serve(config, { log: createLogger('info', sink), kubeConfig: kubeConfigFor(apiserver.url) });
  t.teardown(() => running.close());
  const post = async (path: string, body: unknown): Promise<{ status: number; body: any }> => {
    const r = await fetch(running.apiUrl + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const bindAll = () =>
    Promise.all(pending.map((p) => post('/scheduler/bind', { PodName: p.metadata!.name, PodNamespace: 'team-a', PodUID: p.metadata!.uid, Node: 'g1' })));

  await until('the node informer', () => running.cache.hasNode('g1'));
  t.notOk(running.cache.synced, 'the pod list is still held back');

  const early = await bindAll();
  t.same(apiserver.bindings, [], 'no bind reached the apiserver before the pod informer synced');
  for (const r of early) t.match(r.body, { Error: /not synced|has not listed/ }, 'each bind is answered with a retryable error saying why');
  const filter = await post('/scheduler/filter', { Pod: pending[0], NodeNames: ['g1'] });
  t.equal(filter.status, 200, 'filter answers in its own wire form');
  t.match(filter.body, { Error: /not synced|has not listed/, NodeNames: [] });
  const prio = await post('/scheduler/prioritize', { Pod: pending[0], NodeNames: ['g1'] });
  t.equal(prio.status, 503, 'prioritize answers an HTTP error (kube-scheduler retries the pod)');
  const metrics = await (await fetch(running.opsUrl + '/metrics')).text();
  t.match(metrics, /sluice_extender_not_ready_total\{verb="bind"\} 8/);
  t.equal(logs.filter((l) => /extender refuses to decide/.test(String(l.msg))).length, 1, 'one log line for the state change, not one per request');

  apiserver.releasePods();
  await until('the pod informer', () => running.cache.synced);
  const late = await bindAll();
  for (const r of late) t.match(r.body, { Error: /node g1: 0 of 8 nvidia.com\/gpu free, pod needs 1/ }, 'once synced, the full node refuses');
  t.same(apiserver.bindings, [], 'g1 never holds more than its 8 GPUs');
  t.ok(
    logs.some((l) => /extender decides again/.test(String(l.msg))),
    'the recovery is logged',
  );
  const inv = running.cache.inventory().find((n) => n.name === 'g1')!;
  t.equal(inv.used + inv.assumed, 8);
});

t.test('the gate covers every /scheduler/ verb, whichever plugin registers it (preempt)', async (t) => {
  const { fastify } = await import('fastify');
  const { gateUntilSynced } = await import('../../scheduler/routes.js');
  const { Metrics } = await import('../../observability/metrics.js');
  let synced = false;
  const app = fastify();
  gateUntilSynced(app, { metrics: new Metrics({ defaultMetrics: false }), log: createLogger('silent'), notReady: () => (synced ? null : 'not synced yet') });
  await app.register(async (p) => {
    p.post('/scheduler/preempt', async () => ({ NodeNameToMetaVictims: {} }));
  });
  app.get('/healthz-like', async () => ({ ok: true }));
  t.teardown(() => app.close());
  const before = await app.inject({ method: 'POST', url: '/scheduler/preempt', payload: {} });
  t.equal(before.statusCode, 503, 'preempt: HTTP 503 before the cache has synced');
  t.match(before.json(), { error: /sluice is not ready: not synced yet; kube-scheduler retries this pod/ });
  t.equal((await app.inject({ method: 'GET', url: '/healthz-like' })).statusCode, 200, 'other routes are not gated');
  synced = true;
  t.equal((await app.inject({ method: 'POST', url: '/scheduler/preempt', payload: {} })).statusCode, 200, 'answered once synced');
});
