// Applies the numbered migrations (store/migrations/) to sluice's schema. Idempotent: each
// applied id is recorded in schema_migrations. Replicas starting together serialise on a
// session advisory lock keyed by the schema name, so only the first migrates and the
// others find nothing left to do.
//
// The pool passed in must set search_path to the schema (the Store's pools do, through the
// startup options) and should have no query timeout: a migration may take as long as it
// takes. The Store gives it a dedicated one-connection pool for that reason. Waiting for
// another replica's lock polls pg_try_advisory_lock, so the wait can be abandoned (signal)
// and is bounded (lockWaitMs) instead of blocking inside one query.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../observability/logger.js';
import { transaction, withClient } from './connection.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

export interface MigrateResult {
  /** Ids applied by this call (empty when the schema was already current). */
  applied: number[];
  /** Highest id now in the schema. */
  version: number;
}

export interface MigrateOptions {
  log?: Logger;
  /** Abandons a wait for the lock (the Store aborts it on close()). */
  signal?: AbortSignal;
  /** How often to try the lock while another replica holds it. */
  lockPollMs?: number;
  /** Longest wait for the lock before giving up (the background retry tries again later). */
  lockWaitMs?: number;
}

export async function migrate(pool: Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const lockKey = `sluice.migrate.${schema}`;
  return withClient(pool, opts.log, async (client) => {
    await waitForLock(client, schema, lockKey, opts);
    try {
      // Schema name is validated by the config pattern ^[a-z_][a-z0-9_]*$; quoting keeps it literal.
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Set((await client.query<{ id: number }>('SELECT id FROM schema_migrations')).rows.map((r) => r.id));
      const applied: number[] = [];
      for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
        if (done.has(m.id)) continue;
        try {
          await transaction(client, async () => {
            await client.query(m.sql);
            await client.query('INSERT INTO schema_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
          });
        } catch (e) {
          throw new Error(`migration ${m.id} (${m.name}) failed: ${(e as Error).message}; the schema is left at the previous version`, { cause: e });
        }
        applied.push(m.id);
      }
      const version = (await client.query<{ v: number | null }>('SELECT max(id) AS v FROM schema_migrations')).rows[0]?.v ?? 0;
      return { applied, version };
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
    }
  });
}

async function waitForLock(client: PoolClient, schema: string, lockKey: string, opts: MigrateOptions): Promise<void> {
  const pollMs = opts.lockPollMs ?? 250;
  const started = Date.now();
  const deadline = started + (opts.lockWaitMs ?? 10 * 60_000);
  for (let attempt = 0; ; attempt++) {
    if (opts.signal?.aborted) throw new Error(`store closed while waiting for the migration lock of schema ${schema}`);
    const res = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [lockKey]);
    if (res.rows[0]?.ok) {
      if (attempt > 0) opts.log?.info({ schema, waitedMs: Date.now() - started }, 'migration lock acquired');
      return;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `another replica has been migrating schema ${schema} for ${Math.round((Date.now() - started) / 1000)} s (advisory lock ${lockKey}); giving up for now`,
      );
    }
    if (attempt === 0) opts.log?.info({ schema }, 'another replica is migrating the schema; waiting for it to finish');
    try {
      await sleep(pollMs, undefined, { signal: opts.signal });
    } catch {
      throw new Error(`store closed while waiting for the migration lock of schema ${schema}`);
    }
  }
}
