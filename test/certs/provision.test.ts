// CertProvisioner through the real @kubernetes/client-node against a stand-in
// kube-apiserver on 127.0.0.1 (no cluster here): the Secret is created when absent,
// caBundle is JSON-patched into both webhook configurations, a second run writes nothing,
// renewal rewrites the Secret and hands the new pair to the listener, and two replicas
// racing end with the same certificates.
import { X509Certificate } from 'node:crypto';
import { kubeConfigFor } from '../helpers/k8s.js';
import { fastify } from 'fastify';
import t from 'tap';
import { CertProvisioner, type CertsConfig } from '../../certs/provision.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { applyPatch } from '../webhooks/helpers.js';

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  [k: string]: unknown;
}

/** Secrets and webhook configurations with resourceVersion conflicts, like the real one. */
async function standInApiserver(): Promise<{ url: string; calls: string[]; objects: Map<string, Obj>; close(): Promise<void> }> {
  const app = fastify();
  const objects = new Map<string, Obj>();
  const calls: string[] = [];
  let rv = 1;
  const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
  app.addContentTypeParser('application/json-patch+json', { parseAs: 'string' }, (_req, body, done) => done(null, JSON.parse(body as string)));
  app.addHook('onRequest', async (req) => {
    calls.push(`${req.method} ${req.url.split('?')[0]}`);
  });
  const secretPath = '/api/v1/namespaces/:ns/secrets';
  app.get(`${secretPath}/:name`, async (req, reply) => {
    const { ns, name } = req.params as { ns: string; name: string };
    return objects.get(`secret/${ns}/${name}`) ?? reply.code(404).send(status(404, 'NotFound', `secrets "${name}" not found`));
  });
  app.post(secretPath, async (req, reply) => {
    const { ns } = req.params as { ns: string };
    const body = req.body as Obj;
    const key = `secret/${ns}/${body.metadata.name}`;
    if (objects.has(key)) return reply.code(409).send(status(409, 'AlreadyExists', `secrets "${body.metadata.name}" already exists`));
    const stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } };
    objects.set(key, stored);
    return reply.code(201).send(stored);
  });
  app.put(`${secretPath}/:name`, async (req, reply) => {
    const { ns, name } = req.params as { ns: string; name: string };
    const body = req.body as Obj;
    const key = `secret/${ns}/${name}`;
    if (objects.get(key)?.metadata.resourceVersion !== body.metadata.resourceVersion) {
      return reply.code(409).send(status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again'));
    }
    const stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } };
    objects.set(key, stored);
    return stored;
  });
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    const path = `/apis/admissionregistration.k8s.io/v1/${kind}/:name`;
    app.get(
      path,
      async (req, reply) => objects.get(`${kind}/${(req.params as { name: string }).name}`) ?? reply.code(404).send(status(404, 'NotFound', 'not found')),
    );
    app.patch(path, async (req, reply) => {
      if (req.headers['content-type'] !== 'application/json-patch+json')
        return reply.code(415).send(status(415, 'UnsupportedMediaType', String(req.headers['content-type'])));
      const key = `${kind}/${(req.params as { name: string }).name}`;
      const cur = objects.get(key);
      if (!cur) return reply.code(404).send(status(404, 'NotFound', 'not found'));
      try {
        const next = applyPatch(cur, req.body as Array<{ op: string; path: string; value?: unknown }>);
        next.metadata.resourceVersion = String(rv++);
        objects.set(key, next);
        return next;
      } catch (e) {
        return reply.code(422).send(status(422, 'Invalid', (e as Error).message));
      }
    });
  }
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, calls, objects, close: () => app.close() };
}

const hook = (name: string) => ({
  name,
  admissionReviewVersions: ['v1'],
  sideEffects: 'NoneOnDryRun',
  clientConfig: { service: { name: 'sluice', namespace: 'sluice-system' }, caBundle: '' },
});
const cfg: CertsConfig = {
  namespace: 'sluice-system',
  service: 'sluice',
  secretName: 'sluice-webhook-tls',
  webhookConfigName: 'sluice',
  servingValidDays: 90,
  servingRenewDays: 30,
  caValidDays: 3650,
  caRenewDays: 365,
  checkIntervalSeconds: 3600,
};

async function setup(t: { teardown(fn: () => unknown): void }) {
  const api = await standInApiserver();
  t.teardown(() => api.close());
  api.objects.set('mutatingwebhookconfigurations/sluice', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'sluice', resourceVersion: '1000' },
    webhooks: [hook('mutate.pods.sluice.io')],
  });
  api.objects.set('validatingwebhookconfigurations/sluice', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'sluice', resourceVersion: '1001' },
    webhooks: [hook('validate.pods.sluice.io')],
  });
  const kc = kubeConfigFor(api.url, 't');
  return { api, kc };
}
const bundleOf = (o: Obj | undefined): string =>
  Buffer.from((o?.webhooks as Array<{ clientConfig: { caBundle: string } }>)[0]!.clientConfig.caBundle, 'base64').toString();

t.test('first start creates the Secret and patches caBundle; a second run writes nothing', async (t) => {
  const { api, kc } = await setup(t);
  const p = new CertProvisioner(kc, cfg, createLogger('silent'), new Metrics({ defaultMetrics: false }));
  const serving = await p.ensure();
  t.ok(api.calls.includes('POST /api/v1/namespaces/sluice-system/secrets'), 'Secret created');
  const secret = api.objects.get('secret/sluice-system/sluice-webhook-tls') as Obj & { data: Record<string, string> };
  t.ok(secret, 'stored');
  t.same(Object.keys(secret.data).sort(), ['ca-bundle.crt', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  const ca = new X509Certificate(Buffer.from(secret.data['ca.crt']!, 'base64'));
  const leaf = new X509Certificate(serving.certPem);
  t.ok(leaf.verify(ca.publicKey), 'serving cert signed by the stored CA');
  t.ok(leaf.checkHost('sluice.sluice-system.svc'));
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    t.equal(bundleOf(api.objects.get(`${kind}/sluice`)), ca.toString(), `${kind}: caBundle is the CA`);
  }
  api.calls.length = 0;
  const again = await p.ensure();
  t.equal(again.certPem, serving.certPem, 'same certificate');
  t.same(
    api.calls.filter((c) => !c.startsWith('GET')),
    [],
    'nothing written the second time',
  );
});

t.test('renewal rewrites the Secret and hands the new pair to the listener', async (t) => {
  const { api, kc } = await setup(t);
  let now = new Date();
  const p = new CertProvisioner(kc, cfg, createLogger('silent'), new Metrics({ defaultMetrics: false }), {}, () => now);
  const first = await p.ensure();
  const handed: string[] = [];
  p.onServing = (pair) => handed.push(pair.certPem);
  now = new Date(now.getTime() + 61 * 86_400_000);
  const second = await p.ensure();
  t.not(second.certPem, first.certPem, 'renewed under 30 days left');
  t.same(handed, [second.certPem], 'the listener got the new pair');
  t.ok(api.calls.includes('PUT /api/v1/namespaces/sluice-system/secrets/sluice-webhook-tls'), 'Secret replaced');
  const stored = api.objects.get('secret/sluice-system/sluice-webhook-tls') as Obj & { data: Record<string, string> };
  t.equal(Buffer.from(stored.data['tls.crt']!, 'base64').toString(), second.certPem);
});

t.test('two replicas starting at once end with the same certificates', async (t) => {
  const { api, kc } = await setup(t);
  const mk = () => new CertProvisioner(kc, cfg, createLogger('silent'), new Metrics({ defaultMetrics: false }));
  const [a, b] = await Promise.all([mk().ensure(), mk().ensure()]);
  t.equal(a.certPem, b.certPem, "the loser adopted the winner's certificate");
  t.equal(api.calls.filter((c) => c.startsWith('POST')).length, 2, 'both tried to create; one got 409');
  t.equal(
    bundleOf(api.objects.get('mutatingwebhookconfigurations/sluice')),
    Buffer.from((api.objects.get('secret/sluice-system/sluice-webhook-tls') as Obj & { data: Record<string, string> }).data['ca.crt']!, 'base64').toString(),
  );
});

t.test('a missing webhook configuration is logged, not fatal', async (t) => {
  const { api, kc } = await setup(t);
  api.objects.delete('validatingwebhookconfigurations/sluice');
  const lines: string[] = [];
  const log = createLogger('warn', { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream);
  await new CertProvisioner(kc, cfg, log, new Metrics({ defaultMetrics: false })).ensure();
  t.ok(
    lines.some((l) => l.includes('ValidatingWebhookConfiguration sluice does not exist; apply manifests/base/webhooks.yaml')),
    'says what to do',
  );
});

t.test("serve with certs.selfProvision: the listener starts from the Secret's serving pair", async (t) => {
  const { statSync, readFileSync } = await import('node:fs');
  const { prepareServingCert } = await import('../../certs/serving.js');
  const { loadConfig } = await import('../../config/load.js');
  const { api, kc } = await setup(t);
  const config = loadConfig({ env: {}, base: { certs: { ...cfg, selfProvision: true } } });
  const metrics = new Metrics({ defaultMetrics: false });
  const prepared = await prepareServingCert(config, kc, createLogger('silent'), metrics);
  t.teardown(() => prepared.stop());
  t.not(prepared.config.https.certFile, '', 'cert file filled in for the listener');
  t.equal(statSync(prepared.config.https.keyFile).mode & 0o777, 0o600, 'key written 0600');
  const secret = api.objects.get('secret/sluice-system/sluice-webhook-tls') as Obj & { data: Record<string, string> };
  t.equal(readFileSync(prepared.config.https.certFile, 'utf8'), Buffer.from(secret.data['tls.crt']!, 'base64').toString(), "the Secret's serving cert");
  const expiry = (await metrics.certExpirySeconds.get()).values.map((v) => v.labels.kind).sort();
  t.same(expiry, ['ca', 'serving'], 'expiry gauges set');
  // certs.extraDns / certs.extraIps reach the self-provisioned certificate.
  const { api: api2, kc: kc2 } = await setup(t);
  const withExtras = loadConfig({ env: {}, base: { certs: { ...cfg, selfProvision: true, extraDns: ['sluice.example.com'], extraIps: ['10.96.0.42'] } } });
  const p2 = await prepareServingCert(withExtras, kc2, createLogger('silent'), new Metrics({ defaultMetrics: false }));
  t.teardown(() => p2.stop());
  const leaf = new X509Certificate(readFileSync(p2.config.https.certFile, 'utf8'));
  t.match(leaf.subjectAltName, /DNS:sluice\.example\.com.*IP Address:10\.96\.0\.42/, 'extra SANs from config');
  t.ok(api2.objects.get('secret/sluice-system/sluice-webhook-tls'), 'kept in the Secret');
  await t.rejects(
    prepareServingCert(config, null, createLogger('silent'), metrics),
    { message: /^certs.selfProvision needs a Kubernetes cluster/ },
    'no cluster: a clear error',
  );
});
