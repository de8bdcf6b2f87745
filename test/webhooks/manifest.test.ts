// manifests/base/webhooks.yaml agrees with the code: paths, names the self-provisioner patches,
// the Service its certificate names, and the safety settings the design asks for.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import { loadConfig } from '../../config/load.js';
import { repoRoot } from './helpers.js';

interface Hook {
  admissionReviewVersions: string[];
  sideEffects: string;
  failurePolicy: string;
  timeoutSeconds: number;
  rules: Array<{ operations: string[]; resources: string[]; apiGroups: string[] }>;
  namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> };
  clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string };
}
const docs = yaml.loadAll(readFileSync(join(repoRoot, 'manifests/base/webhooks.yaml'), 'utf8')) as Array<{
  kind: string;
  metadata: { name: string };
  webhooks: Hook[];
}>;
const config = loadConfig({ env: {} });

t.test('webhook configurations', async (t) => {
  t.same(
    docs.map((d) => d.kind),
    ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'],
  );
  for (const d of docs) {
    t.equal(d.metadata.name, config.certs.webhookConfigName, `${d.kind}: the name the self-provisioner patches`);
    const h = d.webhooks[0]!;
    t.same(h.admissionReviewVersions, ['v1']);
    t.equal(h.sideEffects, 'NoneOnDryRun', 'audit rows are side effects, skipped on dry run');
    t.equal(h.failurePolicy, 'Ignore');
    t.equal(h.timeoutSeconds, 5);
    if (d.kind.startsWith('Mutating')) {
      t.same(h.rules[0]!.operations, ['CREATE'], 'the mutation acts on CREATE only');
      t.same(h.rules[0]!.resources, ['pods']);
    } else {
      t.same(h.rules[0]!.operations, ['CREATE', 'UPDATE']);
      t.same(h.rules[0]!.resources, ['pods', 'pods/status'], 'tamper checks cover the status subresource too');
    }
    const excluded = h.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn')?.values ?? [];
    t.ok(excluded.includes('kube-system') && excluded.includes(config.certs.namespace), `${d.kind}: kube-system and sluice's namespace excluded`);
    t.match(h.clientConfig.service, { name: config.certs.service, namespace: config.certs.namespace, port: 443 });
    t.equal(h.clientConfig.service.path, d.kind.startsWith('Mutating') ? '/webhooks/mutate' : '/webhooks/validate');
    t.notOk('caBundle' in h.clientConfig, `${d.kind}: no caBundle in the manifest (kubectl apply would wipe the injected one)`);
  }
  t.equal(
    config.webhooks.serviceAccount,
    `system:serviceaccount:${config.certs.namespace}:sluice`,
    'the default service account is the one manifests/base/rbac.yaml creates',
  );
});

t.test('the PriorityClasses in manifests/base/priorityclasses.yaml match what the webhook writes into pods', async (t) => {
  const objs = yaml.loadAll(readFileSync(join(repoRoot, 'manifests/base/priorityclasses.yaml'), 'utf8')) as Array<{
    kind: string;
    metadata: { name: string };
    value?: number;
    preemptionPolicy?: string;
  }>;
  const pc = (name: string) => objs.find((o) => o.kind === 'PriorityClass' && o.metadata.name === name);
  const w = config.webhooks;
  t.match(pc(w.guaranteedPriorityClass), { value: w.guaranteedPriority, preemptionPolicy: w.guaranteedPreemptionPolicy });
  t.match(pc(w.bestEffortPriorityClass), { value: w.bestEffortPriority, preemptionPolicy: w.bestEffortPreemptionPolicy });
});

t.test("the scheduler reads sluice's CA from a file (kept in step with the Secret), not a pasted caData", async (t) => {
  for (const file of ['manifests/scheduler/extender.yaml', 'manifests/scheduler/local.yaml', 'manifests/components/second-scheduler/scheduler-config.yaml']) {
    const cfg = yaml.load(readFileSync(join(repoRoot, file), 'utf8')) as { extenders: Array<{ tlsConfig: Record<string, unknown> }> };
    const tls = cfg.extenders[0]!.tlsConfig;
    t.type(tls.caFile, 'string', file);
    t.notOk('caData' in tls, `${file}: no caData that goes stale when the CA rotates`);
  }
});
