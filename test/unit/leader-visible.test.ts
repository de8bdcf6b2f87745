// When sluice cannot take its Lease (namespace missing, RBAC forbids it), the operator sees
// why (issue 21 item 7): a warning with the apiserver's reason, not repeated every retry
// period; leaseProblem() (shown by /readyz) and the sluice_lease_error gauge while it lasts.
import { Writable } from 'node:stream';
import t from 'tap';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { LeaderElector } from '../../cluster/leader.js';
import { createLogger } from '../../observability/logger.js';

const timing = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 };

t.test('a Lease the apiserver refuses: one warning with its reason, a problem to show, then recovery', async (t) => {
  const api = await StandInApiserver.start({ users: { 'token-a': 'replica-a' } });
  t.teardown(() => api.close());
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const forbidden =
    'leases.coordination.k8s.io "sluice" is forbidden: User "replica-a" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "sluice-system"';
  let refuse = true;
  api.onRequest((r) =>
    refuse && r.user === 'replica-a' ? { status: 403, body: { kind: 'Status', code: 403, reason: 'Forbidden', message: forbidden } } : undefined,
  );
  const a = new LeaderElector(api.kubeConfig('token-a'), {
    namespace: 'sluice-system',
    name: 'sluice',
    identity: 'a',
    ...timing,
    log: createLogger('info', sink),
  });
  const problems: boolean[] = [];
  a.onLeaseProblem((p) => problems.push(p));
  a.start();
  t.teardown(() => a.stop());
  await new Promise((r) => setTimeout(r, 10 * timing.retryPeriodMs));

  const warnings = logs.filter((l) => l.level === 40 && /could not take or renew the leader Lease/.test(String(l.msg)));
  t.equal(warnings.length, 1, 'about ten failed attempts, one warning (rate-limited)');
  t.equal(warnings[0]?.reason, `HTTP 403: ${forbidden}`, "the apiserver's reason");
  t.match(String(warnings[0]?.msg), /the extender refuses every pod and no queued job is released/);
  t.notOk(a.isLeader());
  t.match(
    a.leaseProblem(),
    /^cannot take part in leader election: the Lease sluice-system\/sluice cannot be read or written \(HTTP 403: .*forbidden.*\); check that the namespace exists and that sluice's RBAC allows/,
  );
  t.same(problems, [true], 'the gauge went to 1');

  refuse = false;
  for (let i = 0; i < 50 && !a.isLeader(); i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(a.isLeader(), 'leads once the apiserver allows it');
  t.equal(a.leaseProblem(), null);
  t.same(problems, [true, false], 'the gauge back to 0');
  t.ok(logs.some((l) => l.msg === 'the Lease is reachable again'));
});
