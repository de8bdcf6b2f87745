// npm run bench:retention - what pruning old records costs on a big table, and what it
// does to the queries the webhooks make meanwhile.
//
// 1. Fills admission_decisions with BENCH_RETENTION_ROWS decisions spread over 60 days (in
//    time order, as written) and jobs with as many records (9 in 10 finished, their
//    finish spread over 60 days); about half of each is older than 30 days.
// 2. EXPLAIN (ANALYZE, BUFFERS) of one batch of the delete store/retention.ts runs, and of
//    the single unbounded DELETE it replaced, each in a transaction rolled back.
// 3. A real round (Store.retention.pruneNow, default batch size and pause), timed, with the
//    time of each batch (sluice_store_prune_batch_seconds) and, meanwhile, the latency of
//    an uncached queue read and a one-row audit insert on the request pool, against the
//    same loop with no pruning.
// Prints Markdown; writes bench/results/retention-<date>.json.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseOrExit } from '../../cli/flags.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { batchDeleteSql, RETENTION_RULES } from '../../store/retention.js';
import { Store } from '../../store/store.js';

parseOrExit(
  process.argv.slice(2),
  {
    usage: 'npm run bench:retention   (node dist/bench/store/retention.js)',
    about: `What pruning old records costs: EXPLAIN ANALYZE of one batched delete and of one unbounded DELETE
on a big table, a real pruning round timed, and the latency of the webhooks' queries meanwhile.
Writes bench/results/retention-<date>.json and prints Markdown.`,
    flags: [],
    footer: `environment:
  BENCH_RETENTION_ROWS   rows in admission_decisions and in jobs (default: 1000000)
  DATABASE_URL           Postgres (default: postgres://postgres@127.0.0.1:5432/test)`,
  },
  'bench:retention',
);

const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const ROWS = Number(process.env.BENCH_RETENTION_ROWS || 1_000_000);
const DAYS = 30;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};
const ms = (x: number): number => Math.round(x * 100) / 100;

async function fill(db: pg.Client): Promise<void> {
  await db.query(
    `INSERT INTO admission_decisions (decided_at, request_uid, operation, namespace, pod, username, allowed, code, reason, dry_run)
    SELECT now() - interval '60 days' + (i * interval '60 days' / $1), md5(i::text), 'CREATE', 'team-' || (i % 50), 'pod-' || i, 'alice',
           i % 10 <> 0, CASE WHEN i % 10 = 0 THEN 403 ELSE 200 END, 'queue q: fits; gated with sluice.io/queue', false
      FROM generate_series(1, $1) i`,
    [ROWS],
  );
  await db.query(
    `INSERT INTO jobs (namespace, name, queue, qos, username, state, submitted_at, released_at, finished_at, kind)
    SELECT 'team-' || (i % 50), 'job-' || i, 'q' || (i % 20), 'guaranteed', 'u' || (i % 200),
           CASE WHEN i % 10 = 0 THEN 'running' ELSE 'finished' END,
           now() - interval '60 days' + (i * interval '60 days' / $1) - interval '2 hours',
           now() - interval '60 days' + (i * interval '60 days' / $1) - interval '1 hour',
           CASE WHEN i % 10 = 0 THEN NULL ELSE now() - interval '60 days' + (i * interval '60 days' / $1) END, 'Job'
      FROM generate_series(1, $1) i`,
    [ROWS],
  );
  await db.query('VACUUM ANALYZE admission_decisions');
  await db.query('VACUUM ANALYZE jobs');
}

/** EXPLAIN ANALYZE of `sql`, rolled back: the plan and the time it took. */
async function explain(db: pg.Client, sql: string, params: unknown[]): Promise<{ ms: number; plan: string }> {
  await db.query('BEGIN');
  try {
    const res = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
    const plan = res.rows.map((r) => r['QUERY PLAN']).join('\n');
    return { ms: Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1] ?? NaN), plan };
  } finally {
    await db.query('ROLLBACK');
  }
}

/** Latency of the webhooks' kind of query on the request pool, until `done()`. */
async function hotPath(
  store: Store,
  done: () => boolean,
  minRounds: number,
): Promise<{ rounds: number; readP50: number; readP99: number; readMax: number; insertP50: number; insertP99: number; insertMax: number }> {
  const reads: number[] = [];
  const inserts: number[] = [];
  for (let i = 0; i < minRounds || !done(); i++) {
    let t0 = performance.now();
    await store.getQueue('default');
    reads.push(performance.now() - t0);
    t0 = performance.now();
    await store.pool.query(
      `INSERT INTO admission_decisions (request_uid, operation, namespace, pod, username, allowed, code, reason, dry_run)
                            VALUES ($1, 'CREATE', 'bench', 'p', 'u', true, 200, 'ok', false)`,
      [`hot-${i}`],
    );
    inserts.push(performance.now() - t0);
  }
  return {
    rounds: reads.length,
    readP50: ms(pct(reads, 50)),
    readP99: ms(pct(reads, 99)),
    readMax: ms(Math.max(...reads)),
    insertP50: ms(pct(inserts, 50)),
    insertP99: ms(pct(inserts, 99)),
    insertMax: ms(Math.max(...inserts)),
  };
}

async function main(): Promise<void> {
  const schema = `bench_ret_${randomBytes(4).toString('hex')}`;
  const metrics = new Metrics({ defaultMetrics: false });
  const store = new Store({ url: DATABASE_URL, schema, log: createLogger('silent'), metrics, historyDays: DAYS });
  const db = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${schema}` });
  await db.connect();
  const load = loadavg().map((x) => Math.round(x * 10) / 10);
  try {
    await store.migrate();
    let t0 = performance.now();
    await fill(db);
    const fillSeconds = Math.round((performance.now() - t0) / 100) / 10;
    const old = async (): Promise<Record<string, number>> => {
      const r = await db.query<{ a: number; j: number }>(
        `SELECT (SELECT count(*)::int FROM admission_decisions WHERE decided_at < now() - make_interval(days => $1)) AS a,
                                                                 (SELECT count(*)::int FROM jobs WHERE finished_at < now() - make_interval(days => $1)) AS j`,
        [DAYS],
      );
      return { admission_decisions: r.rows[0]!.a, jobs: r.rows[0]!.j };
    };
    const before = await old();

    const plans: Record<string, { batch: { ms: number; plan: string }; unbounded: { ms: number; plan: string } }> = {};
    for (const table of ['admission_decisions', 'jobs']) {
      const rule = RETENTION_RULES.find((r) => r.table === table)!;
      plans[table] = {
        batch: await explain(db, batchDeleteSql(rule), [DAYS, 1000]),
        unbounded: await explain(db, `DELETE FROM ${table} WHERE ${rule.column} < now() - make_interval(days => $1)`, [DAYS]),
      };
    }

    const idle = await hotPath(store, () => true, 2000);
    let pruning = true;
    t0 = performance.now();
    const round = store.retention.pruneNow().finally(() => {
      pruning = false;
    });
    const during = await hotPath(store, () => !pruning, 200);
    const pruned = await round;
    const roundSeconds = Math.round((performance.now() - t0) / 100) / 10;
    const hist = (await metrics.storePruneBatch.get()).values;
    const batches: Record<string, { batches: number; meanMs: number; buckets: Record<string, number> }> = {};
    for (const table of ['admission_decisions', 'jobs']) {
      const count = hist.find((v) => v.metricName === 'sluice_store_prune_batch_seconds_count' && v.labels.table === table)?.value ?? 0;
      const sum = hist.find((v) => v.metricName === 'sluice_store_prune_batch_seconds_sum' && v.labels.table === table)?.value ?? 0;
      const buckets: Record<string, number> = {};
      for (const v of hist)
        if (v.metricName === 'sluice_store_prune_batch_seconds_bucket' && v.labels.table === table)
          buckets[`le ${(v.labels as Record<string, string | number>).le}`] = v.value;
      batches[table] = { batches: count, meanMs: ms((sum / Math.max(1, count)) * 1000), buckets };
    }
    const left = await old();

    const result = {
      date: new Date().toISOString(),
      loadavg: load,
      rows: ROWS,
      historyDays: DAYS,
      fillSeconds,
      oldBefore: before,
      pruned,
      oldAfter: left,
      roundSeconds,
      batches,
      plans,
      hotPath: { idle, during },
    };
    mkdirSync(join('bench', 'results'), { recursive: true });
    const file = join('bench', 'results', `retention-${result.date.slice(0, 10)}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

    const out = process.stdout;
    out.write(`# Pruning old records, ${ROWS.toLocaleString('en')} rows per table (${result.date}, load ${load.join(' ')})\n\n`);
    out.write(
      `Old rows (> ${DAYS} days): admission_decisions ${before.admission_decisions}, jobs ${before.jobs}; after the round: ${left.admission_decisions}, ${left.jobs}.\n\n`,
    );
    out.write('| table | one batch of 1000 (EXPLAIN ANALYZE) | one unbounded DELETE | batches in the round | mean batch |\n| --- | --- | --- | --- | --- |\n');
    for (const table of ['admission_decisions', 'jobs']) {
      out.write(`| ${table} | ${plans[table]!.batch.ms} ms | ${plans[table]!.unbounded.ms} ms | ${batches[table]!.batches} | ${batches[table]!.meanMs} ms |\n`);
    }
    out.write(`\nThe whole round (batches of 1000, 50 ms pause): ${roundSeconds} s.\n\n`);
    out.write('| request pool, sequential | queue read p50 / p99 / max | audit insert p50 / p99 / max |\n| --- | --- | --- |\n');
    for (const [name, h] of [
      ['no pruning', idle],
      ['during the round', during],
    ] as const) {
      out.write(`| ${name} (${h.rounds}) | ${h.readP50} / ${h.readP99} / ${h.readMax} ms | ${h.insertP50} / ${h.insertP99} / ${h.insertMax} ms |\n`);
    }
    for (const table of ['admission_decisions', 'jobs']) out.write(`\n${table}, one batch:\n\n\`\`\`\n${plans[table]!.batch.plan}\n\`\`\`\n`);
    out.write(`\nWritten to ${file}\n`);
  } finally {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end();
    await store.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:retention failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
