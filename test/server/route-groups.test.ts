// Client-certificate auth is decided on the route that runs, not on the raw URL (issue 22,
// defect 1: `POST /%73cheduler/bind` bound a pod without a certificate). Every spelling of
// an extender or webhook path is sent twice over real TLS to a listener that requires a
// client certificate for both groups: with the CA-signed certificate (did a handler run?
// the extender/webhook request counters say) and without one (then no handler may run,
// and the answer must be 401 whenever the certificate's request reached a handler). The
// fixed spellings are the known ways of writing a path; the fuzzed ones combine them
// (seeded PRNG, SLUICE_FUZZ_SEED to replay).
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runGenerate } from '../../certs/cli.js';
import { generateCa } from '../../certs/generate.js';
import { clientCert } from '../helpers/client-cert.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import { routeGroup } from '../../server/listeners.js';
import { fixture, gpuNode, gpuPod } from '../helpers/k8s.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-routes-'));
runGenerate({ out: dir, service: 'sluice', namespace: 'sluice-system', dns: [], ips: ['127.0.0.1'], days: 2, caDays: 10 });
const serverCa = readFileSync(join(dir, 'ca.crt'), 'utf8');
const pending = gpuPod('victim', { gpus: 1, uid: 'u-victim' });
writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ nodes: [gpuNode('gpu-node-1')], pods: [pending] }));

const clientCa = generateCa({ validDays: 2, commonName: 'control-plane-clients' });
writeFileSync(join(dir, 'client-ca.crt'), clientCa.certPem);
const scheduler = clientCert(clientCa, 'kube-scheduler');

const config = loadConfig({
  env: {},
  base: {
    clusterSnapshot: join(dir, 'snapshot.json'),
    https: {
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      clientCaFile: join(dir, 'client-ca.crt'),
      requireClientCert: ['extender', 'webhooks'],
    },
    http: { host: '127.0.0.1', port: 0 },
    store: { url: '' },
    api: { token: 'admin-token', tokenReview: false },
  },
});
const running = await serve(config, { log: createLogger('error', new Writable({ write: (_c, _e, d) => d() })) });
t.teardown(() => running.close());
const withCert = new Agent({ keepAlive: true, ca: serverCa, cert: scheduler.certPem, key: scheduler.keyPem });
const anonymous = new Agent({ keepAlive: true, ca: serverCa });
t.teardown(() => (withCert.destroy(), anonymous.destroy()));

function post(path: string, body: string, agent: Agent): Promise<number> {
  const u = new URL(running.apiUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Requests any extender or webhook handler (or the extender's readiness gate) counted. */
async function handled(): Promise<number> {
  let n = 0;
  for (const c of [running.metrics.extenderRequests, running.metrics.webhookRequests, running.metrics.extenderNotReady]) {
    for (const v of (await c.get()).values) n += v.value;
  }
  return n;
}

const BODIES: Record<string, string> = {
  '/scheduler/bind': JSON.stringify({ PodName: 'victim', PodNamespace: 'default', PodUID: 'u-victim', Node: 'gpu-node-1' }),
  '/scheduler/filter': JSON.stringify(fixture('scheduler-extender/filter-1.json')),
  '/scheduler/prioritize': JSON.stringify(fixture('scheduler-extender/prioritize-1.json')),
  '/scheduler/preempt': JSON.stringify({ Pod: pending, NodeNameToVictims: {}, NodeNameToMetaVictims: {} }),
  '/webhooks/mutate': JSON.stringify(fixture('admission/gpu-pod.json')),
  '/webhooks/validate': JSON.stringify(fixture('admission/gpu-pod.json')),
};

/** One spelling: with a certificate, did a handler run; without one, the status and whether one ran. */
async function probe(path: string, route: string): Promise<{ reached: boolean; status: number; leaked: boolean }> {
  const before = await handled();
  await post(path, BODIES[route]!, withCert);
  const mid = await handled();
  const status = await post(path, BODIES[route]!, anonymous);
  return { reached: mid > before, status, leaked: (await handled()) > mid };
}

const enc = (c: string, upper: boolean): string => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return '%' + (upper ? h.toUpperCase() : h.toLowerCase());
};

t.test('the route group is the registered route pattern', async (t) => {
  t.equal(routeGroup('/scheduler/bind'), 'extender');
  t.equal(routeGroup('/webhooks/mutate'), 'webhooks');
  t.equal(routeGroup('/api/v1/queues/:name'), 'api');
});

t.test('a resumed TLS 1.3 session that never carried a certificate is not authorized', async (t) => {
  // Node's `authorized` is true on such a session (it looks like a PSK): found by the fuzzing below.
  const resuming = new Agent({ keepAlive: false, ca: serverCa });
  t.teardown(() => resuming.destroy());
  const u = new URL(running.apiUrl);
  const once = (): Promise<{ status: number; reused: boolean }> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: u.hostname, port: u.port, path: '/scheduler/bind', method: 'POST', agent: resuming, headers: { 'content-type': 'application/json' } },
        (res) => {
          const reused = (res.socket as import('node:tls').TLSSocket).isSessionReused();
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused }));
        },
      );
      req.on('error', reject);
      req.end(BODIES['/scheduler/bind']);
    });
  const before = await handled();
  t.equal((await once()).status, 401, 'first connection: 401');
  const again = await once();
  t.ok(again.reused, 'the second connection resumed the session');
  t.equal(again.status, 401, 'the resumed session without a certificate: still 401');
  t.equal(await handled(), before, 'no handler ran');
});

t.test('known spellings of the extender and webhook paths', async (t) => {
  const cases: Array<[string, string]> = [
    ['/scheduler/bind', '/scheduler/bind'],
    ['/%73cheduler/bind', '/scheduler/bind'],
    ['/%53cheduler/bind', '/scheduler/bind'],
    ['/scheduler/%62%69%6e%64', '/scheduler/bind'],
    ['/scheduler/%62%69%6E%64', '/scheduler/bind'],
    ['/%77ebhooks/mutate', '/webhooks/mutate'],
    ['/webhooks%2Fmutate', '/webhooks/mutate'],
    ['/webhooks%2fvalidate', '/webhooks/validate'],
    ['/%2573cheduler/bind', '/scheduler/bind'],
    ['//scheduler/bind', '/scheduler/bind'],
    ['/scheduler//bind', '/scheduler/bind'],
    ['/scheduler/bind/', '/scheduler/bind'],
    ['/scheduler/bind;x=1', '/scheduler/bind'],
    ['/scheduler/bind%3Bx', '/scheduler/bind'],
    ['/scheduler/./bind', '/scheduler/bind'],
    ['/x/../scheduler/bind', '/scheduler/bind'],
    ['/scheduler/bind?x=1', '/scheduler/bind'],
    ['/scheduler/bind?', '/scheduler/bind'],
    ['/scheduler/bind#x', '/scheduler/bind'],
    ['/Scheduler/Bind', '/scheduler/bind'],
    ['/scheduler\\bind', '/scheduler/bind'],
    ['http://sluice/scheduler/bind', '/scheduler/bind'],
    ['/%73cheduler/filter?x', '/scheduler/filter'],
    ['/%73cheduler/prioritize', '/scheduler/prioritize'],
    ['/%73cheduler/preempt', '/scheduler/preempt'],
    ['/webhooks/mutate?timeout=10s', '/webhooks/mutate'],
  ];
  let reached = 0;
  for (const [path, route] of cases) {
    const r = await probe(path, route);
    t.notOk(r.leaked, `${path}: no handler runs without a certificate (status ${r.status})`);
    if (r.reached) {
      reached++;
      t.equal(r.status, 401, `${path} reaches a handler with a certificate, so without one it is 401`);
    }
  }
  // The canonical paths and the spellings do reach handlers: the test is not vacuous.
  t.ok(reached >= 10, `${reached} spellings reached a handler`);
});

t.test('fuzzed spellings: never a handler without a certificate', async (t) => {
  let a = Number(process.env.SLUICE_FUZZ_SEED ?? 20261206) >>> 0;
  const rnd = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const routes = Object.keys(BODIES);
  const mutations: Array<(p: string) => string> = [
    // percent-encode one character (any, '/' included), either hex case
    (p) => {
      const i = 1 + Math.floor(rnd() * (p.length - 1));
      return p.slice(0, i) + enc(p[i]!, rnd() < 0.5) + p.slice(i + 1);
    },
    (p) => p.replace(/\//g, () => (rnd() < 0.3 ? '//' : '/')),
    (p) => p + '/',
    (p) => p + pick([';', ';x=1', '%3B', '?', '?a=b', '?a=%2F', '#f', '%23', '%00', '%20', '.', '%2E']),
    (p) => {
      const parts = p.split('/');
      const i = 1 + Math.floor(rnd() * (parts.length - 1));
      parts.splice(i, 0, pick(['.', '..', 'x/..', '%2e', '%2e%2e', '%2E%2E']));
      return parts.join('/');
    },
    (p) => p.replace(/[a-z]/, (c) => c.toUpperCase()),
    (p) => p.replace(/%/, '%25'),
    (p) => p.replace('/', pick(['\\', '%5C', '/%2F'])),
  ];
  const N = Number(process.env.SLUICE_ROUTE_FUZZ ?? 400);
  let reached = 0;
  let failures = 0;
  for (let i = 0; i < N && failures < 5; i++) {
    const route = pick(routes);
    let path = route;
    for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) path = pick(mutations)(path);
    const r = await probe(path, route);
    if (r.reached) reached++;
    if (r.leaked || (r.reached && r.status !== 401)) {
      failures++;
      t.fail(`${path} (${route}): without a certificate status ${r.status}, handler ran: ${r.leaked}`);
    }
  }
  t.equal(failures, 0, `${N} spellings, ${reached} reached a handler with a certificate; none without one`);
  t.ok(reached > N / 10, 'a fair share of the spellings reach a handler');
});
