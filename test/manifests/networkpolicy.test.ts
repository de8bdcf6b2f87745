// The NetworkPolicy as installed (kustomize components/network-policy via overlays/hardened,
// and the chart's networkPolicy.enabled) agrees with the Deployment: it selects sluice's pods,
// admits the API port only from IP blocks (the host-network control plane) and from named
// pods in sluice's namespace (second scheduler, the queues Job), never from every pod; and
// the chart refuses to render it without the addresses.
import { execFileSync } from 'node:child_process';
import t from 'tap';
type TestBase = Pick<typeof t, 'ok' | 'equal' | 'same' | 'notOk'>;
import { helmPath } from '../helpers/k8s-tools.js';
import type { K8sObject } from './k8s-schema.js';
import { HELM_VALUE_SETS, chartDir, renderHelm, renderKustomize, type Rendering } from './render.js';

interface Peer {
  ipBlock?: { cidr: string };
  podSelector?: { matchLabels: Record<string, string> };
  namespaceSelector?: { matchLabels: Record<string, string> };
}
interface Rule {
  from: Peer[];
  ports: Array<{ port: number }>;
}
type Pod = { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ ports?: Array<{ name: string; containerPort: number }> }> } };
const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
const podOf = (objects: K8sObject[], kind: string, name: string): Pod | undefined =>
  (objects.find((o) => o.kind === kind && o.metadata.name === name)?.spec as { template: Pod } | undefined)?.template;

function check(t: TestBase, r: Rendering, extraPeers: number): void {
  const policy = r.objects.find((o) => o.kind === 'NetworkPolicy');
  t.ok(policy, `${r.name}: a NetworkPolicy`);
  if (!policy) return;
  const spec = policy.spec as { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: Rule[] };
  t.equal(policy.metadata.namespace, r.namespace);
  const pod = podOf(r.objects, 'Deployment', 'sluice')!;
  t.ok(selects(spec.podSelector.matchLabels, pod.metadata.labels), "selects the Deployment's pods");
  t.same(spec.policyTypes, ['Ingress']);
  const ports = Object.fromEntries(pod.spec.containers[0]!.ports!.map((p) => [p.name, p.containerPort]));
  const api = spec.ingress.filter((rule) => rule.ports.some((p) => p.port === ports.https));
  t.equal(api.length, 1, 'one rule for the API port');
  const peers = api[0]!.from;
  t.ok(
    peers.some((p) => p.ipBlock),
    'the control plane by IP',
  );
  t.ok(
    peers.every((p) => p.ipBlock || (p.podSelector && !p.namespaceSelector && Object.keys(p.podSelector.matchLabels).length > 0) || p.namespaceSelector),
    'IP blocks and named pods only',
  );
  t.equal(peers.filter((p) => p.namespaceSelector).length, extraPeers, 'namespace-wide peers only where the values add them');
  t.ok(
    spec.ingress.some((rule) => rule.ports.some((p) => p.port === ports.metrics)),
    'a rule for the ops port (probes, metrics)',
  );
  t.ok(
    spec.ingress.every((rule) => rule.from.length > 0 && rule.ports.length > 0),
    'no rule admits every source or every port',
  );
  // Pods in sluice's namespace that call the API port are admitted by their labels.
  const queues = podOf(r.objects, 'Job', 'sluice-queues');
  if (queues)
    t.ok(
      peers.some((p) => p.podSelector && selects(p.podSelector.matchLabels, queues.metadata.labels)),
      'the queues Job reaches the admin API',
    );
}

t.test('kustomize: overlays/hardened (components/network-policy)', async (t) => {
  const r = renderKustomize('manifests/overlays/hardened');
  check(t, r, 0);
  const scheduler = podOf(renderKustomize('manifests/overlays/with-second-scheduler').objects, 'Deployment', 'sluice-scheduler')!;
  const peers = (r.objects.find((o) => o.kind === 'NetworkPolicy')!.spec as { ingress: Rule[] }).ingress[0]!.from;
  t.ok(
    peers.some((p) => p.podSelector && selects(p.podSelector.matchLabels, scheduler.metadata.labels)),
    'the second scheduler reaches the extender',
  );
  t.notOk(
    renderKustomize('manifests/overlays/default').objects.some((o) => o.kind === 'NetworkPolicy'),
    'not in overlays/default',
  );
});

t.test('chart: networkPolicy.enabled with the CIDRs as values', async (t) => {
  const set = 'client certificates off, NetworkPolicy on';
  t.ok(HELM_VALUE_SETS[set]);
  const r = renderHelm(set);
  check(t, r, 1);
  const policy = r.objects.find((o) => o.kind === 'NetworkPolicy')!;
  const cidrs = (policy.spec as { ingress: Rule[] }).ingress.flatMap((rule) => rule.from.flatMap((p) => (p.ipBlock ? [p.ipBlock.cidr] : [])));
  t.same(cidrs, ['10.0.0.0/24', '192.168.10.5/32', '10.0.0.0/16'], 'the CIDRs of the values');
  t.notOk(
    renderHelm('default').objects.some((o) => o.kind === 'NetworkPolicy'),
    'off by default',
  );
  const fail = (args: string[]): string => {
    try {
      execFileSync(helmPath(), ['template', 'sluice', chartDir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return 'rendered';
    } catch (e) {
      return String((e as { stderr?: string }).stderr);
    }
  };
  t.match(fail(['--set', 'networkPolicy.enabled=true']), /networkPolicy.enabled needs networkPolicy.controlPlaneCIDRs/);
  t.match(
    fail(['--set', 'networkPolicy.enabled=true', '--set-json', 'networkPolicy.controlPlaneCIDRs=["10.0.0.0/24"]']),
    /networkPolicy.enabled needs networkPolicy.nodeCIDRs/,
  );
});
