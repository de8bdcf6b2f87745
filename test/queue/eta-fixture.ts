// The scenario the ETA tests share: one 8-GPU node; r1 (4 GPUs, declared 1h) and r2 (4 GPUs,
// run time unknown) running since T0; w1 (4 GPUs, declared 20m) waiting; the clock at T0 + 10 min.
// A real cluster cache and queue manager (not leading), and an ETA service that has run once.
import { gpuNode } from '../helpers/k8s.js';
import { startTestEta } from '../helpers/queue-manager.js';
import { newCache, queuedPod, T0 } from './helpers.js';

const MIN = 60_000;
export const NOW = T0 + 10 * MIN;

export async function setup(t: { teardown(fn: () => unknown): void }) {
  const declared = queuedPod('r1', { gpus: 4, node: 'n1' });
  declared.metadata!.annotations!['sluice.io/expected-duration'] = '1h';
  const w1 = queuedPod('w1', { gpus: 4, created: T0 + MIN });
  w1.metadata!.annotations!['sluice.io/expected-duration'] = '20m';
  const cache = newCache([gpuNode('n1', { gpus: 8 })], [declared, queuedPod('r2', { gpus: 4, node: 'n1' }), w1]);
  const { manager, eta } = await startTestEta(t, cache, { guaranteed: 16, nowMs: NOW });
  return { cache, manager, eta };
}
