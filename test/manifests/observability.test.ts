// The Grafana dashboard and the alert rules use only metrics sluice exports, with labels
// those metrics have: names and label names come from a live Metrics registry
// (observability/metrics.ts), histograms counted with their _bucket/_sum/_count series.
// The chart ships the same dashboard and rules as manifests/ (compared here).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import { Metrics } from '../../observability/metrics.js';
import { repoRoot } from '../webhooks/helpers.js';
import { validateObject, type K8sObject } from './k8s-schema.js';

const metrics = new Metrics();
/** series name -> label names it can carry */
const exported = new Map<string, Set<string>>();
for (const m of await metrics.registry.getMetricsAsJSON()) {
  const labels = new Set<string>((metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? []);
  // Prometheus adds these to every series it scrapes.
  for (const l of ['job', 'instance', 'pod', 'namespace', 'service', 'container', 'endpoint']) labels.add(l);
  if (String(m.type) === 'histogram') {
    exported.set(`${m.name}_bucket`, new Set([...labels, 'le']));
    exported.set(`${m.name}_sum`, labels);
    exported.set(`${m.name}_count`, labels);
  } else exported.set(m.name, labels);
}

/** Each sluice_* series an expression reads, with the label names of its matchers. */
function seriesIn(expr: string): Array<{ name: string; labels: string[] }> {
  return [...expr.matchAll(/\b(sluice_[a-z0-9_]+)(\{([^}]*)\})?/g)].map((m) => ({
    name: m[1]!,
    labels: [...(m[3] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/g)].map((x) => x[1]!),
  }));
}

type Test = Pick<typeof t, 'ok'>;

function check(t: Test, where: string, expr: string): void {
  const series = seriesIn(expr);
  t.ok(series.length > 0, `${where}: reads sluice metrics`);
  for (const s of series) {
    const labels = exported.get(s.name);
    t.ok(labels, `${where}: ${s.name} is exported by sluice`);
    for (const l of s.labels) t.ok(labels?.has(l), `${where}: ${s.name} has the label ${l}`);
  }
  for (const by of expr.matchAll(/\bby \(([^)]*)\)/g)) {
    const names = by[1]!
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    // A `by` label must exist on at least one series of the expression.
    for (const n of names)
      t.ok(
        series.some((s) => exported.get(s.name)?.has(n)),
        `${where}: grouping label ${n} exists`,
      );
  }
}

const dashboardText = readFileSync(join(repoRoot, 'manifests/grafana/sluice.json'), 'utf8');
const dashboard = JSON.parse(dashboardText) as { panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }> };
const rule = yaml.load(readFileSync(join(repoRoot, 'manifests/prometheus/sluice-rules.yaml'), 'utf8')) as K8sObject & {
  spec: { groups: Array<{ rules: Array<{ alert: string; expr: string; annotations: { summary: string; description: string } }> }> };
};

t.test('every dashboard query reads metrics sluice exports', async (t) => {
  const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => ({ title: p.title, expr: x.expr })));
  t.ok(targets.length >= 20, `${targets.length} queries`);
  for (const x of targets) check(t, `panel "${x.title}"`, x.expr);
  const covered = new Set(targets.flatMap((x) => seriesIn(x.expr).map((s) => s.name)));
  for (const want of [
    'sluice_extender_duration_seconds_bucket',
    'sluice_filter_rejections_total',
    'sluice_gpus_by_model',
    'sluice_queue_gpus',
    'sluice_pending_jobs',
    'sluice_admission_wait_time_seconds_bucket',
    'sluice_gate_removal_seconds_bucket',
    'sluice_store_up',
    'sluice_release_actions_total',
  ]) {
    t.ok(covered.has(want), `the dashboard shows ${want}`);
  }
});

t.test('every alert reads metrics sluice exports and tells what to do', async (t) => {
  t.same(validateObject(rule), [], 'the PrometheusRule is valid');
  const rules = rule.spec.groups.flatMap((g) => g.rules);
  for (const r of rules) {
    check(t, `alert ${r.alert}`, r.expr);
    t.ok(r.annotations.summary && r.annotations.description.length > 60, `${r.alert}: a summary and a description of what to do`);
  }
  const names = rules.map((r) => r.alert);
  for (const want of ['SluiceExtenderErrors', 'SluiceWebhookDenialsSpike', 'SluiceGPUsUnhealthy', 'SluiceQueueStuck']) t.ok(names.includes(want), want);
});

t.test('the check catches a metric sluice does not export', async (t) => {
  t.notOk(exported.has('sluice_extender_latency_seconds_bucket'));
  t.ok(exported.get('sluice_extender_duration_seconds_bucket')?.has('le'));
  t.notOk(exported.get('sluice_binds_total')?.has('verb'), 'labels are per metric');
});

t.test('the chart ships the same dashboard and rules', async (t) => {
  t.equal(
    readFileSync(join(repoRoot, 'charts/sluice/files/dashboard.json'), 'utf8'),
    dashboardText,
    'dashboard.json is a copy of manifests/grafana/sluice.json',
  );
  t.same(
    yaml.load(readFileSync(join(repoRoot, 'charts/sluice/files/alerts.yaml'), 'utf8')),
    rule.spec,
    'alerts.yaml is the spec of manifests/prometheus/sluice-rules.yaml',
  );
});
