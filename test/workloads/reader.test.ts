// The edge: WorkloadReader over real HTTP (ApiTransport) to the stand-in apiserver, whose
// request hooks play the operators' objects and the failures: one read per object while
// cached (shared by concurrent pods), forbidden, deleted, CRD not installed (switched off
// with one log line), a body that is not JSON, a hung apiserver.
import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { ApiTransport } from '../../cluster/api-transport.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import type { KubeObject, WorkloadRef } from '../../workloads/kind.js';
import { pyTorchJob as ptKind } from '../../workloads/pytorchjob.js';
import { WorkloadReader, type WorkloadReaderOptions } from '../../workloads/reader.js';
import { NS, pyTorchJob } from './fixtures.js';

const ref = (o: KubeObject): WorkloadRef => ({ apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata!.name!, uid: o.metadata!.uid! });

async function setup(t: Test, o: WorkloadReaderOptions = {}) {
  const api = await StandInApiserver.start();
  const transport = new ApiTransport(api.kubeConfig());
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  let now = 1_000_000;
  const reader = new WorkloadReader((path, timeoutMs) => transport.call('GET', path, { timeoutMs }), createLogger('info', sink), metrics, {
    now: () => now,
    ...o,
  });
  t.teardown(async () => {
    transport.close();
    await api.close();
  });
  const gets = (resource: string) => api.requests.filter((r) => r.method === 'GET' && r.path.includes(`/${resource}/`)).length;
  return { api, reader, lines, metrics, gets, advance: (ms: number) => (now += ms) };
}

/** Serves `objects` at their URL (as the real apiserver would once their CRD is installed). */
function serve(api: StandInApiserver, objects: KubeObject[]): void {
  api.onRequest((r) => {
    const o = objects.find((x) => r.path === `/apis/${x.apiVersion}/namespaces/${x.metadata!.namespace}/${x.kind!.toLowerCase()}s/${x.metadata!.name}`);
    if (o) return { status: 200, body: o };
    if (r.path.startsWith('/apis/kubeflow.org/')) {
      const name = r.path.split('/').pop();
      return {
        status: 404,
        body: {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'NotFound',
          code: 404,
          message: `pytorchjobs.kubeflow.org "${name}" not found`,
          details: { name, group: 'kubeflow.org', kind: 'pytorchjobs' },
        },
      };
    }
    return undefined;
  });
}

t.test('one read per object while cached; concurrent pods share one read', async (t) => {
  const s = await setup(t);
  const pt = pyTorchJob('mnist', 7);
  serve(s.api, [pt]);
  const many = await Promise.all(Array.from({ length: 8 }, () => s.reader.read(ptKind, ref(pt), NS)));
  t.ok(
    many.every((r) => 'ok' in r && r.ok.metadata?.name === 'mnist'),
    'all 8 pods got the object',
  );
  t.equal(s.gets('pytorchjobs'), 1, 'eight pods arriving at once: one GET');
  const again = s.reader.read(ptKind, ref(pt), NS);
  t.ok(!(again instanceof Promise), 'a cached object comes back without waiting');
  t.equal(s.gets('pytorchjobs'), 1);
  s.advance(31_000);
  await s.reader.read(ptKind, ref(pt), NS);
  t.equal(s.gets('pytorchjobs'), 2, 'read again after the cache TTL (30 s)');
  t.equal((await s.metrics.workloadReads.get()).values.find((v) => v.labels.result === 'found')?.value, 2, 'counted');
});

t.test('forbidden and deleted: an answer with the reason, remembered for a while', async (t) => {
  const s = await setup(t);
  s.api.onRequest((r) =>
    r.path.includes('/jobsets/')
      ? {
          status: 403,
          body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'jobsets.jobset.x-k8s.io "llm" is forbidden' },
        }
      : undefined,
  );
  serve(s.api, []);
  const js = { apiVersion: 'jobset.x-k8s.io/v1alpha2', kind: 'JobSet', metadata: { name: 'llm', namespace: NS, uid: 'u' } };
  const { jobSet } = await import('../../workloads/jobset.js');
  const r = await s.reader.read(jobSet, ref(js), NS);
  t.match(r, { error: /sluice may not read jobsets.jobset.x-k8s.io \(403 forbidden\); grant its ClusterRole get on jobsets/ });
  t.ok(
    s.lines.some((l) => l.level === 40 && /403 forbidden/.test(l.msg)),
    'logged as a warning',
  );
  await s.reader.read(jobSet, ref(js), NS);
  t.equal(s.gets('jobsets'), 1, 'the miss is remembered (5 s): one call, not one per pod');
  s.advance(6000);
  await s.reader.read(jobSet, ref(js), NS);
  t.equal(s.gets('jobsets'), 2, 'then read again');

  const gone = await s.reader.read(ptKind, { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', name: 'gone', uid: 'u' }, NS);
  t.match(gone, { missing: 'object', reason: /not found/ }, 'a deleted object');
});

t.test('a CRD that is not installed switches its integration off with one log line', async (t) => {
  const s = await setup(t);
  const rc = { apiVersion: 'ray.io/v1', kind: 'RayCluster', metadata: { name: 'rc', namespace: NS, uid: 'u' } };
  const { rayCluster } = await import('../../workloads/raycluster.js');
  // The stand-in knows no ray.io resources: 404 "the server could not find the requested resource".
  const first = await s.reader.read(rayCluster, ref(rc), NS);
  t.match(first, { missing: 'kind', reason: /RayCluster CRD \(rayclusters.ray.io\/v1\) is not installed/ });
  for (let i = 0; i < 5; i++) await s.reader.read(rayCluster, { ...ref(rc), name: `rc-${i}` }, NS);
  t.equal(s.gets('rayclusters'), 1, 'off: other RayClusters are not even asked for');
  t.equal(s.lines.filter((l) => /integration is off/.test(l.msg)).length, 1, 'one log line');
  s.advance(61_000);
  serve(s.api, [rc as KubeObject]);
  t.match(await s.reader.read(rayCluster, ref(rc), NS), { ok: { metadata: { name: 'rc' } } }, 'installed later: on again after the off period');
  t.equal(s.lines.filter((l) => /integration is on/.test(l.msg)).length, 1, 'and said so');
});

t.test('a body that is not JSON, and a hung apiserver: an error, never a throw', async (t) => {
  const s = await setup(t, { timeoutMs: 100 });
  s.api.onRequest((r) => (r.path.endsWith('/text') ? { status: 200, body: 'not json' } : undefined));
  s.api.onRequest((r) => (r.path.endsWith('/hung') ? new Promise(() => undefined) : undefined));
  const text = await s.reader.read(ptKind, { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', name: 'text', uid: '' }, NS);
  t.match(text, { error: /not JSON|without metadata/ });
  const start = performance.now();
  const hung = await s.reader.read(ptKind, { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', name: 'hung', uid: '' }, NS);
  t.match(hung, { error: /nothing from the apiserver .* for 100 ms/ });
  t.ok(performance.now() - start < 3000, 'gave up after the timeout');
});
