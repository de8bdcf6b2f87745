// Borrowing a pooled connection safely. While a client is checked out, pg-pool removes its
// own 'error' listener, so a backend terminated under us (failover, pg_terminate_backend,
// a cut network) would emit 'error' with nobody listening and Node would exit. withClient
// listens for the whole borrow, returns the client only when it is known to be healthy,
// and discards it otherwise.
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

export async function withClient<T>(pool: pg.Pool, log: Logger | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (err: Error): void => {
    lost ??= err;
    log?.warn({ err: err.message }, `a Postgres connection in use failed (${err.message}); the request fails and the connection is discarded`);
  };
  client.on('error', onError);
  let failure: unknown;
  try {
    return await fn(client);
  } catch (e) {
    failure = e;
    // The server's own error message is the clearer one; else say the connection went away.
    throw lost && !(e instanceof pg.DatabaseError) ? lost : e;
  } finally {
    client.removeListener('error', onError);
    // Back to the pool only when in sync with the server: success, or an error the server
    // reported (the transaction helper has rolled back) or a refusal decided in code.
    const healthy = !lost && (failure === undefined || failure instanceof pg.DatabaseError || isRefusal(failure));
    client.release(healthy ? undefined : (lost ?? (failure instanceof Error ? failure : true)));
  }
}

/** BEGIN, fn, COMMIT; ROLLBACK and rethrow when fn fails. */
export async function transaction<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const res = await fn();
    await client.query('COMMIT');
    return res;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** An error a request caused (it carries an HTTP status below 500), not a failing connection. */
function isRefusal(e: unknown): boolean {
  const code = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' && code < 500;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
// SQLSTATE classes meaning "the database is unavailable or overloaded, retry": connection
// exception, transaction rollback (serialization, deadlock), insufficient resources,
// operator intervention (shutdown, cancel, statement timeout), system error.
const UNAVAILABLE_CLASSES = new Set(['08', '40', '53', '57', '58']);
const PG_CONNECTION_MESSAGES =
  /^(Connection terminated|Query read timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end)/;

/**
 * True when an error means Postgres is unreachable or failing (worth a 503 and a retry),
 * false for anything else (a bug, worth a 500). Follows `cause` chains.
 */
export function isStoreUnavailable(e: unknown): boolean {
  for (let err = e, depth = 0; err instanceof Error && depth < 5; err = err.cause, depth++) {
    const code = (err as { code?: unknown }).code;
    if (err instanceof pg.DatabaseError) return typeof code === 'string' && UNAVAILABLE_CLASSES.has(code.slice(0, 2));
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (PG_CONNECTION_MESSAGES.test(err.message)) return true;
    if (err instanceof AggregateError && err.errors.some((x) => isStoreUnavailable(x))) return true;
  }
  return false;
}
