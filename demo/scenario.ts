// The demo's script, on examples/cluster-snapshot.json: 6 nodes (two 8-GPU A100, one
// 8-GPU H100, two 4-GPU L4 of which l4-2 is cordoned, one CPU node) and 4 GPU jobs already
// running there (team-a's train-a, 4 A100 GPUs, and its best-effort train-b, 2; team-b's
// infer-1, 1 L4, and big-h100, all 8 H100). None of them declares a run time, so the ETA forecast takes them
// as never ending (docs/eta.md) unless the script ends them.
//
// Each step only acts (submits, or ends a pod as its kubelet would) and lets sluice react;
// what is recorded is what sluice answered and did (run.ts).
import type { QueueInput } from '../store/queues.js';
import type { Driver } from './run.js';

const gpuRow = (guaranteed: number, bestEffortCap: number): QueueInput['limits'] => [
  { resource: 'nvidia.com/gpu', model: '', guaranteed, bestEffortCap, perJobMax: 0, perUserMax: 0 },
];

/** The queues, as an admin would PUT them (PUT /api/v1/queues/NAME). */
export const QUEUES: Record<string, QueueInput> = {
  'team-a': { weight: 1, limits: gpuRow(8, 8) },
  'team-b': { weight: 1, limits: gpuRow(24, 0) },
  research: { weight: 1, limits: gpuRow(0, 8) },
};

export const SETUP = [
  'Queues (PUT /api/v1/queues): team-a 8 guaranteed GPUs (its train-a already holds 4), team-b 24, research best-effort only (up to 8 idle GPUs).',
  "The snapshot's 4 running jobs declare no run time: the forecast takes them as never ending until they end.",
];

export async function runScenario(d: Driver): Promise<void> {
  for (const [name, q] of Object.entries(QUEUES)) await d.putQueue(name, q);
  await d.awaitQueues(Object.keys(QUEUES));

  // 1. team-a's quota (8 guaranteed) fills: ft-1 takes the 4 GPUs left, ft-2 and ft-3 wait
  //    for quota, each told when it should start.
  d.beginStep(1);
  d.at(9, 0);
  await d.submit({ name: 'ft-1', namespace: 'team-a', user: 'alice', queue: 'team-a', qos: 'guaranteed', gpusPerPod: 4, model: 'a100', expected: '30m' });
  d.at(9, 1);
  await d.submit({ name: 'ft-2', namespace: 'team-a', user: 'alice', queue: 'team-a', qos: 'guaranteed', gpusPerPod: 2, model: 'a100', expected: '20m' });
  d.at(9, 2);
  await d.submit({ name: 'ft-3', namespace: 'team-a', user: 'alice', queue: 'team-a', qos: 'guaranteed', gpusPerPod: 4, model: 'a100', expected: '40m' });

  // 2. ft-1 ends after its 30 minutes: ft-2 goes; ft-2 ends after 20: ft-3 goes.
  d.beginStep(2);
  d.at(9, 30);
  await d.finish('team-a', 'ft-1');
  d.at(9, 50);
  await d.finish('team-a', 'ft-2');

  // 3. research's best-effort sweep takes the 3 idle L4 GPUs; team-b's guaranteed eval
  //    needs 2, within its quota: sluice releases it at once (best-effort GPUs count as free
  //    for guaranteed work) and its preempt verb gives kube-scheduler the sweep, not
  //    team-b's own infer-1 on the same node.
  d.beginStep(3);
  d.at(9, 55);
  await d.submit({ name: 'sweep', namespace: 'research', user: 'carol', queue: 'research', qos: 'best-effort', gpusPerPod: 3, model: 'l4', expected: '2h' });
  d.at(10, 0);
  await d.submit({ name: 'eval', namespace: 'team-b', user: 'bob', queue: 'team-b', qos: 'guaranteed', gpusPerPod: 2, model: 'l4', expected: '30m' });
  await d.recordReclaims();

  // 4. team-b's dist-train is a gang of 2 pods of 4 H100 GPUs: it waits whole, first for its
  //    second pod, then for the H100 node the snapshot's big-h100 holds; when big-h100
  //    ends, both pods are released in one pass.
  d.beginStep(4);
  d.at(10, 5);
  await d.submit({
    name: 'dist-train-0',
    namespace: 'team-b',
    user: 'bob',
    queue: 'team-b',
    qos: 'guaranteed',
    gpusPerPod: 4,
    model: 'h100',
    expected: '1h',
    gang: { job: 'dist-train', size: 2 },
  });
  d.at(10, 6);
  await d.submit({
    name: 'dist-train-1',
    namespace: 'team-b',
    user: 'bob',
    queue: 'team-b',
    qos: 'guaranteed',
    gpusPerPod: 4,
    model: 'h100',
    expected: '1h',
    gang: { job: 'dist-train', size: 2 },
  });
  d.at(10, 20);
  await d.finish('team-b', 'big-h100');
  d.at(10, 30); // the timeline's end: what runs now runs on
}
