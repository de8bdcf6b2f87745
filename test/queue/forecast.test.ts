// The forward simulation on cases worked out by hand: it runs the manager's own decision
// pass (evaluate.ts), so backfill, the backfill guard, quota and gangs show in its answer.
import t from 'tap';
import type { CapacityNode } from '../../queue/capacity.js';
import { estimateDuration, type DurationEstimate } from '../../queue/duration.js';
import { forecast, type RunningJob, type WaitingJob } from '../../queue/forecast.js';
import { GPU, T0, limit, queueSpec, queues, unit } from './helpers.js';

const MIN = 60_000;
const NOW = T0 + 3_600_000;
const fixed = (d: string): DurationEstimate => estimateDuration({ annotation: d, maxDurationSeconds: null, history: [], nowMs: NOW });
const node = (name: string, gpus: number, free: number): CapacityNode => ({
  name,
  product: 'NVIDIA-A100-SXM4-80GB',
  unusable: null,
  labels: {},
  capacity: { [GPU]: gpus },
  free: { [GPU]: free },
  bestEffort: { [GPU]: 0 },
});

function runningJob(key: string, gpus: number, startedMs: number, duration: DurationEstimate, nodeName = 'n1', queue = 'team-a'): RunningJob {
  const requests = [{ resource: GPU, count: gpus }];
  return {
    key,
    qos: 'guaranteed',
    holdings: [{ queue, user: 'alice', qos: 'guaranteed', requests, product: 'NVIDIA-A100-SXM4-80GB', models: [] }],
    pods: [{ node: nodeName, requests }],
    startedMs,
    duration,
  };
}

const waitingJob = (key: string, gpus: number, submittedMs: number, d: DurationEstimate, o: Parameters<typeof unit>[1] = {}): WaitingJob => ({
  unit: unit(key, { gpus, submittedMs, ...o }),
  duration: d,
});

// One 4-GPU node, full with R until NOW + 20 min. Waiting in FIFO order: A (2 GPUs, 1 h),
// B (4 GPUs, 10 min), C (2 GPUs, 1 h).
const base = () => ({
  nowMs: NOW,
  nodes: [node('n1', 4, 0)],
  running: [runningJob('R', 4, NOW - 10 * MIN, fixed('30m'))],
  waiting: [waitingJob('A', 2, NOW - 3 * MIN, fixed('1h')), waitingJob('B', 4, NOW - 2 * MIN, fixed('10m')), waitingJob('C', 2, NOW - MIN, fixed('1h'))],
  queues: queues(queueSpec('team-a', [limit({ guaranteed: 4 })])),
  weights: new Map([['team-a', 1]]),
});

t.test('backfill: C passes B when R ends, B starts when A and C end', async (t) => {
  const f = forecast({ ...base(), backfillGuardMs: 86_400_000 });
  t.equal(f.starts.get('A')!.atMs, NOW + 20 * MIN);
  t.equal(f.starts.get('C')!.atMs, NOW + 20 * MIN, 'C fits beside A; B (4 GPUs) does not');
  t.equal(f.starts.get('B')!.atMs, NOW + 80 * MIN);
  t.same(f.starts.get('B'), { atMs: NOW + 80 * MIN, earliestMs: NOW + 80 * MIN, latestMs: NOW + 80 * MIN }, 'fixed durations: no spread');
  t.equal(f.truncated, false);
});

t.test('backfill guard: once the jobs have waited past it, C no longer passes B', async (t) => {
  // When R ends every job has waited over 10 min: oldest first, A goes; B reserves the
  // node's GPUs, so C waits behind it instead of backfilling.
  const f = forecast({ ...base(), backfillGuardMs: 10 * MIN });
  t.equal(f.starts.get('A')!.atMs, NOW + 20 * MIN);
  t.equal(f.starts.get('B')!.atMs, NOW + 80 * MIN, 'A ends at 80');
  t.equal(f.starts.get('C')!.atMs, NOW + 90 * MIN, 'B ends at 90');
});

t.test('a job that fits now starts now; a job behind a running job of unknown length has no estimate', async (t) => {
  const unknown = estimateDuration({ annotation: undefined, maxDurationSeconds: null, history: [], nowMs: NOW });
  const f = forecast({
    nowMs: NOW,
    nodes: [node('n1', 4, 2)],
    running: [runningJob('R', 2, NOW - MIN, unknown)],
    waiting: [waitingJob('fits', 2, NOW - MIN, fixed('1h')), waitingJob('behind', 2, NOW, fixed('1h'))],
    queues: 'unlimited',
    weights: new Map(),
    backfillGuardMs: 86_400_000,
  });
  t.equal(f.starts.get('fits')!.atMs, NOW);
  t.equal(f.starts.get('behind')!.atMs, NOW + 60 * MIN, 'the job it waits for has a known end');
  const g = forecast({
    nowMs: NOW,
    nodes: [node('n1', 4, 2)],
    running: [runningJob('R', 2, NOW - MIN, unknown)],
    waiting: [waitingJob('big', 4, NOW, fixed('1h'))],
    queues: 'unlimited',
    weights: new Map(),
    backfillGuardMs: 86_400_000,
  });
  t.notOk(g.starts.has('big'), 'R has no known end: not known, rather than a guess');
});

t.test('the range comes from the spread of the durations it rests on', async (t) => {
  // R's peers ran 10, 20 and 40 minutes (equal weight): low 10, middle 20, high 40.
  const d = estimateDuration({
    annotation: undefined,
    maxDurationSeconds: null,
    history: [600, 1200, 2400].map((seconds) => ({ seconds, finishedMs: NOW })),
    nowMs: NOW,
  });
  const f = forecast({
    nowMs: NOW,
    nodes: [node('n1', 4, 0)],
    running: [runningJob('R', 4, NOW, d)],
    waiting: [waitingJob('W', 4, NOW, fixed('1h'))],
    queues: 'unlimited',
    weights: new Map(),
    backfillGuardMs: 86_400_000,
  });
  t.same(f.starts.get('W'), { atMs: NOW + 20 * MIN, earliestMs: NOW + 10 * MIN, latestMs: NOW + 40 * MIN });
});

t.test('quota, not capacity: the queue at its quota waits for R, another queue starts at once', async (t) => {
  const f = forecast({
    nowMs: NOW,
    nodes: [node('n1', 8, 4), node('n2', 8, 8)],
    running: [runningJob('R', 4, NOW - MIN, fixed('30m'))],
    waiting: [waitingJob('over-quota', 2, NOW - MIN, fixed('1h')), waitingJob('team-b', 2, NOW, fixed('1h'), { queue: 'team-b' })],
    queues: queues(queueSpec('team-a', [limit({ guaranteed: 4 })]), queueSpec('team-b', [limit({ guaranteed: 4 })])),
    weights: new Map([
      ['team-a', 1],
      ['team-b', 1],
    ]),
    backfillGuardMs: 86_400_000,
  });
  t.equal(f.starts.get('over-quota')!.atMs, NOW + 29 * MIN, 'team-a holds its 4 guaranteed GPUs until R ends; 10 GPUs are idle meanwhile');
  t.equal(f.starts.get('team-b')!.atMs, NOW);
});

t.test('gangs: a gang whose pods fit one by one but not together waits for its whole size', async (t) => {
  const f = forecast({
    nowMs: NOW,
    nodes: [node('n1', 8, 2)],
    running: [runningJob('R', 6, NOW - MIN, fixed('30m'))],
    waiting: [waitingJob('gang', 2, NOW - MIN, fixed('1h'), { podCount: 2 }), waitingJob('single', 2, NOW, fixed('1h'))],
    queues: 'unlimited',
    weights: new Map(),
    backfillGuardMs: 86_400_000,
  });
  t.equal(f.starts.get('gang')!.atMs, NOW + 29 * MIN, '2 pods of 2 GPUs: 2 free now, 4 only once R ends');
  t.equal(f.starts.get('single')!.atMs, NOW, 'the single job backfills the 2 free GPUs');
});

t.test('bounded: maxSteps stops the run and says so', async (t) => {
  const running = Array.from({ length: 20 }, (_, i) => runningJob(`R${i}`, 1, NOW, fixed(`${i + 1}h`), 'n1'));
  const waiting = Array.from({ length: 20 }, (_, i) => waitingJob(`W${i}`, 1, NOW + i, fixed('30d')));
  const f = forecast({
    nowMs: NOW,
    nodes: [node('n1', 20, 0)],
    running,
    waiting,
    queues: 'unlimited',
    weights: new Map(),
    backfillGuardMs: 86_400_000,
    maxSteps: 5,
  });
  t.equal(f.truncated, true);
  t.same([...f.starts.keys()], ['W0', 'W1', 'W2', 'W3'], 'W0..W3 start at the first four ends; the rest are not known');
  t.equal(f.starts.get('W0')!.atMs, NOW + 60 * MIN);
});
