// The Store: owns the pg Pool and everything sluice keeps in Postgres - migrations, the
// cached queue directory (kept fresh by LISTEN/NOTIFY), the admission audit, preemption and
// failed-bind writers, the pruning of old records (retention), and queue CRUD for the admin API. Postgres being down never throws
// out of the admission path; startup keeps retrying migrations in the background
// (startInBackground).
import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { AuditWriter } from './audit-writer.js';
import { BindFailureWriter } from './bind-failures.js';
import { CachedQueueDirectory } from './cached-directory.js';
import { NotifyListener } from './listener.js';
import { PreemptionWriter } from './preemptions.js';
import { migrate, type MigrateResult } from './migrate.js';
import { Retention, type RetentionOptions } from './retention.js';
import type { Migration } from './migrations/index.js';
import { deleteQueue, getQueue, listQueues, putQueue, type QueueInput, type StoredQueue } from './queues.js';

export interface StoreOptions {
  url: string;
  schema: string;
  log: Logger;
  metrics?: Metrics;
  queueCacheSize?: number;
  missingTtlSeconds?: number;
  auditBufferSize?: number;
  /** Records of finished jobs, admission decisions, preemptions and failed binds are deleted this many days old (default 30: queue.historyDays; store/retention.ts). */
  historyDays?: number;
  /** Pruning rhythm (tests): between rounds, before the first, batch size, pause between batches. */
  retention?: Pick<RetentionOptions, 'intervalMs' | 'firstDelayMs' | 'batchSize' | 'pauseMs'>;
  /** Connect/query timeout for pooled connections; the webhook must answer well within 10 s. */
  timeoutMs?: number;
  /** application_name of every connection (default 'sluice'), to tell replicas apart in pg_stat_activity; the pruning connection's ends in ' retention'. */
  applicationName?: string;
  /** Longest wait between background migration attempts. */
  maxRetryMs?: number;
  /** How often to poll for another replica's migration lock. */
  migrationLockPollMs?: number;
  /** How often the LISTEN connection proves it is alive with SELECT 1 (default 15 s). */
  heartbeatMs?: number;
  /** How long that SELECT 1 may take before the connection counts as dead (default 5 s). */
  heartbeatTimeoutMs?: number;
  /** How often a SELECT 1 on the pool refreshes sluice_store_up (default 10 s; 0 = never). */
  probeMs?: number;
}

export class Store {
  readonly pool: pg.Pool;
  /** One connection for migrations only: no query timeout, since a migration or the wait for another replica's may be long. */
  private readonly migrationPool: pg.Pool;
  /** One connection for pruning old records, so its deletes never take a connection the webhooks need. */
  private readonly retentionPool: pg.Pool;
  private readonly closing = new AbortController();
  private readonly migrationLockPollMs: number | undefined;
  readonly queues: CachedQueueDirectory;
  readonly audit: AuditWriter;
  /** Preemption records and the victims' job states, written in the background. */
  readonly preemptions: PreemptionWriter;
  /** Failed binds (the console's Activity), written in the background. */
  readonly bindFailures: BindFailureWriter;
  /** Deletes records older than historyDays, in the background once migrated (startInBackground). */
  readonly retention: Retention;
  readonly schema: string;
  private readonly listener: NotifyListener;
  private readonly log: Logger;
  private readonly maxRetryMs: number;
  private migrated: MigrateResult | null = null;
  private migrating: Promise<MigrateResult> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private readonly probeMs: number;
  private readonly metrics: Metrics | undefined;
  private closed = false;

  constructor(opts: StoreOptions) {
    this.schema = opts.schema;
    this.log = opts.log;
    const timeout = opts.timeoutMs ?? 3000;
    const base: pg.ClientConfig = {
      connectionString: opts.url,
      application_name: opts.applicationName ?? 'sluice',
      // Every session sees only sluice's schema, so SQL stays unqualified.
      options: `-c search_path=${opts.schema}`,
      connectionTimeoutMillis: timeout,
      // TCP keepalive: the kernel notices a peer that vanished without FIN/RST (the LISTEN
      // connection also runs its own heartbeat, which does not depend on kernel timers).
      keepAlive: true,
    };
    this.pool = new pg.Pool({ ...base, max: 10, idleTimeoutMillis: 30000, query_timeout: timeout });
    // An idle pooled client losing its server emits here; without a handler Node would crash.
    this.pool.on('error', (err) => {
      opts.metrics?.storeUp.set(0);
      this.log.warn({ err: err.message }, `an idle Postgres connection failed (${err.message}); the pool reconnects on next use`);
    });
    this.migrationPool = new pg.Pool({ ...base, max: 1, idleTimeoutMillis: 1000, allowExitOnIdle: true });
    this.migrationPool.on('error', (err) => {
      this.log.warn({ err: err.message }, `the idle migration connection to Postgres failed (${err.message})`);
    });
    // A statement timeout bounds a batch Postgres cannot finish; a lock timeout keeps a
    // batch from queueing behind (and so ahead of everything after) a migration's lock.
    this.retentionPool = new pg.Pool({
      ...base,
      application_name: `${base.application_name} retention`,
      options: `${base.options} -c statement_timeout=60000 -c lock_timeout=2000`,
      max: 1,
      idleTimeoutMillis: 1000,
      allowExitOnIdle: true,
    });
    this.retentionPool.on('error', (err) => {
      this.log.warn({ err: err.message }, `the idle pruning connection to Postgres failed (${err.message})`);
    });
    this.retention = new Retention({
      pool: this.retentionPool,
      schema: opts.schema,
      log: opts.log,
      metrics: opts.metrics,
      days: opts.historyDays ?? 30,
      ...opts.retention,
    });
    this.migrationLockPollMs = opts.migrationLockPollMs;
    this.queues = new CachedQueueDirectory({
      fetch: (name) => getQueue(this.pool, name),
      log: opts.log,
      metrics: opts.metrics,
      maxEntries: opts.queueCacheSize ?? 10000,
      missingTtlMs: (opts.missingTtlSeconds ?? 5) * 1000,
    });
    this.audit = new AuditWriter({ pool: this.pool, log: opts.log, metrics: opts.metrics, maxBuffered: opts.auditBufferSize ?? 10000 });
    this.preemptions = new PreemptionWriter({ pool: this.pool, log: opts.log, maxBuffered: opts.auditBufferSize ?? 10000 });
    this.bindFailures = new BindFailureWriter({ pool: this.pool, log: opts.log, maxBuffered: opts.auditBufferSize ?? 10000 });
    this.listener = new NotifyListener({
      clientConfig: base,
      channel: `${opts.schema}.queue_changed`,
      log: opts.log,
      onNotify: (queue) => {
        this.queues.invalidate(queue);
        this.queueChanged(queue);
      },
      heartbeatMs: opts.heartbeatMs,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
      onConnected: () => {
        opts.metrics?.storeListenerConnected.set(1);
        this.queues.setListening(true);
        // Changes made while not listening were not announced: every queue may have changed.
        this.queueChanged('*');
      },
      onDisconnected: () => {
        opts.metrics?.storeListenerConnected.set(0);
        this.queues.setListening(false);
      },
    });
    this.maxRetryMs = opts.maxRetryMs ?? 30000;
    this.probeMs = opts.probeMs ?? 10000;
    this.metrics = opts.metrics;
  }

  /**
   * sluice_store_up from a cheap SELECT 1 every probeMs: without it the gauge changed only
   * on a queue cache miss, so it stayed 0 after Postgres recovered until the next new pod
   * (for ever on a quiet cluster), and an alert on it fired falsely.
   */
  private startProbe(): void {
    if (this.probeMs <= 0 || this.probeTimer || this.closed) return;
    const probe = (): void => {
      this.pool.query('SELECT 1').then(
        () => this.metrics?.storeUp.set(1),
        () => this.metrics?.storeUp.set(0),
      );
    };
    probe();
    this.probeTimer = setInterval(probe, this.probeMs);
    this.probeTimer.unref();
  }

  /**
   * Applies pending migrations (serialised across replicas by an advisory lock), on the
   * dedicated migration connection. `migrations` is for tests.
   */
  async migrate(migrations?: readonly Migration[]): Promise<MigrateResult> {
    if (this.migrating) return this.migrating;
    this.migrating = migrate(this.migrationPool, this.schema, migrations, {
      log: this.log,
      signal: this.closing.signal,
      lockPollMs: this.migrationLockPollMs,
    }).finally(() => {
      this.migrating = null;
    });
    const res = await this.migrating;
    this.migrated = res;
    return res;
  }

  /** Starts the LISTEN connection. The directory works without it, just without trusting its cache. */
  startListening(): void {
    this.listener.start();
    this.startProbe();
  }

  /**
   * For `sluice serve`: migrate now if Postgres answers, else log one line and keep
   * retrying with backoff; starts listening either way. Never throws.
   */
  startInBackground(): void {
    this.startListening();
    let delay = 1000;
    let failures = 0;
    const attempt = (): void => {
      if (this.closed) return;
      this.migrate().then(
        (res) => {
          this.log.info({ schema: this.schema, applied: res.applied, version: res.version }, 'Postgres store ready');
          this.queueChanged('*'); // whoever read queues before the tables existed reads again
          this.retention.start();
        },
        (e: unknown) => {
          if (this.closed) return;
          failures++;
          if (failures === 1) {
            this.log.error(
              { schema: this.schema, err: (e as Error).message },
              `Postgres store not ready (${(e as Error).message}); retrying migrations in the background; until then the admin API answers 503 and admission uses the queue cache policy`,
            );
          }
          this.retryTimer = setTimeout(attempt, delay);
          this.retryTimer.unref();
          delay = Math.min(delay * 2, this.maxRetryMs);
        },
      );
    };
    attempt();
  }

  private readonly queueListeners: Array<(queue: string) => void> = [];

  /** Calls `fn` with a queue's name when it or its limits change (any replica's write), or '*' when any may have. */
  onQueueChanged(fn: (queue: string) => void): void {
    this.queueListeners.push(fn);
  }

  private queueChanged(queue: string): void {
    for (const fn of this.queueListeners) fn(queue);
  }

  /** Null when migrated, else why the store cannot serve yet. */
  notReady(): string | null {
    return this.migrated ? null : `the Postgres store (schema ${this.schema}) has not been migrated yet; is Postgres reachable?`;
  }

  listQueues(): Promise<StoredQueue[]> {
    return listQueues(this.pool);
  }

  getQueue(name: string): Promise<StoredQueue | null> {
    return getQueue(this.pool, name);
  }

  /** Writes go through Postgres; the trigger's NOTIFY refreshes every replica's cache, this one at once. */
  async putQueue(name: string, input: QueueInput): Promise<{ created: boolean; queue: StoredQueue }> {
    const res = await putQueue(this.pool, name, input, this.log);
    this.queues.invalidate(name);
    this.queueChanged(name);
    return res;
  }

  async deleteQueue(name: string): Promise<void> {
    await deleteQueue(this.pool, name);
    this.queues.invalidate(name);
    this.queueChanged(name);
  }

  /** Drops the whole schema (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    await this.migrating?.catch(() => undefined);
    await this.retention.stop();
    await this.audit.close();
    await this.preemptions.close();
    await this.bindFailures.close();
    await this.listener.stop();
    await Promise.all([this.pool, this.migrationPool, this.retentionPool].map((p) => p.end().catch(() => undefined)));
  }
}
