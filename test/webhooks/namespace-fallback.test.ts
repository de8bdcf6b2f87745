// A namespace created with sluice.io/managed=true and a pod right after: the namespace
// informer may not have delivered it yet. The webhooks then read it once from the
// apiserver (cached, short timeout) instead of treating it as unmanaged; without an
// apiserver (snapshot mode) an unknown namespace stays unmanaged.
import t from 'tap';
import type { V1Namespace } from '@kubernetes/client-node';
import { ClusterCache } from '../../cluster/cache.js';
import { NamespaceStore } from '../../cluster/namespaces.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { SnapshotBinder } from '../../scheduler/binder.js';
import { buildServers } from '../../server/app.js';
import { decodePatch, loadReview } from './helpers.js';

async function setup(namespaces: NamespaceStore, metrics = new Metrics({ defaultMetrics: false })) {
  const config = loadConfig({ env: {}, base: { logLevel: 'silent', webhooks: { queueing: true } } });
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 100 });
  const servers = await buildServers({
    config,
    log: createLogger('silent'),
    metrics,
    cache,
    binder: new SnapshotBinder(cache),
    notReady: () => null,
    namespaces,
  });
  return {
    servers,
    metrics,
    close: async () => {
      await servers.api.close();
      await servers.ops.close();
    },
  };
}

/** The captured gpu-pod CREATE, moved to namespace `ns` and without a queue label (so scope comes from the namespace). */
function reviewIn(ns: string) {
  const r = loadReview('gpu-pod.json');
  r.request.namespace = ns;
  r.request.object!.metadata.namespace = ns;
  delete r.request.object!.metadata.labels['sluice.io/queue'];
  return r;
}

t.test('a managed namespace the informer has not delivered yet is read from the apiserver, once', async (t) => {
  const namespaces = new NamespaceStore();
  namespaces.replaceAll([]);
  const reads: string[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  namespaces.useReader(
    async (name): Promise<V1Namespace | null> => {
      reads.push(name);
      if (name === 'fresh') return { metadata: { name, labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': 'team-fresh' } } };
      return null;
    },
    createLogger('silent'),
    metrics,
  );
  const s = await setup(namespaces, metrics);
  t.teardown(s.close);
  const res = await s.servers.api.inject({ method: 'POST', url: '/webhooks/mutate', payload: reviewIn('fresh') });
  const ops = decodePatch(res.json().response);
  t.ok(
    ops.some((o) => o.path === '/spec/schedulingGates'),
    'handled as managed: gated',
  );
  t.ok(
    ops.some((o) => o.path === '/metadata/labels/sluice.io~1queue' && o.value === 'team-fresh'),
    'default queue from the namespace read',
  );
  await s.servers.api.inject({ method: 'POST', url: '/webhooks/mutate', payload: reviewIn('fresh') });
  t.same(reads, ['fresh'], 'read once, then known');
  t.same(namespaces.get('fresh'), { 'sluice.io/managed': 'true', 'sluice.io/default-queue': 'team-fresh' }, 'kept in the store');

  // A namespace that does not exist: unmanaged, and not read again at once.
  const gone = await s.servers.api.inject({ method: 'POST', url: '/webhooks/mutate', payload: reviewIn('nowhere') });
  t.equal(gone.json().response.patch, undefined, 'unknown namespace: untouched');
  await s.servers.api.inject({ method: 'POST', url: '/webhooks/mutate', payload: reviewIn('nowhere') });
  t.same(reads, ['fresh', 'nowhere'], 'a miss is cached too');
  const m = (await metrics.namespaceReads.get()).values;
  t.equal(m.find((v) => v.labels.result === 'found')?.value, 1, 'counted: found');
  t.equal(m.find((v) => v.labels.result === 'not_found')?.value, 1, 'counted: not_found');
});

t.test('a slow or failing apiserver: unmanaged after a short timeout, counted', async (t) => {
  const namespaces = new NamespaceStore();
  namespaces.replaceAll([]);
  const metrics = new Metrics({ defaultMetrics: false });
  namespaces.useReader(() => new Promise(() => undefined), createLogger('silent'), metrics, { timeoutMs: 50 });
  const s = await setup(namespaces, metrics);
  t.teardown(s.close);
  const start = performance.now();
  const res = await s.servers.api.inject({ method: 'POST', url: '/webhooks/validate', payload: reviewIn('slow') });
  // Bounded far above the 50 ms timeout: what it guards is an answer at all (a hung read would
  // hold the apiserver's call for its full 10 s), and CI machines can be loaded.
  t.ok(performance.now() - start < 5000, 'answered within the timeout');
  t.equal(res.json().response.allowed, true, 'treated as unmanaged');
  t.equal((await metrics.namespaceReads.get()).values.find((v) => v.labels.result === 'error')?.value, 1, 'counted: error');
});

t.test('snapshot mode (no reader): an unknown namespace is unmanaged', async (t) => {
  const namespaces = new NamespaceStore();
  namespaces.replaceAll([]);
  const s = await setup(namespaces);
  t.teardown(s.close);
  const res = await s.servers.api.inject({ method: 'POST', url: '/webhooks/mutate', payload: reviewIn('fresh') });
  t.same(res.json().response, { uid: reviewIn('fresh').request.uid, allowed: true });
});
