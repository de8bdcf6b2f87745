// Starts the real sluice server (serve(), as `sluice serve` does) on ephemeral ports,
// serving a cluster snapshot written to a temp file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../observability/logger.js';
import { serve, type Running } from '../../server/run.js';

export interface TestServer {
  running: Running;
  api: string;
  ops: string;
  /** Log lines (parsed JSON) the server wrote. */
  logs: Array<Record<string, unknown>>;
  post<T = unknown>(path: string, body: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export async function startServer(snapshot: { nodes: V1Node[]; pods: V1Pod[] }, base: Record<string, unknown> = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const file = join(dir, 'snapshot.json');
  writeFileSync(file, JSON.stringify(snapshot));
  const config = loadConfig({
    env: {},
    base: {
      clusterSnapshot: file,
      logLevel: 'debug',
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: '' }, // the extender needs no Postgres; store tests bring their own
      ...base,
    },
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const running = await serve(config, { log: createLogger(config.logLevel, sink) });
  return {
    running,
    api: running.apiUrl,
    ops: running.opsUrl,
    logs,
    async post<T>(path: string, body: unknown) {
      const res = await fetch(running.apiUrl + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
    },
    close: () => running.close(),
  };
}
