// The ETA forecast on shared GPUs (HAMi's device plugin, docs/gpu-sharing.md): a share job
// that ends frees its memory, cores and slot on its GPU in the forecast, so a share job
// waiting for GPU memory gets the end of the first share ahead of it as its estimate.
import t from 'tap';
import { startTestEta } from '../helpers/queue-manager.js';
import { CapacityModel } from '../../queue/capacity.js';
import { EtaService } from '../../queue/eta-service.js';
import { hamiNode } from '../helpers/hami-agent.js';
import { podRecord } from '../../cluster/pod-record.js';
import { capacityNodes } from '../../queue/state.js';
import { unitPod } from '../../queue/units.js';
import { GPU, SHARE_NAMES, newShareCache, queuedShare, T0 } from './helpers.js';
import type { V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from '../../cluster/cache.js';

const MIN = 60_000;
const NOW = T0 + 10 * MIN;
const MIB = 16384;

const declared = (p: V1Pod, d: string): V1Pod => {
  p.metadata!.annotations!['sluice.io/expected-duration'] = d;
  return p;
};

async function etaOn(t: { teardown(fn: () => unknown): void }, cache: ClusterCache): Promise<EtaService> {
  return (await startTestEta(t, cache, { guaranteed: 16, bestEffortCap: 16, nowMs: NOW })).eta;
}

t.test('GPUs full of shares with known ends: a waiting share starts when the first of them ends', async (t) => {
  // Two 16 GiB GPUs, each holding two halves (8192 MiB, 50 cores), started at T0 and
  // declared to run 40 min, 1 h, 2 h and 3 h; slots are left (split 10), memory is not.
  const ends = ['2h', '40m', '3h', '1h'];
  const running = ends.map((d, i) => declared(queuedShare(`r${i}`, { memMiB: MIB / 2, cores: 50, node: 'h', onGpu: { index: i >> 1, memMiB: MIB / 2 } }), d));
  const waiting = declared(queuedShare('w', { memMiB: MIB / 2, cores: 50, created: T0 + MIN }), '30m');
  const eta = await etaOn(t, newShareCache([hamiNode('h', { gpus: 2, memMiB: MIB, split: 10 })], [...running, waiting]));
  const e = eta.forJob('team-a', 'w')!;
  t.equal(e.unknownReason, null, 'an estimate, not "not known"');
  t.equal(e.estimatedStartMs, T0 + 40 * MIN, 'r1 (40 min) frees half of GPU 0');
  t.same(e.basis.declared, 4);
});

t.test('a best-effort share reclaimed in the forecast is not freed twice at its own end', async (t) => {
  // One 16 GiB GPU: a best-effort half (ends at 20 min) and a guaranteed quarter (ends at
  // 2 h). Waiting: g, a guaranteed half that reclaims the best-effort one now (ends at
  // 30 min), and b, a best-effort half. At 20 min the best-effort half ends: its memory is
  // already g's, so b still waits; it starts when g ends.
  const be = declared(queuedShare('be', { qos: 'best-effort', memMiB: MIB / 2, node: 'h', onGpu: { index: 0, memMiB: MIB / 2 } }), '20m');
  const quarter = declared(queuedShare('q', { memMiB: MIB / 4, node: 'h', onGpu: { index: 0, memMiB: MIB / 4 } }), '2h');
  const g = declared(queuedShare('g', { memMiB: MIB / 2, created: T0 + MIN }), '30m');
  const b = declared(queuedShare('b', { qos: 'best-effort', memMiB: MIB / 2, created: T0 + 2 * MIN }), '1h');
  const eta = await etaOn(t, newShareCache([hamiNode('h', { gpus: 1, memMiB: MIB, split: 10 })], [be, quarter, g, b]));
  t.equal(eta.forJob('team-a', 'g')!.estimatedStartMs, NOW, 'g reclaims the best-effort half now');
  t.equal(eta.forJob('team-a', 'b')!.estimatedStartMs, NOW + 30 * MIN, 'b waits for g, not for the reclaimed half');
});

t.test('capacity model: giveBack frees a placed share on its GPU', async (t) => {
  const cache = newShareCache([hamiNode('h', { gpus: 1, memMiB: MIB, split: 10 })], []);
  const model = new CapacityModel(capacityNodes(cache).values());
  const pod = (name: string) => unitPod(podRecord(queuedShare(name, { memMiB: 10_000 }), name, [GPU], T0, SHARE_NAMES), (p) => cache.gpuEquivalents(p));
  const first = pod('a');
  t.ok(model.place([first], 'guaranteed').ok);
  t.notOk(model.wouldPlace([pod('b')], 'guaranteed'), '10000 + 10000 MiB do not fit 16384');
  const taken = model.takenBy(first)!;
  model.giveBack(taken.node, taken.taken);
  t.ok(model.wouldPlace([pod('c')], 'guaranteed'), 'the first share gone, the second fits');
  t.equal(model.idleGpus(GPU), 10, 'every slot idle again');
});
