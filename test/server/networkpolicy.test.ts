// manifests/networkpolicy.yaml agrees with the Deployment: it selects sluice's pods and
// admits the API port only from IP blocks (the control plane), never from every pod.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import { loadConfig } from '../../config/load.js';
import { repoRoot } from '../helpers/k8s.js';

interface Rule { from: Array<Record<string, unknown>>; ports: Array<{ port: number }> }
const policy = yaml.load(readFileSync(join(repoRoot, 'manifests/networkpolicy.yaml'), 'utf8')) as {
  kind: string;
  metadata: { namespace: string };
  spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: Rule[] };
};
const deployment = (yaml.loadAll(readFileSync(join(repoRoot, 'manifests/sluice.yaml'), 'utf8')) as Array<{ kind: string; spec?: any }>).find((d) => d.kind === 'Deployment')!;
const config = loadConfig({ env: {} });

t.test('the NetworkPolicy admits only the control plane to the API port', async (t) => {
  t.equal(policy.kind, 'NetworkPolicy');
  t.equal(policy.metadata.namespace, config.certs.namespace);
  t.same(policy.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels, "selects the Deployment's pods");
  t.same(policy.spec.policyTypes, ['Ingress']);
  const api = policy.spec.ingress.filter((r) => r.ports.some((p) => p.port === config.https.port));
  t.equal(api.length, 1, 'one rule for the API port');
  t.ok(api[0]!.from.length > 0 && api[0]!.from.every((f) => Object.keys(f).join() === 'ipBlock'), 'from IP blocks only (host-network control plane)');
  t.ok(policy.spec.ingress.every((r) => r.from.length > 0 && r.ports.length > 0), 'no rule admits every source or every port');
});
