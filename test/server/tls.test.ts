// The API listener's TLS (issue 12): TLS 1.2 only with ECDHE suites (defect 7), and client
// certificates per route group (defect 2) while the admin API's bearer tokens keep working.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runGenerate } from '../../certs/cli.js';
import { generateCa, type KeyPairPem } from '../../certs/generate.js';
import { clientCert } from '../helpers/client-cert.js';
import { secureContextOptions, type SecureContextTarget } from '../../certs/reload.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve, type Running } from '../../server/run.js';
import { keepTlsPolicy } from '../../server/listeners.js';
import { fixture, gpuNode } from '../helpers/k8s.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
runGenerate({ out: dir, service: 'sluice', namespace: 'sluice-system', dns: [], ips: ['127.0.0.1'], days: 2, caDays: 10 });
const serverCa = readFileSync(join(dir, 'ca.crt'), 'utf8');
writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ nodes: [gpuNode('gpu-node-1'), gpuNode('gpu-node-2')], pods: [] }));

const clientCa = generateCa({ validDays: 2, commonName: 'control-plane-clients' });
writeFileSync(join(dir, 'client-ca.crt'), clientCa.certPem);
const scheduler = clientCert(clientCa, 'kube-scheduler');
const stranger = clientCert(generateCa({ validDays: 2, commonName: 'someone-else' }), 'kube-scheduler');

async function start(https: Record<string, unknown>, logs: string[] = []): Promise<Running> {
  const config = loadConfig({
    env: {},
    base: {
      clusterSnapshot: join(dir, 'snapshot.json'),
      https: { host: '127.0.0.1', port: 0, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), ...https },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: '' },
      api: { token: 'admin-token', tokenReview: false },
    },
  });
  const sink = new Writable({ write: (c: Buffer, _e, d) => (logs.push(c.toString()), d()) });
  return serve(config, { log: createLogger('info', sink) });
}

function handshake(url: string, opts: { ciphers?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port), ca: serverCa, servername: 'sluice', ...opts }, () => {
      const c = s.getCipher().name;
      s.end();
      resolve(c);
    });
    s.on('error', (e) => resolve(`error: ${e.message}`));
  });
}

function post(
  url: string,
  path: string,
  body: unknown,
  o: { cert?: KeyPairPem; token?: string; method?: string } = {},
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const req = request(url + path, { method: o.method ?? 'POST', ca: serverCa, cert: o.cert?.certPem, key: o.cert?.keyPem, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(o.method === 'GET' ? undefined : JSON.stringify(body));
  });
}

const filterArgs = () => fixture<Record<string, unknown>>('scheduler-extender/filter-1.json');

t.test('TLS 1.2: only ECDHE suites; AES128-SHA and AES256-SHA are refused', async (t) => {
  const running = await start({});
  t.teardown(() => running.close());
  t.match(await handshake(running.apiUrl, { ciphers: 'AES128-SHA', maxVersion: 'TLSv1.2' }), /^error: /, 'AES128-SHA: no handshake');
  t.match(await handshake(running.apiUrl, { ciphers: 'AES256-SHA', maxVersion: 'TLSv1.2' }), /^error: /, 'AES256-SHA: no handshake');
  t.equal(await handshake(running.apiUrl, { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' }), 'ECDHE-RSA-AES128-GCM-SHA256');
  t.match(await handshake(running.apiUrl, {}), /^TLS_/, 'TLS 1.3 still works');
  // A rotated certificate keeps the policy (setSecureContext replaces the whole context).
  const pair = { certPem: readFileSync(join(dir, 'tls.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'tls.key'), 'utf8') };
  keepTlsPolicy(running.servers.api.server as unknown as SecureContextTarget, running.servers.tlsOptions!).setSecureContext(secureContextOptions(pair));
  t.match(await handshake(running.apiUrl, { ciphers: 'AES128-SHA', maxVersion: 'TLSv1.2' }), /^error: /, 'still refused after a rotation');
});

t.test('client certificates required for the extender and webhooks; the admin API keeps bearer tokens', async (t) => {
  const running = await start({ clientCaFile: join(dir, 'client-ca.crt'), requireClientCert: ['extender', 'webhooks'] });
  t.teardown(() => running.close());
  const none = await post(running.apiUrl, '/scheduler/filter', filterArgs());
  t.equal(none.status, 401, 'no certificate: 401');
  t.match(none.body.error, /needs a client certificate signed by the CA in https.clientCaFile \(no client certificate was presented\)/);
  const wrong = await post(running.apiUrl, '/scheduler/bind', { PodName: 'a', PodNamespace: 'b', PodUID: 'c', Node: 'gpu-node-1' }, { cert: stranger });
  t.equal(wrong.status, 401, 'a certificate from another CA: 401');
  const hook = await post(running.apiUrl, '/webhooks/mutate', fixture('admission/gpu-pod.json'));
  t.equal(hook.status, 401, 'webhooks too');
  const ok = await post(running.apiUrl, '/scheduler/filter', filterArgs(), { cert: scheduler });
  t.equal(ok.status, 200, 'the CA-signed certificate is accepted');
  t.same(ok.body.NodeNames, ['gpu-node-1', 'gpu-node-2']);
  const admin = await post(running.apiUrl, '/api/v1/nodes', null, { token: 'admin-token', method: 'GET' });
  t.equal(admin.status, 200, 'admin API: bearer token, no certificate');
});

t.test('off by default, with a warning; a required certificate without a CA is a config error', async (t) => {
  const logs: string[] = [];
  const running = await start({}, logs);
  await running.close();
  t.ok(
    logs.some((l) => l.includes('"level":40') && l.includes('the extender and webhooks routes accept callers without a client certificate')),
    'the startup log warns',
  );
  await t.rejects(start({ requireClientCert: ['extender'] }), ConfigError);
  await t.rejects(start({ requireClientCert: ['extender'] }), { message: /https.requireClientCert \(extender\) needs https.clientCaFile/ });
});
