// Applies the numbered migrations (store/migrations/) to sluice's schema. Idempotent: each
// applied id is recorded in schema_migrations. Replicas starting together serialise on a
// session advisory lock keyed by the schema name, so only the first migrates and the
// others find nothing left to do.
import type { Pool } from 'pg';
import { MIGRATIONS, type Migration } from './migrations/index.js';

export interface MigrateResult {
  /** Ids applied by this call (empty when the schema was already current). */
  applied: number[];
  /** Highest id now in the schema. */
  version: number;
}

export async function migrate(pool: Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  const client = await pool.connect();
  const lockKey = `sluice.migrate.${schema}`;
  let locked = false;
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
    locked = true;
    // Schema name is validated by the config pattern ^[a-z_][a-z0-9_]*$; quoting keeps it literal.
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`SET search_path TO "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ id: number }>('SELECT id FROM schema_migrations')).rows.map((r) => r.id));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
      if (done.has(m.id)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${m.id} (${m.name}) failed: ${(e as Error).message}; the schema is left at the previous version`, { cause: e });
      }
      applied.push(m.id);
    }
    const version = (await client.query<{ v: number | null }>('SELECT max(id) AS v FROM schema_migrations')).rows[0]?.v ?? 0;
    return { applied, version };
  } catch (e) {
    broken = e as Error;
    throw e;
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
    // Reset search_path so the pooled connection keeps its configured one.
    await client.query('RESET search_path').catch(() => undefined);
    // A failed connection is discarded rather than returned to the pool.
    client.release(broken);
  }
}
