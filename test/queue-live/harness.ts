// sluice serve() against the stand-in apiserver, with the real Postgres and Redis: the
// queue manager as it runs in a cluster (informers, Lease, bull releases, JSON patches).
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve, type Running } from '../../server/run.js';
import type { QueueInput } from '../../store/queues.js';
import { Store } from '../../store/store.js';
import { StandInApiserver } from '../../bench/apiserver/standin.js';
import { gpuNode } from '../helpers/k8s.js';
import { DATABASE_URL, randomSchema, waitFor } from '../store/helpers.js';

export interface Live {
  api: StandInApiserver;
  running: Running;
  store: Store;
  schema: string;
  prefix: string;
  logs: Array<Record<string, unknown>>;
  /** A pod as the mutating webhook leaves it: labels, GPU request, the gate. */
  submit(name: string, o: SubmitOpts): V1Pod;
  gated(name: string, namespace?: string): boolean;
  bind(name: string, node: string, namespace?: string): void;
  finish(name: string, namespace?: string): void;
  close(): Promise<void>;
}

export interface SubmitOpts {
  queue: string;
  gpus: number;
  qos?: 'guaranteed' | 'best-effort';
  job?: string;
  gang?: number;
  user?: string;
  priority?: number;
  namespace?: string;
  model?: string;
}

export async function startLive(
  o: {
    nodes?: V1Node[];
    queues?: Record<string, QueueInput>;
    config?: Record<string, unknown>;
    api?: StandInApiserver;
    schema?: string;
    prefix?: string;
    podName?: string;
  } = {},
): Promise<Live> {
  const api = o.api ?? (await StandInApiserver.start());
  if (!o.api) for (const n of o.nodes ?? [gpuNode('g1', { gpus: 8 }), gpuNode('g2', { gpus: 8 })]) api.create('nodes', n);
  const schema = o.schema ?? randomSchema();
  const prefix = o.prefix ?? `t${randomBytes(5).toString('hex')}`;
  const store = new Store({ url: DATABASE_URL, schema, log: createLogger('silent') });
  await store.migrate();
  for (const [name, q] of Object.entries(o.queues ?? {})) await store.putQueue(name, q);
  if (o.podName)
    api.create('pods', {
      metadata: { name: o.podName, namespace: 'sluice-system', labels: { app: 'sluice' } },
      spec: { containers: [{ name: 'sluice', image: 'sluice' }] },
    });
  const config = loadConfig({
    env: {},
    base: {
      logLevel: 'debug',
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: DATABASE_URL, schema },
      api: { tokenReview: false, token: 'test-token' },
      queue: { redisPrefix: prefix, debounceMs: 5, retryPeriodSeconds: 1, leaseDurationSeconds: 3, renewDeadlineSeconds: 2, ...(o.config?.queue as object) },
      ...Object.fromEntries(Object.entries(o.config ?? {}).filter(([k]) => k !== 'queue')),
    },
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const running = await serve(config, { log: createLogger('debug', sink), kubeConfig: api.kubeConfig(), podName: o.podName, podNamespace: 'sluice-system' });
  await waitFor(() => running.queue?.current() !== null, 10000);
  const pod = (name: string, ns = 'team-a'): V1Pod | undefined => api.get<V1Pod>('pods', ns, name);
  return {
    api,
    running,
    store,
    schema,
    prefix,
    logs,
    submit(name, s) {
      const ns = s.namespace ?? 'team-a';
      const labels: Record<string, string> = {
        'sluice.io/queue': s.queue,
        'sluice.io/qos': s.qos ?? 'guaranteed',
        'sluice.io/job': s.job ?? `pod-${name}`,
        'sluice.io/user': s.user ?? 'alice',
      };
      if (s.gang) labels['sluice.io/gang-size'] = String(s.gang);
      return api.create<V1Pod>('pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: ns, labels, annotations: s.model ? { 'sluice.io/gpu-model': s.model } : {} },
        spec: {
          priority: s.priority ?? 0,
          schedulingGates: [{ name: 'sluice.io/queue' }],
          containers: [
            { name: 'main', image: 'x', resources: { requests: { 'nvidia.com/gpu': String(s.gpus) }, limits: { 'nvidia.com/gpu': String(s.gpus) } } },
          ],
        },
      } as V1Pod);
    },
    gated(name, ns = 'team-a') {
      return (pod(name, ns)?.spec?.schedulingGates ?? []).some((g) => g.name === 'sluice.io/queue');
    },
    bind(name, node, ns = 'team-a') {
      const p = pod(name, ns)!;
      api.update('pods', { ...p, spec: { ...p.spec!, nodeName: node }, status: { phase: 'Running' } });
    },
    finish(name, ns = 'team-a') {
      const p = pod(name, ns)!;
      api.update('pods', { ...p, status: { phase: 'Succeeded' } });
    },
    async close() {
      await running.close();
      if (!o.schema) await store.dropSchema().catch(() => undefined);
      await store.close();
      if (!o.api) await api.close();
    },
  };
}
