// The ETA of a job submitted to a queue at its quota must rest on the jobs holding that
// quota now, not on the picture of the last background forecast (seen on a real cluster:
// "4 of 4 guaranteed in use...; expected to start now (no running job to wait for)", the
// forecast's input dating from before the running jobs started).
import t from 'tap';
import { startTestEta } from '../helpers/queue-manager.js';
import { createLogger } from '../../observability/logger.js';
import { EtaService } from '../../queue/eta-service.js';
import { submitWarning } from '../../queue/preview.js';
import { gpuNode } from '../helpers/k8s.js';
import { GPU, newCache, queuedPod, T0 } from './helpers.js';

const MIN = 60_000;
const NOW = T0 + 10 * MIN;

/** One 8-GPU node, team-a at 4 guaranteed GPUs; the ETA service ran once on the empty queue. */
async function setup(t: { teardown(fn: () => unknown): void }) {
  const cache = newCache([gpuNode('n1', { gpus: 8 })], []);
  const { manager, eta } = await startTestEta(t, cache, { guaranteed: 4, nowMs: NOW }); // its forecast ran before anything runs
  return { cache, manager, eta };
}

function running(name: string, duration: string | null) {
  const p = queuedPod(name, { gpus: 2, node: 'n1', created: T0 });
  if (duration) p.metadata!.annotations!['sluice.io/expected-duration'] = duration;
  return p;
}

const QUOTA_REASON = `queued in team-a: 4 of 4 guaranteed ${GPU} in use, job needs 2, position 1 of 1`;

t.test('a job at a full quota waits for the first running job to end, not "now"', async (t) => {
  const { cache, manager, eta } = await setup(t);
  // Started after the last background forecast, which is not due again yet.
  cache.upsertPod(running('r1', '30m'));
  cache.upsertPod(running('r2', '1h'));
  manager.evaluateNow();
  const w = queuedPod('w', { gpus: 2, created: NOW });
  w.metadata!.annotations!['sluice.io/expected-duration'] = '15m';
  t.equal(
    submitWarning(manager.current(), w, [GPU], NOW, eta),
    `${QUOTA_REASON}; expected start in about 20 min (from 2 declared durations)`,
    'r1 (30m, started 10 min ago) ends in 20 min',
  );
});

t.test('a job at a full quota held by jobs of unknown run time: not known, not "now"', async (t) => {
  const { cache, manager, eta } = await setup(t);
  cache.upsertPod(running('r1', null));
  cache.upsertPod(running('r2', null));
  manager.evaluateNow();
  const w = queuedPod('w', { gpus: 2, created: NOW });
  t.equal(
    submitWarning(manager.current(), w, [GPU], NOW, eta),
    `${QUOTA_REASON}; ETA not known: it waits on jobs whose run time is unknown (no sluice.io/expected-duration and too few finished jobs like them)`,
  );
});

t.test('one running job of known and one of unknown run time: the known end frees the quota', async (t) => {
  const { cache, manager, eta } = await setup(t);
  cache.upsertPod(running('r1', null));
  cache.upsertPod(running('r2', '40m'));
  manager.evaluateNow();
  const w = queuedPod('w', { gpus: 2, created: NOW });
  t.equal(
    submitWarning(manager.current(), w, [GPU], NOW, eta),
    `${QUOTA_REASON}; expected start in about 30 min (from 1 declared duration; 1 of unknown duration taken as never ending)`,
  );
});

t.test('the background forecast follows the same jobs once it runs again', async (t) => {
  const { cache, manager, eta } = await setup(t);
  cache.upsertPod(running('r1', '30m'));
  cache.upsertPod(running('r2', '1h'));
  cache.upsertPod(queuedPod('w', { gpus: 2, created: NOW - MIN }));
  manager.evaluateNow();
  eta.recompute();
  t.equal(eta.forJob('team-a', 'w')?.estimatedStartMs, T0 + 30 * MIN);
});

t.test('when the input is stale and building it again does not fit the budget: "not yet known", never "now"', async (t) => {
  const { cache, manager } = await setup(t);
  const tight = new EtaService({
    cache,
    manager,
    history: null,
    log: createLogger('silent'),
    backfillGuardMs: 600_000,
    now: () => NOW,
    admissionBudgetMs: 1e-6,
  });
  tight.recompute();
  cache.upsertPod(running('r1', '30m'));
  cache.upsertPod(running('r2', '1h'));
  manager.evaluateNow();
  const w = queuedPod('w', { gpus: 2, created: NOW });
  t.equal(submitWarning(manager.current(), w, [GPU], NOW, tight), `${QUOTA_REASON}; ETA not yet known`);
});
