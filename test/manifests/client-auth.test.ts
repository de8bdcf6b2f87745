// Client certificates as installed (issue 12, defect 2): the chart generates a client CA and
// the callers' certificates, mounts only the CA into sluice and names it in the config; a
// real sluice started with that config and CA accepts the generated kube-scheduler
// certificate and refuses callers without one. kustomize's client-auth component, the
// documented host files (scheduler tlsConfig, kube-apiserver AdmissionConfiguration) and
// the NOTES name the same Secret keys and paths.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import yaml from 'js-yaml';
import t from 'tap';
import { runGenerate } from '../../certs/cli.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import { fixture, gpuNode } from '../helpers/k8s.js';
import { repoRoot } from '../webhooks/helpers.js';
import type { K8sObject } from './k8s-schema.js';
import { chartDir, helmTemplate, renderKustomize } from './render.js';

type Container = { env?: Array<{ name: string; value?: string }>; volumeMounts?: Array<{ name: string; mountPath: string }> };
type Volume = { name: string; secret?: { secretName: string; items?: Array<{ key: string; path: string }> } };
const podSpec = (objects: K8sObject[]): { containers: Container[]; volumes: Volume[] } =>
  (objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'sluice')!.spec as { template: { spec: { containers: Container[]; volumes: Volume[] } } })
    .template.spec;
const secretOf = (objects: K8sObject[], name: string): Record<string, string> | undefined =>
  objects.find((o) => o.kind === 'Secret' && o.metadata.name === name)?.data as Record<string, string> | undefined;
const b64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** The config sluice gets from a rendering (ConfigMap + the env the Deployment sets). */
function sluiceConfig(objects: K8sObject[]): ReturnType<typeof loadConfig> {
  const spec = podSpec(objects);
  const cmName = (spec.volumes.find((v) => v.name === 'config') as unknown as { configMap: { name: string } }).configMap.name;
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName)!;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-clientauth-'));
  try {
    writeFileSync(join(dir, 'config.yaml'), (cm.data as Record<string, string>)['config.yaml']!);
    const env = Object.fromEntries((spec.containers[0]!.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    return loadConfig({ argv: ['--config', join(dir, 'config.yaml')], env });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Secret and key mounted at the config's https.clientCaFile. */
function mountedCa(objects: K8sObject[], file: string): { secret: string; key: string } | undefined {
  const spec = podSpec(objects);
  for (const m of spec.containers[0]!.volumeMounts ?? []) {
    const v = spec.volumes.find((x) => x.name === m.name);
    const item = v?.secret?.items?.find((i) => `${m.mountPath}/${i.path}` === file);
    if (item) return { secret: v!.secret!.secretName, key: item.key };
  }
  return undefined;
}

const ns = 'sluice-system';
const chartDefault = helmTemplate([], ns);

t.test('chart default: a client CA and certificates are generated; sluice mounts the CA and requires it for the extender', async (t) => {
  const config = sluiceConfig(chartDefault);
  t.same(config.https.requireClientCert, ['extender']);
  t.equal(config.https.clientCaFile, '/etc/sluice/client-ca/ca.crt');
  t.same(mountedCa(chartDefault, config.https.clientCaFile), { secret: 'sluice-scheduler-client', key: 'ca.crt' }, 'the config names the mounted ca.crt');
  const data = secretOf(chartDefault, 'sluice-scheduler-client');
  t.ok(data, 'the Secret sluice-scheduler-client is rendered');
  t.same(Object.keys(data ?? {}).sort(), ['apiserver.crt', 'apiserver.key', 'ca.crt', 'tls.crt', 'tls.key'], 'no CA key is kept');
  const ca = new X509Certificate(b64(data!['ca.crt']!));
  t.ok(ca.ca, 'ca.crt is a CA');
  for (const [cert, key, cn] of [
    ['tls.crt', 'tls.key', 'system:kube-scheduler'],
    ['apiserver.crt', 'apiserver.key', 'kube-apiserver'],
  ] as const) {
    const c = new X509Certificate(b64(data![cert]!));
    t.ok(c.checkIssued(ca) && c.verify(ca.publicKey), `${cert} is signed by ca.crt`);
    t.match(c.subject, `CN=${cn}`);
    t.ok(c.keyUsage?.includes('1.3.6.1.5.5.7.3.2'), `${cert} may authenticate a TLS client`);
    t.ok(c.checkPrivateKey(createPrivateKey(b64(data![key]!))), `${key} belongs to ${cert}`);
    t.ok(new Date(c.validTo).getTime() > Date.now() + 5 * 365 * 86_400_000, 'valid for years (validityDays 3650)');
  }
  const secret = chartDefault.find((o) => o.kind === 'Secret' && o.metadata.name === 'sluice-scheduler-client')!;
  t.equal(
    (secret.metadata as { annotations?: Record<string, string> }).annotations?.['helm.sh/resource-policy'],
    'keep',
    'kept on uninstall: the callers hold copies',
  );
});

t.test('a real sluice with the rendered config and CA: the generated kube-scheduler certificate passes, no certificate gets 401', async (t) => {
  const config = sluiceConfig(chartDefault);
  const data = secretOf(chartDefault, 'sluice-scheduler-client')!;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-clientauth-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  runGenerate({ out: dir, service: 'sluice', namespace: ns, dns: [], ips: ['127.0.0.1'], days: 2, caDays: 10 });
  writeFileSync(join(dir, 'client-ca.crt'), b64(data['ca.crt']!)); // what the volume puts at clientCaFile
  writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ nodes: [gpuNode('gpu-node-1'), gpuNode('gpu-node-2')], pods: [] }));
  const run = loadConfig({
    env: {},
    base: {
      clusterSnapshot: join(dir, 'snapshot.json'),
      https: {
        host: '127.0.0.1',
        port: 0,
        certFile: join(dir, 'tls.crt'),
        keyFile: join(dir, 'tls.key'),
        clientCaFile: join(dir, 'client-ca.crt'),
        requireClientCert: config.https.requireClientCert,
      },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: '' },
      api: { token: 'admin-token', tokenReview: false },
    },
  });
  const running = await serve(run, { log: createLogger('info', new Writable({ write: (_c, _e, d) => d() })) });
  t.teardown(() => running.close());
  const serverCa = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const post = (path: string, body: unknown, cert?: [string, string]): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(
        running.apiUrl + path,
        {
          method: 'POST',
          ca: serverCa,
          ...(cert ? { cert: b64(data[cert[0]]!), key: b64(data[cert[1]]!) } : {}),
          headers: { 'content-type': 'application/json' },
          agent: false,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const filter = fixture<Record<string, unknown>>('scheduler-extender/filter-1.json');
  t.equal(await post('/scheduler/filter', filter), 401, 'no client certificate: 401');
  t.equal(await post('/scheduler/filter', filter, ['tls.crt', 'tls.key']), 200, "kube-scheduler's generated certificate: 200");
  t.equal(await post('/scheduler/filter', filter, ['apiserver.crt', 'apiserver.key']), 200, 'the apiserver certificate is from the same CA');
  t.not(await post('/webhooks/mutate', fixture('admission/gpu-pod.json')), 401, 'webhooks stay open unless requireForWebhooks');
});

t.test('chart: clientAuth off, for webhooks too, from an existing Secret', async (t) => {
  const off = helmTemplate(['--set', 'clientAuth.enabled=false'], ns);
  const offConfig = sluiceConfig(off);
  t.same(offConfig.https.requireClientCert, [], 'off: nothing required');
  t.equal(offConfig.https.clientCaFile, '');
  t.notOk(secretOf(off, 'sluice-scheduler-client'), 'off: no Secret');
  t.notOk(
    podSpec(off).volumes.some((v) => v.name === 'client-ca'),
    'off: no CA volume',
  );

  const hooks = helmTemplate(['--set', 'clientAuth.requireForWebhooks=true'], ns);
  t.same(sluiceConfig(hooks).https.requireClientCert, ['extender', 'webhooks']);

  const own = helmTemplate(['--set', 'clientAuth.existingSecret=my-client-ca'], ns);
  const ownConfig = sluiceConfig(own);
  t.same(mountedCa(own, ownConfig.https.clientCaFile), { secret: 'my-client-ca', key: 'ca.crt' }, "the existing Secret's ca.crt is mounted and named");
  t.notOk(secretOf(own, 'sluice-scheduler-client'), 'nothing generated');
});

/** The chart's NOTES.txt, rendered by helm (helm template leaves NOTES out; a copy of the chart renders it as a ConfigMap). */
function renderNotes(args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-notes-'));
  try {
    cpSync(chartDir, dir, { recursive: true });
    renameSync(join(dir, 'templates/NOTES.txt'), join(dir, 'notes.txt'));
    writeFileSync(
      join(dir, 'templates/zz-notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  NOTES.txt: |\n{{ tpl (.Files.Get "notes.txt") . | indent 4 }}\n',
    );
    const objects = helmTemplate(['--show-only', 'templates/zz-notes.yaml', ...args], ns, dir);
    return (objects[0]!.data as Record<string, string>)['NOTES.txt']!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('NOTES and the scheduler configurations hand kube-scheduler the same files', async (t) => {
  const notes = renderNotes([]);
  const data = secretOf(chartDefault, 'sluice-scheduler-client')!;
  const extracted = [...notes.matchAll(/get secret (\S+) -o jsonpath='\{\.data\.([a-z.\\]+)\}' \| base64 -d \| sudo tee (\S+)/g)].map((m) => ({
    secret: m[1]!,
    key: m[2]!.replace(/\\/g, ''),
    file: m[3]!,
  }));
  t.same(
    extracted.map((e) => e.key),
    ['tls.crt', 'tls.key'],
    'NOTES extract the certificate and key',
  );
  t.ok(
    extracted.every((e) => e.secret === 'sluice-scheduler-client' && e.key in data),
    'from keys the Secret has',
  );
  for (const f of ['manifests/scheduler/extender.yaml', 'manifests/scheduler/local.yaml']) {
    const text = readFileSync(join(repoRoot, f), 'utf8');
    // Uncommented as the comment says, the configuration is valid YAML naming the files NOTES write.
    const enabled = yaml.load(text.replace(/# (certFile|keyFile): /g, '$1: ')) as { extenders: Array<{ tlsConfig: { certFile: string; keyFile: string } }> };
    const tls = enabled.extenders[0]!.tlsConfig;
    t.same(
      [tls.certFile, tls.keyFile],
      extracted.map((e) => e.file),
      `${f}: commented certFile/keyFile are the files NOTES write`,
    );
  }
  t.match(renderNotes(['--set', 'clientAuth.enabled=false']), /WARNING: clientAuth.enabled is false/);
  t.match(
    renderNotes(['--set', 'clientAuth.requireForWebhooks=true']),
    /apiserver\.crt\/apiserver\.key of sluice-scheduler-client through an AdmissionConfiguration/,
  );
});

t.test('second scheduler: its commented client certificate lines, uncommented, name keys it mounts', async (t) => {
  const dir = 'manifests/components/second-scheduler';
  const cfg = yaml.load(readFileSync(join(repoRoot, dir, 'scheduler-config.yaml'), 'utf8').replace(/# (certFile|keyFile): /g, '$1: ')) as {
    extenders: Array<{ tlsConfig: { certFile: string; keyFile: string } }>;
  };
  const deploy = yaml.load(
    readFileSync(join(repoRoot, dir, 'deployment.yaml'), 'utf8').replace(
      /^(\s*)# (- \{ name: sluice-client|- name: sluice-client|  secret:|    secretName: sluice-scheduler-client|    items: \[\{ key: tls)/gm,
      '$1$2',
    ),
  ) as { spec: { template: { spec: { containers: Container[]; volumes: Volume[] } } } };
  const spec = deploy.spec.template.spec;
  const mount = spec.containers[0]!.volumeMounts!.find((m) => m.name === 'sluice-client');
  const volume = spec.volumes.find((v) => v.name === 'sluice-client');
  t.equal(volume?.secret?.secretName, 'sluice-scheduler-client');
  const files = (volume?.secret?.items ?? []).map((i) => ({ key: i.key, file: `${mount?.mountPath}/${i.path}` }));
  const tls = cfg.extenders[0]!.tlsConfig;
  t.same(files, [
    { key: 'tls.crt', file: tls.certFile },
    { key: 'tls.key', file: tls.keyFile },
  ]);
});

t.test('kustomize client-auth component: the env names the mounted ca.crt of sluice-scheduler-client', async (t) => {
  const r = renderKustomize('manifests/overlays/hardened');
  const config = sluiceConfig(r.objects);
  t.same(config.https.requireClientCert, ['extender']);
  t.same(mountedCa(r.objects, config.https.clientCaFile), { secret: 'sluice-scheduler-client', key: 'ca.crt' });
  t.notOk(secretOf(r.objects, 'sluice-scheduler-client'), 'the Secret is yours (cert-manager or openssl), not in the manifests');
  const plain = sluiceConfig(renderKustomize('manifests/overlays/default').objects);
  t.same(plain.https.requireClientCert, [], 'overlays/default leaves it off (it needs your Secret)');
});

t.test("kube-apiserver's AdmissionConfiguration and kubeconfig match the webhooks' Service", async (t) => {
  const admission = yaml.load(readFileSync(join(repoRoot, 'manifests/apiserver/admission-config.yaml'), 'utf8')) as {
    apiVersion: string;
    kind: string;
    plugins: Array<{ name: string; configuration: { kind: string; kubeConfigFile: string } }>;
  };
  t.equal(admission.kind, 'AdmissionConfiguration');
  t.equal(admission.apiVersion, 'apiserver.config.k8s.io/v1');
  t.same(admission.plugins.map((p) => p.name).sort(), ['MutatingAdmissionWebhook', 'ValidatingAdmissionWebhook']);
  t.ok(
    admission.plugins.every(
      (p) => p.configuration.kind === 'WebhookAdmissionConfiguration' && p.configuration.kubeConfigFile === '/etc/kubernetes/sluice/webhook-kubeconfig.yaml',
    ),
  );
  const kubeconfig = yaml.load(readFileSync(join(repoRoot, 'manifests/apiserver/webhook-kubeconfig.yaml'), 'utf8')) as {
    kind: string;
    users: Array<{ name: string; user: Record<string, string> }>;
  };
  t.equal(kubeconfig.kind, 'Config');
  const hooks = renderKustomize('manifests/overlays/default').objects.filter((o) => o.kind.endsWith('WebhookConfiguration'));
  for (const h of hooks) {
    for (const w of h.webhooks as Array<{ clientConfig: { service: { name: string; namespace: string; port: number } } }>) {
      const s = w.clientConfig.service;
      t.equal(s.port, 443, 'port 443: the user name carries no port');
      t.ok(
        kubeconfig.users.some((u) => u.name === `${s.name}.${s.namespace}.svc`),
        `a user named ${s.name}.${s.namespace}.svc for ${h.kind}`,
      );
    }
  }
  const user = kubeconfig.users[0]!.user;
  t.same([user['client-certificate'], user['client-key']], ['/etc/kubernetes/sluice/apiserver.crt', '/etc/kubernetes/sluice/apiserver.key']);
  t.ok(
    ['apiserver.crt', 'apiserver.key'].every((k) => k in secretOf(chartDefault, 'sluice-scheduler-client')!),
    "files the chart's Secret provides",
  );
});
