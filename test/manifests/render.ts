// Every way sluice is installed, rendered by the real tools: each kustomize entry point
// with `kubectl kustomize`, and the Helm chart with `helm template` for default and
// non-default values.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { helmPath, kubectlPath } from '../helpers/k8s-tools.js';
import { repoRoot } from '../webhooks/helpers.js';
import type { K8sObject } from './k8s-schema.js';

export interface Rendering {
  name: string;
  objects: K8sObject[];
  /** Namespace sluice runs in. */
  namespace: string;
}

export const chartDir = join(repoRoot, 'charts/sluice');

/** manifests/, base, every overlay: the directories `kubectl apply -k` takes. */
export function kustomizeEntryPoints(): string[] {
  const dirs = ['manifests', 'manifests/base'];
  for (const d of readdirSync(join(repoRoot, 'manifests/overlays'))) dirs.push(`manifests/overlays/${d}`);
  return dirs.filter((d) => existsSync(join(repoRoot, d, 'kustomization.yaml')));
}

const parse = (text: string): K8sObject[] => (yaml.loadAll(text) as Array<K8sObject | null>).filter((o): o is K8sObject => !!o);

export function renderKustomize(dir: string): Rendering {
  const out = execFileSync(kubectlPath(), ['kustomize', join(repoRoot, dir)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { name: `kustomize ${dir}`, objects: parse(out), namespace: 'sluice-system' };
}

/** Value sets the chart is rendered with: the defaults, and every toggle the other way. */
export const HELM_VALUE_SETS: Record<string, string[]> = {
  default: [],
  'secret TLS, external stores, monitoring, Fail, queues': [
    '--set',
    'tls.selfProvision=false',
    '--set',
    'tls.caBundle=Y2E=',
    '--set',
    'postgres.bundled=false',
    '--set',
    'postgres.url=postgres://sluice:pw@db.example:5432/sluice',
    '--set',
    'redis.bundled=false',
    '--set',
    'redis.existingSecret=my-redis',
    '--set',
    'metrics.serviceMonitor.enabled=true',
    '--set',
    'metrics.prometheusRule.enabled=true',
    '--set',
    'metrics.grafanaDashboard.enabled=true',
    '--set',
    'webhooks.failurePolicy=Fail',
    '--set',
    'replicas=3',
    '--set',
    'image.repository=registry.example/sluice',
    '--set',
    'image.tag=1.2.3',
    '--set-json',
    'gpuResources=["nvidia.com/gpu","amd.com/gpu"]',
    '--set-json',
    'queues=[{"name":"team-a","cohort":"research","limits":[{"resource":"nvidia.com/gpu","guaranteed":8,"bestEffortCap":16}]}]',
  ],
  'client certificates off, NetworkPolicy on': [
    '--set',
    'clientAuth.enabled=false',
    '--set',
    'networkPolicy.enabled=true',
    '--set-json',
    'networkPolicy.controlPlaneCIDRs=["10.0.0.0/24","192.168.10.5/32"]',
    '--set-json',
    'networkPolicy.nodeCIDRs=["10.0.0.0/16"]',
    '--set-json',
    'networkPolicy.extraApiPeers=[{"namespaceSelector":{"matchLabels":{"sluice.io/admin-api":"true"}}}]',
    '--set-json',
    'queues=[{"name":"team-a"}]',
  ],
  'client certificates for webhooks too, from an existing Secret': [
    '--set',
    'clientAuth.requireForWebhooks=true',
    '--set',
    'clientAuth.existingSecret=my-client-ca',
  ],
};

/** `helm template` of the chart with extra arguments (values); the parsed objects. */
export function helmTemplate(args: string[], namespace = 'gpu-platform', dir = chartDir): K8sObject[] {
  return parse(
    execFileSync(helmPath(), ['template', 'sluice', dir, '--namespace', namespace, ...args], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

export function renderHelm(valueSet: string, namespace = 'gpu-platform'): Rendering {
  const args = ['template', 'sluice', chartDir, '--namespace', namespace, ...HELM_VALUE_SETS[valueSet]!];
  const out = execFileSync(helmPath(), args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { name: `helm ${valueSet}`, objects: parse(out), namespace };
}

export function helmLint(): string {
  return execFileSync(helmPath(), ['lint', '--strict', chartDir], { encoding: 'utf8' });
}
