// cluster/list-watch.ts against the stand-in apiserver: a paginated list, then a watch from
// the list's resourceVersion; adds, updates and deletes as they happen; a watch the
// apiserver ends is re-opened from the last resourceVersion (a bookmark's included); after
// compaction the watch gets 410 and the list is redone, reporting what vanished meanwhile.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { ApiTransport } from '../../cluster/api-transport.js';
import { ListWatch } from '../../cluster/list-watch.js';
import { slimPod } from '../../cluster/slim.js';
import { gpuPod } from '../helpers/k8s.js';

const until = async (what: string, ok: () => boolean, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

t.test('list in pages, watch, re-watch from a bookmark, relist after 410', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  // The stand-in assigns the uids, as kube-apiserver does: u(name) looks them up.
  const uids = new Map<string, string>();
  const make = (name: string): void => void uids.set(api.create<V1Pod>('pods', gpuPod(name)).metadata!.uid!, name);
  for (let i = 0; i < 1203; i++) make(`p${i}`);
  const transport = new ApiTransport(api.kubeConfig(), { maxSockets: 2 });
  t.teardown(() => transport.close());
  const lw = new ListWatch(transport, { path: '/api/v1/pods', project: slimPod, keyOf: (p) => p.metadata?.uid ?? '', pageSize: 500 });
  const added = new Map<string, V1Pod>();
  const updated: string[] = [];
  const deleted: string[] = [];
  const errors: unknown[] = [];
  lw.on('add', (p) => added.set(p.metadata!.name!, p));
  lw.on('update', (p) => updated.push(p.metadata!.name!));
  lw.on('delete', (uid) => deleted.push(uids.get(uid) ?? uid));
  lw.on('error', (e) => errors.push(e));

  await lw.start();
  const lists = api.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/pods' && r.query.watch === undefined);
  t.equal(lists.length, 3, '1,203 pods in pages of 500');
  t.ok(lists.every((r) => r.query.limit === '500'));
  t.equal(added.size, 1203);
  t.equal(added.get('p7')!.spec!.containers[0]!.image, undefined, 'objects are projected before anyone sees them');
  await until('the watch', () => api.requests.some((r) => r.query.watch === 'true'));
  const firstWatch = api.requests.find((r) => r.query.watch === 'true')!;
  t.equal(firstWatch.query.resourceVersion, lists[0]!.query.resourceVersion ?? firstWatch.query.resourceVersion, 'watch from the list');
  t.equal(firstWatch.query.allowWatchBookmarks, 'true');

  make('new');
  await until('the new pod', () => added.has('new'));
  const cur = api.get<V1Pod>('pods', 'team-a', 'p1')!;
  api.update('pods', { ...cur, status: { phase: 'Running' } });
  await until('the update', () => updated.includes('p1'));
  api.delete('pods', 'team-a', 'p2');
  await until('the delete', () => deleted.includes('p2'));

  // The apiserver ends the watch after a bookmark: re-opened from the bookmark's version.
  api.sendBookmarks();
  const rv = api.resourceVersion;
  await new Promise((r) => setTimeout(r, 100));
  const watchesBefore = api.requests.filter((r) => r.query.watch === 'true').length;
  api.expireWatches();
  await until('a new watch', () => api.requests.filter((r) => r.query.watch === 'true').length > watchesBefore);
  t.equal(api.requests.filter((r) => r.query.watch === 'true').at(-1)!.query.resourceVersion, rv, 're-watched from the bookmark');

  // Compaction while a pod disappears unseen: 410, relist, the pod is reported deleted.
  const relistsBefore = api.requests.filter((r) => r.query.watch === undefined && r.path === '/api/v1/pods').length;
  await lw.stop();
  api.delete('pods', 'team-a', 'p3');
  api.compact();
  const lw2Deleted: string[] = [];
  // The same informer state, restarted by its owner after the stop (as watch-with-backoff does).
  lw.on('delete', (uid) => lw2Deleted.push(uids.get(uid) ?? uid));
  await lw.start();
  t.ok(lw2Deleted.includes('p3'), 'a pod deleted while not watching is reported by the relist');
  t.ok(api.requests.filter((r) => r.query.watch === undefined && r.path === '/api/v1/pods').length > relistsBefore);

  // A watch answered 410 mid-stream relists by itself, without an error.
  api.delete('pods', 'team-a', 'p4');
  await until('p4 deleted', () => deleted.includes('p4'));
  const watches = api.requests.filter((r) => r.query.watch === 'true').length;
  api.compact();
  api.expireWatches({ gone: true });
  await until('a relist and a new watch', () => api.requests.filter((r) => r.query.watch === 'true').length > watches);
  make('after');
  await until('a pod after the relist', () => added.has('after'));
  t.same(errors, [], 'no error reported: 410 is handled by relisting');
  await lw.stop();
});

t.test('a refused list rejects start; a broken watch is reported as an error', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  const transport = new ApiTransport(api.kubeConfig(), { maxSockets: 2 });
  t.teardown(() => transport.close());
  const lw = new ListWatch(transport, { path: '/api/v1/pods', project: slimPod, keyOf: (p) => p.metadata?.uid ?? '' });
  const errors: unknown[] = [];
  lw.on('error', (e) => errors.push(e));
  const off = api.onRequest(() => ({ status: 403, body: { kind: 'Status', code: 403, message: 'forbidden' } }));
  await t.rejects(lw.start(), /HTTP 403/);
  off();
  await lw.start();
  await until('the watch', () => api.requests.some((r) => r.query.watch === 'true'));
  api.onRequest((r) => (r.query.watch === 'true' ? { destroySocket: true } : undefined));
  api.expireWatches();
  await until('an error', () => errors.length > 0);
  await lw.stop();
});
