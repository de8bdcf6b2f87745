// Shared by the webhook tests: a real sluice api listener (HTTPS with certificates made by
// certs/, a client trusting the generated CA), a hand-made cluster, and a real Store on
// Postgres in a schema of its own.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Namespace, V1Node } from '@kubernetes/client-node';
import { runGenerate } from '../../certs/cli.js';
import { ClusterCache } from '../../cluster/cache.js';
import { NamespaceStore } from '../../cluster/namespaces.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { SnapshotBinder } from '../../scheduler/binder.js';
import { buildServers, type Servers } from '../../server/app.js';
import { Store } from '../../store/store.js';
import type { PatchOp } from '../../webhooks/admission.js';
import { sharedPath } from '../helpers/shared.js';

export { repoRoot } from '../helpers/shared.js';
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const SLUICE_SA = 'system:serviceaccount:sluice-system:sluice';

export interface Review {
  apiVersion: string;
  kind: string;
  request: Record<string, unknown> & { uid: string; object: Record<string, any> | null; oldObject: Record<string, any> | null };
}

export function fixtureNames(): string[] {
  return readdirSync(sharedPath('fixtures/admission'))
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export function loadReview(file: string): Review {
  return JSON.parse(readFileSync(sharedPath('fixtures/admission', file), 'utf8')) as Review;
}

export function node(name: string, gpus: number, product: string, labels: Record<string, string> = {}): V1Node {
  const alloc: Record<string, string> = { cpu: '64', memory: '256Gi', pods: '110' };
  if (gpus > 0) alloc['nvidia.com/gpu'] = String(gpus);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(gpus > 0 ? { 'nvidia.com/gpu.product': product } : {}), ...labels } },
    spec: {},
    status: { allocatable: alloc, capacity: alloc, conditions: [{ type: 'Ready', status: 'True' }] },
  } as V1Node;
}

/** The fixtures' cluster: two 8-GPU A100 nodes (as captured) plus a 4-GPU H100 node and a CPU node. */
export function testCluster(): { cache: ClusterCache; namespaces: NamespaceStore } {
  const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 100 });
  cache.replaceAll(
    [
      node('gpu-node-1', 8, 'NVIDIA-A100-SXM4-80GB'),
      node('gpu-node-2', 8, 'NVIDIA-A100-SXM4-80GB'),
      node('gpu-node-3', 4, 'NVIDIA-H100-80GB-HBM3', { 'sluice.io/pool': 'notebooks' }),
      node('cpu-node-1', 0, ''),
    ],
    [],
  );
  const namespaces = new NamespaceStore();
  const ns = (name: string, labels: Record<string, string>): V1Namespace => ({ metadata: { name, labels } });
  namespaces.replaceAll([
    ns('team-a', { 'sluice.io/managed': 'true', 'sluice.io/default-queue': 'team-a' }),
    ns('team-b', { 'sluice.io/managed': 'true' }),
    ns('plain', {}),
  ]);
  return { cache, namespaces };
}

export interface Running {
  url: string;
  servers: Servers;
  metrics: Metrics;
  store: Store;
  ca: string;
  /** The cluster cache the listener decides from (testCluster()). */
  cache: ClusterCache;
  post(path: string, body: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Postgres URL for the store; default the real one. */
  storeUrl?: string;
  webhooks?: Record<string, unknown>;
  migrate?: boolean;
  /** The admin API section of the config (e.g. a bearer token). */
  api?: Record<string, unknown>;
}

/** sluice's api listener over HTTPS on 127.0.0.1:0 with a real Store in a random schema. */
export async function startSluice(o: StartOptions = {}): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-wh-'));
  runGenerate({ out: dir, service: 'sluice', namespace: 'sluice-system', dns: [], ips: ['127.0.0.1'], days: 2, caDays: 10 });
  const config = loadConfig({
    env: {},
    base: {
      https: { host: '127.0.0.1', port: 0, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
      http: { host: '127.0.0.1', port: 0 },
      logLevel: 'silent',
      // Queueing on: these tests assert the scheduling gate (off by default until a queue manager runs).
      webhooks: { queueing: true, jobTypes: { notebook: { 'sluice.io/pool': 'notebooks' } }, ...(o.webhooks ?? {}) },
      ...(o.api ? { api: o.api } : {}),
    },
  });
  const log = createLogger('silent');
  const metrics = new Metrics({ defaultMetrics: false });
  const { cache, namespaces } = testCluster();
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const store = new Store({ url: o.storeUrl ?? DATABASE_URL, schema, log, metrics, timeoutMs: 1000 });
  if (o.migrate !== false) await store.migrate();
  const servers = await buildServers({
    config,
    log,
    metrics,
    cache,
    binder: new SnapshotBinder(cache),
    notReady: () => null,
    namespaces,
    queues: store.queues,
    audit: store.audit,
    store,
  });
  const url = await servers.api.listen({ host: '127.0.0.1', port: 0 });
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 8 });
  const post = (path: string, body: unknown): Promise<{ status: number; body: any }> =>
    new Promise((resolvePost, reject) => {
      const payload = typeof body === 'string' ? body : JSON.stringify(body);
      const req = request(url + path, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* leave as text */
          }
          resolvePost({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  return {
    url,
    servers,
    metrics,
    store,
    ca,
    cache,
    post,
    async close() {
      agent.destroy();
      await servers.api.close();
      await store.audit.flush().catch(() => 0);
      await store.dropSchema().catch(() => undefined);
      await store.close();
    },
  };
}

export function decodePatch(response: { patch?: string; patchType?: string }): PatchOp[] {
  if (response.patch === undefined) return [];
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as PatchOp[];
}

const unescape = (t: string): string => t.replace(/~1/g, '/').replace(/~0/g, '~');

/** A small RFC 6902 apply (add, remove, replace, test) for checking patches. */
export function applyPatch<T>(doc: T, ops: readonly PatchOp[] | ReadonlyArray<{ op: string; path: string; value?: unknown }>): T {
  const root = structuredClone(doc) as unknown;
  for (const op of ops) {
    const tokens = op.path.split('/').slice(1).map(unescape);
    const last = tokens.pop();
    if (last === undefined) throw new Error(`patch path "${op.path}" has no target`);
    let parent: any = root;
    for (const t of tokens) {
      parent = Array.isArray(parent) ? parent[Number(t)] : parent?.[t];
      if (parent === undefined || parent === null) throw new Error(`patch path ${op.path}: ${t} does not exist`);
    }
    const value = structuredClone(op.value);
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (op.op === 'add') parent.splice(i, 0, value);
      else if (op.op === 'remove') parent.splice(i, 1);
      else if (op.op === 'replace') parent[i] = value;
      else if (op.op === 'test' && JSON.stringify(parent[i]) !== JSON.stringify(value)) throw new Error(`test failed at ${op.path}`);
    } else {
      if ((op.op === 'replace' || op.op === 'remove') && !(last in parent)) throw new Error(`patch path ${op.path} does not exist`);
      if (op.op === 'add' || op.op === 'replace') parent[last] = value;
      else if (op.op === 'remove') delete parent[last];
      else if (op.op === 'test' && JSON.stringify(parent[last]) !== JSON.stringify(value)) throw new Error(`test failed at ${op.path}`);
    }
  }
  return root as T;
}

export const QUEUE_TEAM_A = {
  limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 16, bestEffortCap: 24, perJobMax: 8, perUserMax: 0 }],
};
