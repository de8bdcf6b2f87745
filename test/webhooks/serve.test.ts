// The webhooks as `sluice serve` wires them: snapshot mode with Namespace objects in the
// file (their labels put team-a in scope), HTTPS from `sluice certs generate` files, the
// real Store; plus the snapshot parser keeping Namespaces.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runGenerate } from '../../certs/cli.js';
import { parseSnapshot } from '../../cluster/snapshot.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve } from '../../server/run.js';
import { fixture } from '../helpers/k8s.js';
import { DATABASE_URL, decodePatch, loadReview } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-serve-wh-'));
const cluster = fixture<{ items: unknown[] }>('cluster-state/before-preempt-1.json');
cluster.items.push({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: 'team-a', labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': 'research' } },
});
writeFileSync(join(dir, 'snapshot.json'), JSON.stringify(cluster));

t.test('parseSnapshot keeps Namespaces', async (t) => {
  const snap = parseSnapshot(cluster);
  t.equal(snap.namespaces.length, 1);
  t.ok(snap.nodes.length > 0 && snap.pods.length > 0);
  t.same(parseSnapshot({ nodes: [], pods: [] }).namespaces, [], '{nodes, pods} without namespaces');
});

t.test('sluice serve answers the webhooks over HTTPS with namespace labels from the snapshot', async (t) => {
  const gen = runGenerate({ out: dir, service: 'sluice', namespace: 'sluice-system', dns: [], ips: ['127.0.0.1'], days: 2, caDays: 10 });
  const schema = `t_wh_${process.pid}`;
  const config = loadConfig({
    env: {},
    base: {
      clusterSnapshot: join(dir, 'snapshot.json'),
      https: { host: '127.0.0.1', port: 0, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: DATABASE_URL, schema },
      webhooks: { queueing: true }, // gates are asserted below
    },
  });
  const running = await serve(config, { log: createLogger('silent') });
  const agent = new Agent({ ca: Buffer.from(gen.caBundle, 'base64'), keepAlive: false });
  t.teardown(async () => {
    await running.close();
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });
  t.match(running.apiUrl, /^https:\/\/127\.0\.0\.1:\d+$/, 'HTTPS listener');
  const post = (path: string, body: unknown): Promise<any> =>
    new Promise((resolve, reject) => {
      const req = request(running.apiUrl + path, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  // dry-run-gpu has no sluice.io/queue label: only the namespace label puts it in scope.
  const res = await post('/webhooks/mutate', loadReview('dry-run-pod.json'));
  const ops = decodePatch(res.response);
  t.ok(
    ops.some((o) => o.path === '/metadata/labels/sluice.io~1queue' && o.value === 'research'),
    "queue from the namespace's default-queue label",
  );
  t.ok(
    ops.some((o) => o.path === '/spec/schedulingGates'),
    'gated',
  );
  // The store migrates in the background; until then lookups are 'unavailable' (admitted with a warning).
  let v = await post('/webhooks/validate', loadReview('gpu-pod-validate.json'));
  for (let i = 0; i < 100 && v.response.warnings; i++) {
    await new Promise((r) => setTimeout(r, 50));
    v = await post('/webhooks/validate', loadReview('gpu-pod-validate.json'));
  }
  t.match(v.response, { allowed: false, status: { code: 404, message: /^queue team-a does not exist/ } }, 'validated against the real store');
});
