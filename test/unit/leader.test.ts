// Leader election on a Lease (cluster/leader.ts) against the stand-in apiserver: a live
// leader keeps the Lease while a follower waits; a leader cut off from the apiserver steps
// down within the renew deadline, before the follower takes over after the lease duration,
// so two replicas never both lead.
import t from 'tap';
import type { V1Lease } from '@kubernetes/client-node';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { LeaderElector } from '../../cluster/leader.js';
import { createLogger } from '../../observability/logger.js';

const timing = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 250 };

t.test('a live leader keeps the Lease; a cut-off leader steps down before the follower takes over', async (t) => {
  const api = await StandInApiserver.start({ users: { 'token-a': 'replica-a', 'token-b': 'replica-b' } });
  t.teardown(() => api.close());
  const make = (id: string) =>
    new LeaderElector(api.kubeConfig(`token-${id}`), { namespace: 'sluice-system', name: 'sluice', identity: id, ...timing, log: createLogger('silent') });
  const a = make('a');
  const b = make('b');
  const changes: string[] = [];
  a.subscribe((l) => changes.push(`a:${l}`));
  b.subscribe((l) => changes.push(`b:${l}`));
  a.start();
  await new Promise((r) => setTimeout(r, 400));
  b.start();
  await new Promise((r) => setTimeout(r, 3 * timing.leaseDurationMs));
  t.ok(a.isLeader() && !b.isLeader(), 'three lease durations later a still leads and b waits');

  // a's requests now fail (a partition between a and the apiserver; a itself runs on).
  let cut = 0;
  api.onRequest((r) => (r.user === 'replica-a' ? { status: 503, body: { kind: 'Status', code: 503, message: 'unreachable' } } : undefined));
  cut = Date.now();
  const both: number[] = [];
  const watch = setInterval(() => a.isLeader() && b.isLeader() && both.push(Date.now()), 10);
  while (!b.isLeader() && Date.now() - cut < 10_000) await new Promise((r) => setTimeout(r, 20));
  clearInterval(watch);
  const gap = Date.now() - cut;
  t.ok(b.isLeader(), `b took over ${gap} ms after a was cut off`);
  t.ok(gap >= timing.leaseDurationMs, 'not before the lease duration passed');
  t.notOk(a.isLeader(), 'a stepped down');
  t.same(both, [], 'never two leaders at once');
  t.same(changes, ['a:true', 'a:false', 'b:true'], 'a stepped down before b started leading');
  t.comment(`hand-over after a leader is cut off: ${gap} ms (lease ${timing.leaseDurationMs} ms, retry ${timing.retryPeriodMs} ms)`);
  await a.stop();
  await b.stop();
});

t.test('stop() while a renewal is out: the replica does not lead again, and gives the Lease up after it', async (t) => {
  const api = await StandInApiserver.start({ users: { 'token-a': 'replica-a' } });
  t.teardown(() => api.close());
  const a = new LeaderElector(api.kubeConfig('token-a'), { namespace: 'sluice-system', name: 'sluice', identity: 'a', ...timing, log: createLogger('silent') });
  const changes: boolean[] = [];
  a.subscribe((l) => changes.push(l));
  a.start();
  while (!a.isLeader()) await new Promise((r) => setTimeout(r, 20));

  // Hold a's next renewal at its first step (reading the Lease) for 300 ms, then let the
  // stand-in answer it: with the state after stop() gave the Lease up, which the renewal
  // then takes as free and acquires.
  let renewalOut: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (renewalOut = resolve));
  const unhook = api.onRequest((r) => {
    if (r.method !== 'GET' || !r.path.includes('/leases/')) return undefined;
    renewalOut();
    return new Promise((resolve) => setTimeout(() => resolve(undefined), 300));
  });
  await held;
  unhook();
  await a.stop();
  await new Promise((r) => setTimeout(r, 500));
  t.notOk(a.isLeader(), 'not leading after stop, though the renewal succeeded after it');
  t.same(changes, [true, false], 'led once, stopped once: no second "became leader"');
  const lease = api.get<V1Lease>('leases', 'sluice-system', 'sluice');
  t.equal(lease?.spec?.holderIdentity, '', 'the Lease is given up, so a follower need not wait for it to expire');
});
