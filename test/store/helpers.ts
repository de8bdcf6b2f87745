// Shared by the store tests: a Store on the real Postgres in a schema of its own.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type pg from 'pg';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { Store, type StoreOptions } from '../../store/store.js';

export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

export function randomSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

export function makeStore(over: Partial<StoreOptions> = {}): { store: Store; metrics: Metrics } {
  const metrics = new Metrics({ defaultMetrics: false });
  const store = new Store({ url: DATABASE_URL, schema: randomSchema(), log: createLogger('silent'), metrics, ...over });
  return { store, metrics };
}

/** makeStore, migrated, its schema dropped and its pool closed at the test's teardown. */
export async function migratedStore(t: { teardown(fn: () => unknown): void }, over: Partial<StoreOptions> = {}): Promise<{ store: Store; metrics: Metrics }> {
  const made = makeStore(over);
  t.teardown(async () => {
    await made.store.dropSchema();
    await made.store.close();
  });
  await made.store.migrate();
  return made;
}

/** Polls until check() is true or the time is up; returns how long it took, or -1. */
export async function waitFor(check: () => Promise<boolean> | boolean, withinMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < withinMs) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 10));
  }
  return (await check()) ? Date.now() - start : -1;
}

/**
 * A TCP relay in front of the real Postgres (or another service: `target`): stop() cuts
 * every connection and refuses new ones (a real outage as the client sees it), start()
 * brings it back on the same port.
 */
export class PgRelay {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<[Socket, Socket]>();
  port = 0;

  constructor(private readonly targetUrl: string = DATABASE_URL) {}

  async start(): Promise<void> {
    if (this.server) return;
    const target = new URL(this.targetUrl);
    const server = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.on('close', () => this.pairs.delete(pair));
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * A path gone silent (NAT idle timeout, partition): the connections open so far stay open
   * but nothing more flows in either direction, and no FIN or RST is sent. New connections
   * are relayed normally.
   */
  freeze(): void {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    this.pairs.clear();
  }

  url(): string {
    const u = new URL(this.targetUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }
}

export async function gaugeValue(g: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}

/** Pids of the backends whose application_name is `app` (tests give each store its own). */
export async function backendsOf(db: pg.Client, app: string, queryLike = '%'): Promise<number[]> {
  const res = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE $2 AND pid <> pg_backend_pid()', [
    app,
    queryLike,
  ]);
  return res.rows.map((r) => r.pid);
}
