// Queue definitions in Postgres: the SQL behind the admin API's queue CRUD and the
// directory's cache misses. Every write fires the notify trigger (migration 001).
import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../observability/logger.js';
import { transaction, withClient } from './connection.js';
import type { QueueLimit, QueueSpec } from './queue-directory.js';

export const DEFAULT_QUEUE = 'default';

/** A request the store refuses; `statusCode` is the HTTP code the API answers with. */
export class QueueError extends Error {
  override name = 'QueueError';
  constructor(
    readonly statusCode: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

interface QueueRow {
  name: string;
  parent: string | null;
  cohort: string | null;
  open: boolean;
  weight: number;
  max_duration_seconds: number | null;
  created_at: Date;
  updated_at: Date;
  limits: Array<{ resource: string; model: string; guaranteed: number; best_effort_cap: number; per_job_max: number; per_user_max: number }> | null;
}

export interface StoredQueue extends QueueSpec {
  createdAt: string;
  updatedAt: string;
}

const SELECT_QUEUES = `
  SELECT q.name, q.parent, q.cohort, q.open, q.weight, q.max_duration_seconds, q.created_at, q.updated_at,
         (SELECT json_agg(json_build_object('resource', l.resource, 'model', l.model, 'guaranteed', l.guaranteed,
                 'best_effort_cap', l.best_effort_cap, 'per_job_max', l.per_job_max, 'per_user_max', l.per_user_max) ORDER BY l.resource, l.model)
            FROM queue_limits l WHERE l.queue = q.name) AS limits
    FROM queues q`;

function fromRow(r: QueueRow): StoredQueue {
  return {
    name: r.name,
    parent: r.parent,
    cohort: r.cohort,
    open: r.open,
    weight: Number(r.weight),
    maxDurationSeconds: r.max_duration_seconds,
    limits: (r.limits ?? []).map((l) => ({
      resource: l.resource,
      model: l.model,
      guaranteed: l.guaranteed,
      bestEffortCap: l.best_effort_cap,
      perJobMax: l.per_job_max,
      perUserMax: l.per_user_max,
    })),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

export async function listQueues(pool: Pool): Promise<StoredQueue[]> {
  const res = await pool.query<QueueRow>(`${SELECT_QUEUES} ORDER BY q.name`);
  return res.rows.map(fromRow);
}

export async function getQueue(db: Pool | PoolClient, name: string): Promise<StoredQueue | null> {
  const res = await db.query<QueueRow>(`${SELECT_QUEUES} WHERE q.name = $1`, [name]);
  const row = res.rows[0];
  return row ? fromRow(row) : null;
}

/** What a PUT carries: everything but the name, which comes from the URL. */
export interface QueueInput {
  parent?: string | null;
  cohort?: string | null;
  open?: boolean;
  weight?: number;
  limits?: QueueLimit[];
  maxDurationSeconds?: number | null;
}

/** Creates or replaces a queue and all its limits in one transaction. */
export async function putQueue(pool: Pool, name: string, input: QueueInput, log?: Logger): Promise<{ created: boolean; queue: StoredQueue }> {
  const parent = input.parent ?? null;
  const limits = input.limits ?? [];
  const seen = new Set<string>();
  for (const l of limits) {
    const key = `${l.resource}|${l.model}`;
    if (seen.has(key)) {
      throw new QueueError(400, `queue ${name} lists limits for ${l.resource} model "${l.model}" twice; give one row per resource and model`);
    }
    seen.add(key);
  }
  if (parent === name) throw new QueueError(400, `queue ${name} cannot be its own parent; set parent to another queue or null`);

  try {
    return await withClient(pool, log, (client) =>
      transaction(client, async () => {
        // Queue writes are rare: serialise them so two concurrent PUTs cannot close a cycle.
        await client.query("SELECT pg_advisory_xact_lock(hashtext('sluice.queues.' || current_schema()))");
        if (parent !== null) {
          const chain = await client.query<{ name: string }>(
            `WITH RECURSIVE up(name, parent) AS (
               SELECT name, parent FROM queues WHERE name = $1
               UNION SELECT q.name, q.parent FROM queues q JOIN up ON q.name = up.parent)
             SELECT name FROM up`,
            [parent],
          );
          if (chain.rows.length === 0) throw new QueueError(400, `parent queue ${parent} does not exist; create it first or set parent to null`);
          if (chain.rows.some((r) => r.name === name)) {
            throw new QueueError(409, `making ${parent} the parent of ${name} would create a cycle; ${parent} already descends from ${name}`);
          }
        }
        const up = await client.query<{ created: boolean }>(
          `INSERT INTO queues (name, parent, cohort, open, weight, max_duration_seconds) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (name) DO UPDATE SET parent = EXCLUDED.parent, cohort = EXCLUDED.cohort, open = EXCLUDED.open,
             weight = EXCLUDED.weight, max_duration_seconds = EXCLUDED.max_duration_seconds, updated_at = now()
           RETURNING (xmax = 0) AS created`,
          [name, parent, input.cohort ?? null, input.open ?? true, input.weight ?? 1, input.maxDurationSeconds ?? null],
        );
        await client.query('DELETE FROM queue_limits WHERE queue = $1', [name]);
        if (limits.length > 0) {
          await client.query(
            `INSERT INTO queue_limits (queue, resource, model, guaranteed, best_effort_cap, per_job_max, per_user_max)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::int[])`,
            [
              name,
              limits.map((l) => l.resource),
              limits.map((l) => l.model),
              limits.map((l) => l.guaranteed),
              limits.map((l) => l.bestEffortCap),
              limits.map((l) => l.perJobMax),
              limits.map((l) => l.perUserMax),
            ],
          );
        }
        const queue = await getQueue(client, name);
        return { created: up.rows[0]?.created === true, queue: queue! };
      }),
    );
  } catch (e) {
    if (isPgError(e) && e.code === '23503') {
      throw new QueueError(409, `queue ${name} changed concurrently (its parent was deleted); retry the request`);
    }
    throw e;
  }
}

/** Deletes a queue (and its limits). Refuses `default` and queues that still have children. */
export async function deleteQueue(pool: Pool, name: string): Promise<void> {
  if (name === DEFAULT_QUEUE) {
    throw new QueueError(409, `queue ${DEFAULT_QUEUE} cannot be deleted: pods without a queue label land in it; change its limits instead`);
  }
  const children = await pool.query<{ name: string }>('SELECT name FROM queues WHERE parent = $1 ORDER BY name LIMIT 5', [name]);
  if (children.rows.length > 0) {
    const names = children.rows.map((r) => r.name).join(', ');
    throw new QueueError(409, `queue ${name} still has child queues (${names}); delete or re-parent them first`);
  }
  try {
    const res = await pool.query('DELETE FROM queues WHERE name = $1', [name]);
    if (res.rowCount === 0) throw new QueueError(404, `queue ${name} does not exist`);
  } catch (e) {
    if (isPgError(e) && e.code === '23503') {
      throw new QueueError(409, `queue ${name} gained a child queue while being deleted; delete or re-parent it first`);
    }
    throw e;
  }
}

export function isPgError(e: unknown): e is Error & { code: string } {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string';
}
