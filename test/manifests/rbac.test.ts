// Least privilege, derived from the code: the API calls in the source (api-calls.ts reads
// them at test time, so a merge that adds a call keeps this right) must each be granted to
// sluice's ServiceAccount by every install path, and every granted (group, resource, verb)
// must be one the code calls. Certificate self-provisioning's calls (certs/provision.ts)
// count only where self-provisioning is on; elsewhere their rights must be absent.
import t from 'tap';
import { loadConfig } from '../../config/load.js';
import { repoRoot } from '../webhooks/helpers.js';
import { apiCallsInCode, type ApiCall } from './api-calls.js';
import type { K8sObject } from './k8s-schema.js';
import { HELM_VALUE_SETS, kustomizeEntryPoints, renderHelm, renderKustomize, type Rendering } from './render.js';

/**
 * Calls announced by branches not merged yet, counted as if the code made them. Once the
 * code makes one, its entry here is redundant (reported below) and can go.
 */
const ANNOUNCED: ApiCall[] = [];
/** Source files whose calls happen only with certs.selfProvision on. */
const SELF_PROVISION_ONLY = ['certs/provision.ts'];

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Grant {
  group: string;
  resource: string;
  verb: string;
  resourceNames: string[];
  /** Role namespace; null for a ClusterRole. */
  namespace: string | null;
  role: string;
}

const config = loadConfig({ env: {} });
const key = (c: { group: string; resource: string; verb: string }): string => `${c.group || 'core'} ${c.resource} ${c.verb}`;

/** Every (group, resource, verb) the rendering grants to the ServiceAccount sluice. */
function grantsToSluice(r: Rendering): Grant[] {
  const isSluice = (b: K8sObject): boolean =>
    ((b.subjects ?? []) as Array<{ kind: string; name: string; namespace?: string }>).some(
      (s) => s.kind === 'ServiceAccount' && s.name === 'sluice' && s.namespace === r.namespace,
    );
  const grants: Grant[] = [];
  for (const b of r.objects.filter((o) => (o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') && isSluice(o))) {
    const ref = b.roleRef as { kind: string; name: string };
    const role = r.objects.find((o) => o.kind === ref.kind && o.metadata.name === ref.name);
    if (!role) throw new Error(`${b.kind} ${b.metadata.name} names ${ref.kind} ${ref.name}, which the rendering lacks`);
    const namespace = b.kind === 'RoleBinding' ? (b.metadata.namespace ?? null) : null;
    for (const rule of (role.rules ?? []) as Rule[]) {
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs) {
            grants.push({ group, resource, verb, resourceNames: rule.resourceNames ?? [], namespace, role: `${role.kind} ${role.metadata.name}` });
          }
    }
  }
  return grants;
}

function selfProvisioning(r: Rendering): boolean {
  const deploy = r.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'sluice')!;
  const container = (deploy.spec as { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } }).template.spec
    .containers[0]!;
  if (container.env?.some((e) => e.name === 'SLUICE_CERTS_SELF_PROVISION' && e.value === 'true')) return true;
  const cm = r.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sluice-config'));
  return /selfProvision: true/.test((cm?.data as Record<string, string> | undefined)?.['config.yaml'] ?? '');
}

const codeCalls = apiCallsInCode(repoRoot);

t.test('the calls the code makes', async (t) => {
  t.ok(
    codeCalls.length >= 10,
    `${codeCalls.length} calls found, e.g. ${codeCalls
      .slice(0, 3)
      .map((c) => `${key(c)} (${c.via})`)
      .join('; ')}`,
  );
  t.ok(
    codeCalls.some((c) => c.resource === 'pods/binding' && c.verb === 'create'),
    'the bind is among them',
  );
  for (const a of ANNOUNCED) {
    const made = codeCalls.find((c) => key(c) === key(a));
    if (made) t.comment(`announced ${key(a)} (${a.from}) is now in the code (${made.from}): its ANNOUNCED entry can go`);
  }
});

const renderings: Rendering[] = [...kustomizeEntryPoints().map(renderKustomize), ...Object.keys(HELM_VALUE_SETS).map((s) => renderHelm(s))];

for (const r of renderings) {
  t.test(r.name, async (t) => {
    const self = selfProvisioning(r);
    const needed = [...codeCalls, ...ANNOUNCED].filter((c) => self || !SELF_PROVISION_ONLY.includes(c.from));
    const grants = grantsToSluice(r);
    t.ok(grants.length > 0, `${grants.length} grants; self-provisioning ${self ? 'on' : 'off'}`);

    const missing = [...new Map(needed.filter((c) => !grants.some((g) => key(g) === key(c))).map((c) => [key(c), `${key(c)} (${c.from}: ${c.via})`])).values()];
    t.same(missing, [], 'every call the code makes is granted');
    const needless = [...new Set(grants.filter((g) => !needed.some((c) => key(c) === key(g))).map((g) => `${key(g)} in ${g.role}`))];
    t.same(needless, [], 'nothing is granted that the code never calls');
    t.same(grants.filter((g) => [g.group, g.resource, g.verb].includes('*')).map(key), [], 'no wildcards');
    // Issue 22, defect 11: the sluice-leader Role repeated the ClusterRole's pods patch.
    const unnamed = grants.filter((g) => g.resourceNames.length === 0);
    const twice = [
      ...new Set(
        unnamed.filter((g) => g.namespace !== null && unnamed.some((o) => o.namespace === null && key(o) === key(g))).map((g) => `${key(g)} in ${g.role}`),
      ),
    ];
    t.same(twice, [], 'no Role repeats a right the ClusterRole grants everywhere');

    const secrets = grants.filter((g) => g.resource === 'secrets');
    t.ok(
      secrets.every((g) => g.namespace === r.namespace),
      "Secrets only in sluice's own namespace",
    );
    t.ok(
      secrets.filter((g) => g.verb !== 'create').every((g) => g.resourceNames.join() === config.certs.secretName),
      `Secrets read and written only by name (${config.certs.secretName})`,
    );
    const hooks = grants.filter((g) => g.resource.endsWith('webhookconfigurations'));
    t.ok(
      hooks.every((g) => g.resourceNames.join() === config.certs.webhookConfigName),
      `webhook configurations only by name (${config.certs.webhookConfigName})`,
    );
    const leases = grants.filter((g) => g.resource === 'leases');
    t.ok(
      leases.every((g) => g.namespace === r.namespace),
      "leases only in sluice's own namespace",
    );
    t.ok(
      leases.filter((g) => g.verb !== 'create').every((g) => g.resourceNames.join() === 'sluice'),
      'the Lease sluice by name',
    );
  });
}

t.test('the check fails on a rendering that grants too much or too little', async (t) => {
  const r = structuredClone(renderings.find((x) => x.name === 'kustomize manifests/overlays/default')!);
  const role = r.objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'sluice')!;
  const rules = role.rules as Rule[];
  rules.push({ apiGroups: [''], resources: ['pods'], verbs: ['delete'] });
  rules.splice(
    rules.findIndex((x) => x.resources.includes('pods/binding')),
    1,
  );
  const grants = grantsToSluice(r);
  t.notOk(
    grants.some((g) => g.resource === 'pods/binding'),
    'the bind right is gone',
  );
  t.ok(
    grants.some((g) => key(g) === 'core pods delete') && !codeCalls.some((c) => key(c) === 'core pods delete'),
    'and pods delete is granted but never called',
  );
});
