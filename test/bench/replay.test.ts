// The replay on tiny synthetic traces worked out by hand: three policies through the real
// queue code, estimates scored against the starts the replay recorded.
import t from 'tap';
import { probesFrom, replay, GPU, type ReplayJob, type ReplaySetup } from '../../bench/replay/engine.js';
import { clusterOf, jobsOf, queuesOf, runPolicies } from '../../bench/replay/main.js';
import { jain, percentile, svg } from '../../bench/replay/report.js';
import { parseTimedPods, stableHash } from '../../bench/replay/trace.js';

const MIN = 60_000;
const job = (key: string, gpus: number, submitMin: number, runMin: number, o: Partial<ReplayJob> = {}): ReplayJob => ({
  key,
  queue: 'team-a',
  user: 'u',
  kind: 'LS',
  priority: 0,
  gpus,
  models: [],
  submitMs: submitMin * MIN,
  runMs: runMin * MIN,
  ...o,
});
const node = { name: 'n1', product: 'G2', unusable: null, labels: {}, capacity: { [GPU]: 4 }, free: { [GPU]: 4 }, bestEffort: { [GPU]: 0 } };

// One 4-GPU node. A (2 GPUs, 10 min) at 0, B (4 GPUs, 10 min) at 1, C (2 GPUs, 5 min) at 2.
const setup = (durations: ReplaySetup['durations'] = 'declared'): ReplaySetup => ({
  nodes: [node],
  queues: queuesOf(1, 4),
  jobs: [job('A', 2, 0, 10), job('B', 4, 1, 10), job('C', 2, 2, 5)],
  backfillGuardMs: 10 * MIN,
  durations,
});

t.test('the policies differ where they should: backfill vs a blocking head', async (t) => {
  const starts = (p: 'sluice' | 'fifo' | 'strict'): Record<string, number> => Object.fromEntries([...replay(setup(), p).starts].map(([k, v]) => [k, v / MIN]));
  t.same(starts('sluice'), { A: 0, C: 2, B: 10 }, 'C backfills beside A; B starts when A ends (C ended at 7)');
  t.same(starts('fifo'), { A: 0, C: 2, B: 10 });
  t.same(starts('strict'), { A: 0, B: 10, C: 20 }, 'B heads the queue and blocks C until it ends');
});

t.test('declared durations: estimates at submit and half-way are exact here', async (t) => {
  for (const policy of ['sluice', 'strict'] as const) {
    const s = setup();
    const first = replay(s, policy);
    const probes = probesFrom(s, first);
    const second = replay(s, policy, probes);
    t.same(second.starts, first.starts, 'probing does not change the run');
    t.ok(second.estimates.length > 0);
    for (const e of second.estimates) t.equal(e.estimateMs, first.starts.get(e.key), `${policy} ${e.key} at ${e.at}`);
  }
});

t.test('learned durations: no history means no estimate, said so (null), not a guess', async (t) => {
  const s = setup('learned');
  const second = replay(s, 'strict', probesFrom(s, replay(s, 'strict')));
  const b = second.estimates.find((e) => e.key === 'B' && e.at === 'submit')!;
  t.equal(b.estimateMs, null, 'A has no finished peers yet: when it ends is not known');
  const withHistory = { ...s, finishedBefore: [job('old1', 1, -100, 10), job('old2', 1, -90, 10), job('old3', 1, -80, 10)] };
  const again = replay(withHistory, 'strict', probesFrom(withHistory, replay(withHistory, 'strict')));
  t.equal(again.estimates.find((e) => e.key === 'B' && e.at === 'submit')!.estimateMs, 10 * MIN, 'three 10-minute peers: A ends at 10');
});

t.test('runPolicies reports every figure for every policy', async (t) => {
  const figs = runPolicies(setup());
  t.same(
    figs.map((f) => f.policy),
    ['sluice', 'fifo', 'strict'],
  );
  const strict = figs[2]!;
  t.equal(strict.waited, 2);
  t.equal(strict.etaAtSubmit.p50Min, 0);
  t.equal(strict.queues[0]!.meanWaitMin, (9 + 18) / 3);
  t.ok(strict.utilisation > 0 && strict.utilisation <= 1);
  t.match(svg('tiny', figs), /<svg[\s\S]*polyline[\s\S]*<\/svg>/);
});

t.test('trace parsing, queue assignment and cluster choice are stable', async (t) => {
  const csv =
    'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n' +
    'p0,1000,1024,1,1000,,LS,Running,100,700,160\np1,1000,1024,0,0,,LS,Running,0,10,0\np2,1000,1024,2,1000,V100M16|V100M32,BE,Failed,50,80,\np3,1000,1024,1,500,,BE,Running,10,20,15\n';
  const { pods, skipped } = parseTimedPods(csv);
  t.same(skipped, { cpuOnly: 1, neverScheduled: 1 });
  t.same(
    pods.map((p) => [p.name, p.gpus, p.createdS, p.runS, p.kind]),
    [
      ['p3', 1, 10, 5, 'BE'],
      ['p0', 1, 100, 540, 'LS'],
    ],
  );
  t.equal(stableHash('openb-pod-0001'), stableHash('openb-pod-0001'));
  const jobs = jobsOf(pods, 4, 0, 1000, 2);
  t.same(
    jobs.map((j) => j.submitMs),
    [5000, 50000],
    'compressed 2x from the window start',
  );
  t.same(
    clusterOf(
      [
        { name: 'a', cpuMilli: 1, memMiB: 1, gpus: 8, model: 'G2' },
        { name: 'b', cpuMilli: 1, memMiB: 1, gpus: 8, model: 'G2' },
        { name: 'c', cpuMilli: 1, memMiB: 1, gpus: 0, model: '' },
      ],
      8,
    ).length,
    1,
  );
});

t.test('report helpers', async (t) => {
  t.equal(jain([1, 1, 1]), 1);
  t.equal(jain([1, 0]), 0.5);
  t.equal(percentile([1, 2, 3, 4], 50), 2);
  t.equal(percentile([1, 2, 3, 4], 90), 4);
  t.equal(percentile([], 50), null);
});
