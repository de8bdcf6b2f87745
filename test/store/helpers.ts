// Shared by the store tests: a Store on the real Postgres in a schema of its own.
import { randomBytes } from 'node:crypto';
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

/** Polls until check() is true or the time is up; returns how long it took, or -1. */
export async function waitFor(check: () => Promise<boolean> | boolean, withinMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < withinMs) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 10));
  }
  return (await check()) ? Date.now() - start : -1;
}
