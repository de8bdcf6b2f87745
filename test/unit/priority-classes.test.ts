// PriorityClassWatcher against an apiserver stand-in that speaks the list/watch wire format:
// the configured classes are listed, a change arrives by watch, a deletion makes the class
// missing (null), and other classes are ignored.
import t from 'tap';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PriorityClassStore, PriorityClassWatcher } from '../../cluster/priority-classes.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { kubeConfigFor } from '../helpers/k8s.js';
import { waitFor } from '../store/helpers.js';

const pc = (name: string, value: number, rv: string, preemptionPolicy = 'PreemptLowerPriority') => ({
  apiVersion: 'scheduling.k8s.io/v1',
  kind: 'PriorityClass',
  metadata: { name, resourceVersion: rv },
  value,
  preemptionPolicy,
});

t.test('listed, then kept in step by the watch', async (t) => {
  const watchers: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/apis/scheduling.k8s.io/v1/priorityclasses') {
      res.writeHead(404).end();
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      watchers.push(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        apiVersion: 'scheduling.k8s.io/v1',
        kind: 'PriorityClassList',
        metadata: { resourceVersion: '10' },
        items: [pc('sluice-best-effort', 10, '5', 'Never'), pc('system-cluster-critical', 2000000000, '1')],
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const store = new PriorityClassStore(new Set(['sluice-guaranteed', 'sluice-best-effort']));
  const w = new PriorityClassWatcher(
    kubeConfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    store,
    createLogger('silent'),
    new Metrics({ defaultMetrics: false }),
  );
  t.teardown(async () => {
    await w.stop();
    for (const r of watchers) r.end();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  t.equal(store.get('sluice-best-effort'), undefined, 'unknown before the list');
  w.start();
  t.ok((await waitFor(() => store.synced, 3000)) >= 0, 'synced after the list');
  t.same(store.get('sluice-best-effort'), { value: 10, preemptionPolicy: 'Never' });
  t.equal(store.get('sluice-guaranteed'), null, 'listed and absent: missing');
  t.equal(store.get('system-cluster-critical'), null, 'not a configured name: not kept');
  t.ok((await waitFor(() => watchers.length > 0, 3000)) >= 0, 'watching');
  const send = (type: string, obj: unknown): void => {
    for (const r of watchers) r.write(JSON.stringify({ type, object: obj }) + '\n');
  };
  send('ADDED', pc('sluice-guaranteed', 5000, '11'));
  t.ok((await waitFor(() => store.get('sluice-guaranteed')?.value === 5000, 3000)) >= 0, 'a created class arrives by watch');
  send('DELETED', pc('sluice-best-effort', 10, '12', 'Never'));
  t.ok((await waitFor(() => store.get('sluice-best-effort') === null, 3000)) >= 0, 'a deleted class becomes missing');
});
