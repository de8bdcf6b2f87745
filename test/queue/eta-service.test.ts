// The ETA service on a real cluster cache and queue manager: what it estimates for a waiting
// job, what it rests on, and the words the submit warning and the wait Events use.
import t from 'tap';
import { createLogger } from '../../observability/logger.js';
import { EtaService, etaPhrase, humanDelay } from '../../queue/eta-service.js';
import { submitWarning } from '../../queue/preview.js';
import { eta as etaCell } from '../../cli/format.js';
import { NOW, setup } from './eta-fixture.js';
import { GPU, queuedPod, T0 } from './helpers.js';

const MIN = 60_000;

t.test('a waiting job starts when the running job of known duration ends', async (t) => {
  const { eta } = await setup(t);
  const e = eta.forJob('team-a', 'w1')!;
  t.equal(e.estimatedStartMs, T0 + 60 * MIN, 'r1 declared 1h and started at T0');
  t.same(e.basis, { declared: 1, learned: 0, learnedFrom: 0, unknown: 1, duration: { basis: 'annotation', seconds: 1200, samples: 0 } });
  t.equal(etaPhrase(e, NOW), '; expected start in about 50 min (from 1 declared duration; 1 of unknown duration taken as never ending)');
  t.equal(eta.forJob('team-a', 'r1'), undefined, 'running jobs have no ETA');
});

t.test('the submit warning carries the ETA, or says it is not known and why', async (t) => {
  const { manager, eta } = await setup(t);
  const small = queuedPod('w2', { gpus: 4, created: NOW });
  small.metadata!.annotations!['sluice.io/expected-duration'] = '30m';
  t.equal(
    submitWarning(manager.current(), small, [GPU], NOW, eta),
    'queued in team-a: no node has room for it now, position 2 of 2; expected start in about 70 min (from 2 declared durations; 1 of unknown duration taken as never ending)',
    'r1 ends at 60 min, then w1 runs 20 min',
  );
  const big = queuedPod('w3', { gpus: 8, created: NOW });
  t.match(submitWarning(manager.current(), big, [GPU], NOW, eta), /; ETA not known: it waits on jobs whose run time is unknown/);
  t.match(submitWarning(manager.current(), small, [GPU], NOW, null), /position 2 of 2$/, 'no ETA service: the warning as before');
  const noBudget = new EtaService({
    cache: (eta as unknown as { opts: { cache: never } }).opts.cache,
    manager,
    history: null,
    log: createLogger('silent'),
    backfillGuardMs: 600_000,
    admissionBudgetMs: 0,
  });
  t.match(submitWarning(manager.current(), small, [GPU], NOW, noBudget), /; ETA not yet known$/);
});

t.test('a running pod that asks no GPU is not a job the estimate rests on', async (t) => {
  const { cache, eta } = await setup(t);
  const cpu = queuedPod('web', { gpus: 0, node: 'n1' });
  cache.upsertPod(cpu);
  eta.recompute();
  t.same(
    eta.forJob('team-a', 'w1')!.basis,
    { declared: 1, learned: 0, learnedFrom: 0, unknown: 1, duration: { basis: 'annotation', seconds: 1200, samples: 0 } },
    'still r1 (declared) and r2 (unknown), not web',
  );
});

t.test('words and the CLI cell', async (t) => {
  t.equal(humanDelay(30_000), 'within a minute');
  t.equal(humanDelay(12 * MIN), 'about 12 min');
  t.equal(humanDelay(42 * MIN), 'about 40 min');
  t.equal(humanDelay(5 * 60 * MIN), 'about 5 h');
  t.equal(humanDelay(3 * 24 * 60 * MIN), 'about 3 days');
  t.equal(etaCell(null), '-');
  t.equal(etaCell(new Date(T0 + 40 * MIN).toISOString(), T0), '~40m');
  t.equal(etaCell(new Date(T0 - MIN).toISOString(), T0), 'now');
});

t.test('the what-if does not start when one pass of the last forecast took longer than its budget', async (t) => {
  const { manager, eta } = await setup(t);
  const small = queuedPod('w2', { gpus: 4, created: NOW });
  small.metadata!.annotations!['sluice.io/expected-duration'] = '30m';
  eta.lastCost = { ms: 100_000, passes: 10, waiting: 1, estimated: 1 }; // 10 s a pass, budget 5 s
  t.match(submitWarning(manager.current(), small, [GPU], NOW, eta), /; ETA not yet known$/);
});
