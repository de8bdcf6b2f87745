// The stand-in apiserver (bench/apiserver/standin.ts) driven by @kubernetes/client-node 1.4
// itself: informers across watch expiry and 410 relists, JSON/merge patches with the real
// status codes, pods/binding rules, lease optimistic concurrency, lists, selectors, events.
import t from 'tap';
import { CoordinationV1Api, CoreV1Api, EventsV1Api, PatchStrategy, makeInformer, setHeaderOptions, type V1Lease, type V1Pod } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick(10);
  }
}
/** The HTTP code and Status body of a failed client-node call. */
async function failure(p: Promise<unknown>): Promise<{ code: number | string; reason?: string; message?: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number | string; body?: unknown };
    const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { reason?: string; message?: string } | undefined;
    return { code: e.code, reason: body?.reason, message: body?.message };
  }
  throw new Error('expected the call to fail');
}

const pod = (name: string, o: { gates?: string[]; node?: string; labels?: Record<string, string> } = {}): V1Pod => ({
  metadata: { name, namespace: 'team-a', labels: o.labels ?? {} },
  spec: {
    containers: [{ name: 'main', image: 'x' }],
    ...(o.gates ? { schedulingGates: o.gates.map((name) => ({ name })) } : {}),
    ...(o.node ? { nodeName: o.node } : {}),
  },
});

t.test('an informer sees adds, updates and deletes, across expired watches and 410 relists', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  const core = api.kubeConfig().makeApiClient(CoreV1Api);
  api.create('pods', pod('before'));
  const informer = makeInformer(api.kubeConfig(), '/api/v1/pods', () => core.listPodForAllNamespaces());
  const seen: string[] = [];
  informer.on('add', (p) => seen.push(`add ${p.metadata?.name}`));
  informer.on('update', (p) => seen.push(`update ${p.metadata?.name} ${p.metadata?.labels?.v ?? ''}`));
  informer.on('delete', (p) => seen.push(`delete ${p.metadata?.name}`));
  await informer.start();
  t.teardown(() => informer.stop());
  await until('the watch', () => api.openWatches === 1);
  t.same(seen, ['add before']);

  const created = await core.createNamespacedPod({ namespace: 'team-a', body: pod('p1') });
  t.equal(created.kind, 'Pod');
  t.equal(created.status?.phase, 'Pending');
  t.ok(created.metadata?.uid && created.metadata.creationTimestamp);
  api.update('pods', { ...api.get<V1Pod>('pods', 'team-a', 'p1'), metadata: { ...api.get<V1Pod>('pods', 'team-a', 'p1')!.metadata, labels: { v: '1' } } });
  await until('add+update', () => seen.length === 3);

  // A plain watch end: the informer rewatches from its resourceVersion, no relist.
  const lists = () => api.requests.filter((r) => r.path === '/api/v1/pods' && r.query.watch === undefined).length;
  api.expireWatches();
  await until('rewatch', () => api.openWatches === 1 && api.requests.filter((r) => r.query.watch === 'true').length === 2);
  t.equal(lists(), 1);
  await core.deleteNamespacedPod({ name: 'p1', namespace: 'team-a' });
  await until('delete', () => seen.includes('delete p1'));

  // Changes while no watch is open are replayed from history.
  api.expireWatches();
  api.create('pods', pod('during-gap'));
  await until('replayed add', () => seen.includes('add during-gap'));
  t.equal(lists(), 1);

  // 410: the informer must relist, and sees what changed meanwhile.
  api.expireWatches({ gone: true });
  await until('relist', () => lists() === 2 && api.openWatches === 1);
  // While no watch is open: a change, then compaction past the informer's resourceVersion;
  // its rewatch gets 410 and the relist reports the delete.
  api.expireWatches();
  api.delete('pods', 'team-a', 'before');
  api.compact();
  await until('second relist', () => lists() === 3 && api.openWatches === 1);
  await until('delete before', () => seen.includes('delete before'));
  t.same(
    informer.list().map((p) => p.metadata?.name),
    ['during-gap'],
  );
  t.same(seen, ['add before', 'add p1', 'update p1 1', 'delete p1', 'add during-gap', 'delete before']);
});

t.test('patches: JSON patch with test, merge patch, gate rules, the user', async (t) => {
  const api = await StandInApiserver.start({ users: { 'tok-1': 'system:serviceaccount:sluice:queue' } });
  t.teardown(() => api.close());
  const core = api.kubeConfig('tok-1').makeApiClient(CoreV1Api);
  await core.createNamespacedPod({ namespace: 'team-a', body: pod('g', { gates: ['sluice.io/queue', 'other'] }) });
  t.equal(api.get<V1Pod>('pods', 'team-a', 'g')?.status?.conditions?.[0]?.reason, 'SchedulingGated');

  const bad = await failure(
    core.patchNamespacedPod({
      name: 'g',
      namespace: 'team-a',
      body: [
        { op: 'test', path: '/spec/schedulingGates/0/name', value: 'nope' },
        { op: 'remove', path: '/spec/schedulingGates/0' },
      ],
    }),
  );
  t.equal(bad.code, 422);
  t.equal(bad.reason, 'Invalid');
  t.equal((await failure(core.patchNamespacedPod({ name: 'g', namespace: 'team-a', body: [{ op: 'remove', path: '/spec/schedulingGates/5' }] }))).code, 422);
  t.same(api.get<V1Pod>('pods', 'team-a', 'g')?.spec?.schedulingGates, [{ name: 'sluice.io/queue' }, { name: 'other' }], 'a failed patch changes nothing');

  const rvBefore = api.get('pods', 'team-a', 'g')?.metadata?.resourceVersion;
  const patched = await core.patchNamespacedPod({
    name: 'g',
    namespace: 'team-a',
    body: [
      { op: 'test', path: '/spec/schedulingGates/0/name', value: 'sluice.io/queue' },
      { op: 'remove', path: '/spec/schedulingGates/0' },
    ],
  });
  t.same(patched.spec?.schedulingGates, [{ name: 'other' }]);
  t.not(patched.metadata?.resourceVersion, rvBefore);
  const req = api.requests.find((r) => r.method === 'PATCH' && r.contentType === 'application/json-patch+json');
  t.equal(req?.user, 'system:serviceaccount:sluice:queue');

  const added = await failure(
    core.patchNamespacedPod({ name: 'g', namespace: 'team-a', body: [{ op: 'add', path: '/spec/schedulingGates/-', value: { name: 'new' } }] }),
  );
  t.equal(added.code, 422);
  t.match(added.message, /only deletion is allowed/);
  t.equal(
    (await failure(core.patchNamespacedPod({ name: 'g', namespace: 'team-a', body: [{ op: 'replace', path: '/spec/containers/0/name', value: 'x' }] }))).code,
    422,
    'pod spec is immutable',
  );

  const merged = await core.patchNamespacedPod(
    { name: 'g', namespace: 'team-a', body: { metadata: { labels: { a: 'b' } }, spec: { schedulingGates: null } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  t.same(merged.metadata?.labels, { a: 'b' });
  t.equal(merged.spec?.schedulingGates, undefined);
  t.ok(api.requests.some((r) => r.contentType === 'application/merge-patch+json'));
  const smp = await core.patchNamespacedPod(
    { name: 'g', namespace: 'team-a', body: { metadata: { annotations: { x: 'y' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  t.same(smp.metadata?.annotations, { x: 'y' });
  const stale = await failure(
    core.patchNamespacedPod(
      { name: 'g', namespace: 'team-a', body: { metadata: { resourceVersion: rvBefore, labels: { c: 'd' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    ),
  );
  t.equal(stale.code, 409);
  t.equal((await failure(core.patchNamespacedPod({ name: 'missing', namespace: 'team-a', body: [] }))).code, 404);

  const anonymous = api.kubeConfig('unknown-token').makeApiClient(CoreV1Api);
  t.equal((await failure(anonymous.readNamespacedPod({ name: 'g', namespace: 'team-a' }))).code, 401);
});

t.test('pods/binding: gated, uid mismatch, success, already bound; watches by nodeName', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  const core = api.kubeConfig().makeApiClient(CoreV1Api);
  const p = await core.createNamespacedPod({ namespace: 'team-a', body: pod('b', { gates: ['g'] }) });
  const binding = (uid?: string) => ({
    namespace: 'team-a',
    name: 'b',
    body: { metadata: { name: 'b', ...(uid ? { uid } : {}) }, target: { kind: 'Node', name: 'n1' } },
  });

  t.equal((await failure(core.createNamespacedPodBinding(binding()))).code, 422, 'a gated pod cannot be bound');
  api.update('pods', { ...p, spec: { ...p.spec, schedulingGates: [] } } as V1Pod);

  const onNode: string[] = [];
  // A raw watch with a field selector: the pod enters it when bound (ADDED), leaves when deleted.
  const watchUrl = `${api.url}/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1&resourceVersion=${api.resourceVersion}`;
  const ctrl = new AbortController();
  const res = await fetch(watchUrl, { signal: ctrl.signal });
  t.teardown(() => ctrl.abort());
  const reader = res.body!.getReader();
  void (async () => {
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buf += Buffer.from(value!).toString('utf8');
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const ev = JSON.parse(buf.slice(0, i)) as { type: string; object: V1Pod };
        onNode.push(`${ev.type} ${ev.object.metadata?.name}`);
        buf = buf.slice(i + 1);
      }
    }
  })();

  t.equal((await failure(core.createNamespacedPodBinding(binding('wrong-uid')))).code, 409);
  await core.createNamespacedPodBinding(binding(p.metadata!.uid));
  const bound = api.get<V1Pod>('pods', 'team-a', 'b');
  t.equal(bound?.spec?.nodeName, 'n1');
  t.ok(bound?.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'True'));
  const again = await failure(core.createNamespacedPodBinding(binding()));
  t.equal(again.code, 409);
  t.match(again.message, /already assigned to node "n1"/);
  t.equal(
    (await failure(core.createNamespacedPodBinding({ ...binding(), name: 'nope', body: { metadata: { name: 'nope' }, target: { kind: 'Node', name: 'n1' } } })))
      .code,
    404,
  );
  await until('the pod entering the selector as ADDED', () => onNode.length === 1);
  await core.deleteNamespacedPod({ name: 'b', namespace: 'team-a' });
  await until('DELETED', () => onNode.length === 2);
  t.same(onNode, ['ADDED b', 'DELETED b']);
  t.equal(api.get('pods', 'team-a', 'b'), undefined);
});

t.test('leases: create, conflict on stale resourceVersion, AlreadyExists, NotFound', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  const coord = api.kubeConfig().makeApiClient(CoordinationV1Api);
  const lease: V1Lease = { metadata: { name: 'sluice-queue', namespace: 'sluice' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } };
  const created = await coord.createNamespacedLease({ namespace: 'sluice', body: lease });
  t.equal(created.apiVersion, 'coordination.k8s.io/v1');
  const dup = await failure(coord.createNamespacedLease({ namespace: 'sluice', body: lease }));
  t.equal(dup.code, 409);
  t.equal(dup.reason, 'AlreadyExists');

  const won = await coord.replaceNamespacedLease({
    name: 'sluice-queue',
    namespace: 'sluice',
    body: { ...created, spec: { ...created.spec, holderIdentity: 'b' } },
  });
  t.equal(won.spec?.holderIdentity, 'b');
  const lost = await failure(
    coord.replaceNamespacedLease({ name: 'sluice-queue', namespace: 'sluice', body: { ...created, spec: { ...created.spec, holderIdentity: 'c' } } }),
  );
  t.equal(lost.code, 409);
  t.equal(lost.reason, 'Conflict');
  t.equal((await coord.readNamespacedLease({ name: 'sluice-queue', namespace: 'sluice' })).spec?.holderIdentity, 'b');
  const missing = await failure(coord.readNamespacedLease({ name: 'other', namespace: 'sluice' }));
  t.equal(missing.code, 404);
  t.equal(missing.message, 'leases.coordination.k8s.io "other" not found');
});

t.test('lists: pagination, selectors, generateName, slow lists, injected faults', async (t) => {
  const api = await StandInApiserver.start({ listDelayMs: (r) => (r === 'nodes' ? 150 : 0) });
  t.teardown(() => api.close());
  const core = api.kubeConfig().makeApiClient(CoreV1Api);
  for (let i = 0; i < 5; i++) api.create('pods', pod(`p${i}`, { labels: { team: i % 2 ? 'odd' : 'even' }, ...(i < 2 ? { node: 'n1' } : {}) }));
  api.create('pods', { ...pod('elsewhere'), metadata: { name: 'elsewhere', namespace: 'team-b' } });

  const page1 = await core.listNamespacedPod({ namespace: 'team-a', limit: 2 });
  t.same(
    page1.items.map((p) => p.metadata?.name),
    ['p0', 'p1'],
  );
  t.equal(page1.items[0]?.kind, 'Pod');
  api.create('pods', pod('p-late'));
  const page2 = await core.listNamespacedPod({ namespace: 'team-a', limit: 2, _continue: page1.metadata?._continue });
  const page3 = await core.listNamespacedPod({ namespace: 'team-a', limit: 2, _continue: page2.metadata?._continue });
  t.same(
    [...page2.items, ...page3.items].map((p) => p.metadata?.name),
    ['p2', 'p3', 'p4'],
    'pages are a consistent snapshot',
  );
  t.equal(page3.metadata?._continue, undefined);
  t.equal(page3.metadata?.resourceVersion, page1.metadata?.resourceVersion);

  t.same(
    (await core.listPodForAllNamespaces({ labelSelector: 'team=odd' })).items.map((p) => p.metadata?.name),
    ['p1', 'p3'],
  );
  t.same(
    (await core.listPodForAllNamespaces({ labelSelector: 'team in (odd,even),team!=even' })).items.map((p) => p.metadata?.name),
    ['p1', 'p3'],
  );
  t.same(
    (await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=n1' })).items.map((p) => p.metadata?.name),
    ['p0', 'p1'],
  );
  t.same(
    (await core.listPodForAllNamespaces({ fieldSelector: 'metadata.namespace=team-b' })).items.map((p) => p.metadata?.name),
    ['elsewhere'],
  );
  t.equal((await failure(core.listPodForAllNamespaces({ fieldSelector: 'spec.priority=1' }))).code, 400);

  const gen = await core.createNamespacedPod({ namespace: 'team-a', body: { ...pod(''), metadata: { generateName: 'job-' } } });
  t.match(gen.metadata?.name, /^job-[a-z0-9]{5}$/);
  t.equal((await failure(core.createNamespacedPod({ namespace: 'team-a', body: { metadata: { name: 'x' }, spec: { containers: [] } } }))).code, 422);

  const started = Date.now();
  await core.listNode();
  t.ok(Date.now() - started >= 140, 'the node list was delayed');

  let failures = 2;
  const remove = api.onRequest((r) =>
    r.method === 'GET' && r.path.endsWith('/pods/p0') && failures-- > 0
      ? { status: 500, body: { kind: 'Status', code: 500, reason: 'InternalError' } }
      : undefined,
  );
  t.equal((await failure(core.readNamespacedPod({ name: 'p0', namespace: 'team-a' }))).code, 500);
  t.equal((await failure(core.readNamespacedPod({ name: 'p0', namespace: 'team-a' }))).code, 500);
  t.equal((await core.readNamespacedPod({ name: 'p0', namespace: 'team-a' })).metadata?.name, 'p0');
  remove();
  t.ok(api.requests.filter((r) => r.path === '/api/v1/namespaces/team-a/pods/p0').length === 3);
});

t.test('events: core and events.k8s.io views of one store; nodes/namespaces/priorityclasses', async (t) => {
  const api = await StandInApiserver.start();
  t.teardown(() => api.close());
  const kc = api.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const events = kc.makeApiClient(EventsV1Api);
  const regarding = { kind: 'Pod', namespace: 'team-a', name: 'p', apiVersion: 'v1' };
  t.equal((await failure(events.createNamespacedEvent({ namespace: 'team-a', body: { metadata: { name: 'bad' }, eventTime: new Date() } }))).code, 422);
  await events.createNamespacedEvent({
    namespace: 'team-a',
    body: {
      metadata: { generateName: 'p.' },
      eventTime: new Date(),
      reportingController: 'sluice.io/queue',
      reportingInstance: 'sluice-0',
      action: 'Admit',
      reason: 'Admitted',
      note: 'admitted by queue',
      type: 'Normal',
      regarding,
    },
  });
  await core.createNamespacedEvent({
    namespace: 'team-a',
    body: { metadata: { name: 'old-style' }, involvedObject: regarding, reason: 'Waiting', message: 'queued', type: 'Normal' },
  });
  const asCore = await core.listEventForAllNamespaces({ fieldSelector: 'involvedObject.name=p,reason=Admitted' });
  t.equal(asCore.items.length, 1);
  t.equal(asCore.items[0]?.message, 'admitted by queue');
  t.equal(asCore.items[0]?.reportingComponent, 'sluice.io/queue');
  const asV1 = await events.listNamespacedEvent({ namespace: 'team-a' });
  t.same(asV1.items.map((e) => e.note).sort(), ['admitted by queue', 'queued']);
  t.equal(asV1.items[0]?.apiVersion, 'events.k8s.io/v1');
  t.equal(api.list('events', 'team-a').length, 2);

  api.create('nodes', { metadata: { name: 'n1' }, status: { allocatable: { 'nvidia.com/gpu': '8' } } });
  const node = await core.readNode({ name: 'n1' });
  await core.replaceNode({ name: 'n1', body: { ...node, spec: { unschedulable: true }, status: {} } });
  const after = await core.readNode({ name: 'n1' });
  t.equal(after.spec?.unschedulable, true);
  t.same(after.status?.allocatable, { 'nvidia.com/gpu': '8' }, 'a main-resource PUT keeps status');
  await core.replaceNodeStatus({ name: 'n1', body: { ...after, status: { allocatable: { 'nvidia.com/gpu': '4' } } } });
  t.same((await core.readNode({ name: 'n1' })).status?.allocatable, { 'nvidia.com/gpu': '4' });
  t.same(
    (await core.listNode({ fieldSelector: 'spec.unschedulable=true' })).items.map((n) => n.metadata?.name),
    ['n1'],
  );

  await core.createNamespace({ body: { metadata: { name: 'team-a' } } });
  t.equal((await core.readNamespace({ name: 'team-a' })).kind, 'Namespace');
  await core.deleteNamespace({ name: 'team-a' });
  t.equal(api.get('namespaces', undefined, 'team-a'), undefined);
  api.create('priorityclasses', { metadata: { name: 'high' }, value: 1000 } as { metadata: { name: string }; value: number });
  t.equal(api.get<{ metadata?: object; value?: number }>('priorityclasses', undefined, 'high')?.value, 1000);
  const rv = api.resourceVersion;
  api.update('priorityclasses', { metadata: { name: 'high' }, value: 1000 } as { metadata: { name: string }; value: number });
  t.equal(api.resourceVersion, rv, 'a no-op update writes nothing');
});

t.test('a hung request and a reset connection; close() ends both and open watches', async (t) => {
  const api = await StandInApiserver.start();
  const core = api.kubeConfig().makeApiClient(CoreV1Api);
  api.onRequest((r) => (r.path.endsWith('/hang') ? new Promise(() => {}) : r.path.endsWith('/reset') ? { destroySocket: true } : undefined));
  const reset = await failure(core.readNamespacedPod({ name: 'reset', namespace: 'x' }));
  t.equal(reset.code, 'ECONNRESET', 'a network error, not an HTTP status');
  const hung = core.readNamespacedPod({ name: 'hang', namespace: 'x' }).then(
    () => 'answered',
    () => 'failed',
  );
  const watch = await fetch(`${api.url}/api/v1/pods?watch=1`);
  await until('the watch', () => api.openWatches === 1);
  await api.close();
  t.equal(await hung, 'failed');
  t.equal(await watch.text(), '', 'the watch ended');
});
