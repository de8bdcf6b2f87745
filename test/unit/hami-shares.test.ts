// HAMi's registration and device lists (cluster/hami.ts), node facts from them, and the
// share arithmetic (placement/shares.ts), including the measurement behind mapping memory
// and cores onto the policies' one-dimensional share.
import t from 'tap';
import { encodeDeviceList, handshakeStale, parseDeviceList, parseRegistration, podDeviceHold } from '../../cluster/hami.js';
import { nodeFacts } from '../../cluster/node-facts.js';
import { podShareAsks, PodRequestError } from '../../cluster/pod-request.js';
import {
  deviceMisfit,
  freeShareMilli,
  placeContainers,
  policyPick,
  shareMilli,
  slotsOfDevices,
  type GpuDevice,
  type ShareAsk,
} from '../../placement/shares.js';
import { fit } from '../../placement/fit.js';
import { POLICY_BY_NAME, fragmentationPlacement } from '../../placement/policies.js';
import { sizeMix } from '../../placement/size-mix.js';
import { hamiNode, sharePod } from '../helpers/hami-agent.js';

const SHARING = { resource: 'nvidia.com/gpu', handshakeTimeoutMs: 60_000, now: () => Date.now() };

t.test('registration: the JSON form, the 9- and the 7-field forms', async (t) => {
  for (const form of ['json', '9', '7'] as const) {
    const n = hamiNode('n1', { gpus: 3, memMiB: 24000, split: 4, form });
    const f = nodeFacts(n, ['nvidia.com/gpu'], SHARING);
    t.equal(f.registrationProblem, null, form);
    t.same(
      f.sharedGpus!.gpus.map((g) => [g.uuid, g.index, g.slots, g.memMiB, g.cores]),
      [0, 1, 2].map((i) => [`GPU-n1-${i}`, i, 4, 24000, 100]),
      `${form} form`,
    );
  }
  const doc = parseRegistration('GPU-a,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true:GPU-b,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true:');
  t.same('gpus' in doc && doc.gpus.map((g) => g.uuid), ['GPU-a', 'GPU-b'], "the example of HAMi's protocol page");
});

t.test('malformed registrations are ignored, naming the node and the field', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['GPU-a,10,32768,100,T4,0:', /device 0: 6 fields, expected 7 or 9/],
    ['GPU-a,10,lots,100,T4,0,true:', /device 0 \(GPU-a\): memory field "lots" is not a whole number/],
    ['GPU-a,10,100,100,T4,0,true:GPU-a,10,100,100,T4,0,true:', /UUID GPU-a is registered twice/],
    ['[{"id":"GPU-a","devmem":"x"}]', /devmem field "x" is not a whole number/],
    ['[{', /not valid JSON/],
  ];
  for (const [value, want] of bad) {
    const n = hamiNode('n2');
    n.metadata!.annotations!['hami.io/node-nvidia-register'] = value;
    const f = nodeFacts(n, ['nvidia.com/gpu'], SHARING);
    t.equal(f.sharedGpus, null, `ignored: ${value}`);
    t.match(f.registrationProblem, /^node n2: ignoring hami.io\/node-nvidia-register: /);
    t.match(f.registrationProblem, want);
    t.equal(f.allocatable['nvidia.com/gpu'], 20, 'the node still counts its GPUs whole');
  }
});

t.test('unhealthy GPUs are excluded with a reason; a stale handshake drops all unless GPUs are advertised', async (t) => {
  const n = hamiNode('n3', { form: '9' });
  n.metadata!.annotations!['hami.io/node-nvidia-register'] = n.metadata!.annotations!['hami.io/node-nvidia-register']!.replace('0,true,1,', '0,false,1,');
  const f = nodeFacts(n, ['nvidia.com/gpu'], SHARING);
  t.same(
    f.sharedGpus!.gpus.map((g) => g.index),
    [0],
  );
  t.match(f.sharedGpus!.excluded, [/GPU 1 \(GPU-n3-1\): reported unhealthy/]);

  const pad = (x: number): string => String(x).padStart(2, '0');
  const local = (d: Date): string =>
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const old = `Requesting_${local(new Date(Date.now() - 120_000))}`;
  t.equal(handshakeStale({ 'hami.io/node-handshake': `Requesting_${local(new Date())}` }, 0, Date.now(), 60_000), null, 'a fresh request is fine');
  t.equal(handshakeStale({ 'hami.io/node-handshake-nvidia': old }, 20, Date.now(), 60_000), null, 'stale, but the node still advertises GPUs');
  t.match(handshakeStale({ 'hami.io/node-handshake-nvidia': old }, 0, Date.now(), 60_000), /has not answered the handshake/);
  t.equal(handshakeStale({ 'hami.io/node-handshake': 'Reported 2024-01-23 04:30:04' }, 0, Date.now(), 60_000), null, 'Reported is fine');
  const gone = hamiNode('n4');
  gone.metadata!.annotations!['hami.io/node-handshake'] = old;
  gone.status!.allocatable!['nvidia.com/gpu'] = '0';
  const g = nodeFacts(gone, ['nvidia.com/gpu'], SHARING);
  t.same(g.sharedGpus!.gpus, [], 'no usable GPU');
  t.equal(g.sharedGpus!.excluded.length, 2);
});

t.test('pod device lists: encode, decode, and what a pod holds', async (t) => {
  const list = encodeDeviceList([
    [],
    [{ uuid: 'GPU-a', memMiB: 3000, cores: 0 }],
    [
      { uuid: 'GPU-a', memMiB: 5000, cores: 20 },
      { uuid: 'GPU-b', memMiB: 5000, cores: 20 },
    ],
  ]);
  t.equal(list, ';GPU-a,NVIDIA,3000,0:;GPU-a,NVIDIA,5000,20:GPU-b,NVIDIA,5000,20:;');
  t.same(parseDeviceList(list), [
    [],
    [{ uuid: 'GPU-a', memMiB: 3000, cores: 0 }],
    [
      { uuid: 'GPU-a', memMiB: 5000, cores: 20 },
      { uuid: 'GPU-b', memMiB: 5000, cores: 20 },
    ],
  ]);
  t.same(
    parseDeviceList('GPU-0fc3,NVIDIA,3000,0:;GPU-0fc3,NVIDIA,5000,0:;'),
    [[{ uuid: 'GPU-0fc3', memMiB: 3000, cores: 0 }], [{ uuid: 'GPU-0fc3', memMiB: 5000, cores: 0 }]],
    "the protocol page's example",
  );
  t.match(parseDeviceList('GPU-a,NVIDIA,x,0:;'), { error: /whole numbers/ });
  const a = { 'hami.io/vgpu-node': 'n1', 'hami.io/vgpu-devices-allocated': list };
  t.same(podDeviceHold(a, '')?.node, 'n1', 'annotated, not bound yet: held on vgpu-node');
  t.equal(podDeviceHold({ ...a, 'hami.io/bind-phase': 'failed' }, 'n1'), null, 'a failed allocation holds nothing');
  t.equal(podDeviceHold(a, 'n2'), null, 'bound elsewhere: the annotation is stale');
});

t.test('share asks as HAMi reads them', async (t) => {
  const names = { resource: 'nvidia.com/gpu', memory: 'nvidia.com/gpumem', memoryPercent: 'nvidia.com/gpumem-percentage', cores: 'nvidia.com/gpucores' };
  t.same(podShareAsks(sharePod('a', { memMiB: 4096, cores: 25 }), names), [{ count: 1, memMiB: 4096, memPercent: 0, cores: 25 }]);
  t.same(podShareAsks(sharePod('b', { percent: 30 }), names), [{ count: 1, memMiB: 0, memPercent: 30, cores: 0 }]);
  t.same(podShareAsks(sharePod('c', {}), names), [{ count: 1, memMiB: 0, memPercent: 100, cores: 0 }], 'no memory asked: the whole memory');
  t.throws(() => podShareAsks(sharePod('d', { cores: 150 }), names), PodRequestError);
});

const dev = (i: number, used: Partial<GpuDevice> = {}): GpuDevice => ({
  uuid: `GPU-${i}`,
  index: i,
  type: 'T4',
  numa: 0,
  memMiB: 16000,
  cores: 100,
  slots: 4,
  usedMemMiB: 0,
  usedCores: 0,
  usedSlots: 0,
  ...used,
});

t.test('fit on devices: reasons name the GPU and the numbers; a share no GPU could hold is unresolvable', async (t) => {
  const devices = [dev(0, { usedMemMiB: 12000, usedCores: 30, usedSlots: 2 }), dev(1, { usedSlots: 4, usedMemMiB: 4000, usedCores: 40 })];
  const node = { name: 'n', product: 'T4', unusable: null, gpus: slotsOfDevices(devices) };
  const ask = (a: ShareAsk) => ({ resource: 'nvidia.com/gpu', count: a.count, milli: 1000, models: [], shares: [a] });
  t.equal(fit(node, ask({ count: 1, memMiB: 4000, memPercent: 0, cores: 70 })), null);
  t.match(fit(node, ask({ count: 1, memMiB: 4001, memPercent: 0, cores: 10 })), {
    resolvable: true,
    reason: /GPU 0 \(GPU-0\): 4000 of 16000 MiB free, pod needs 4001 MiB; GPU 1 \(GPU-1\): all 4 slots taken/,
  });
  t.match(fit(node, ask({ count: 1, memMiB: 100, memPercent: 0, cores: 80 })), { reason: /70 of 100 cores free, pod needs 80/ });
  t.match(fit(node, ask({ count: 1, memMiB: 20000, memPercent: 0, cores: 0 })), { resolvable: false, kind: 'too_big', reason: /largest GPU 16000 MiB/ });
  t.match(fit(node, ask({ count: 1, memMiB: 0, memPercent: 100, cores: 100 })), { reason: /pod needs the whole GPU|MiB free/ });
});

t.test('the policy picks the GPU: binpack the fullest that fits, spread an idle one', async (t) => {
  const devices = [dev(0), dev(1, { usedMemMiB: 8000, usedCores: 50, usedSlots: 1 }), dev(2, { usedMemMiB: 12000, usedCores: 10, usedSlots: 1 })];
  const a: ShareAsk = { count: 1, memMiB: 4000, memPercent: 0, cores: 10 };
  const on = (p: 'binpack' | 'spread' | 'fragmentation'): string => {
    const r = placeContainers(devices, [a], policyPick(POLICY_BY_NAME[p], [], 'nvidia.com/gpu'));
    return 'uses' in r ? r.uses[0]![0]!.uuid : r.misfit;
  };
  t.equal(on('binpack'), 'GPU-2');
  t.equal(on('spread'), 'GPU-0');
  t.equal(on('fragmentation'), 'GPU-2', 'filling the GPU exactly leaves no fragment');
  const two = placeContainers(devices, [{ ...a, count: 2 }], policyPick(POLICY_BY_NAME.binpack, [], 'nvidia.com/gpu'));
  t.ok('uses' in two && new Set(two.uses[0]!.map((u) => u.uuid)).size === 2, 'a container asking 2 GPUs gets 2 different GPUs');
});

t.test("fragmentation's GPU choice counts the node's free CPU as its score does", async (t) => {
  // A 200m share with 1 CPU on a node with one idle GPU and one with 800m free, 24 CPUs
  // free; the mix: 500m and 400m shares of 8 CPUs each. By GPUs alone both places leave no
  // fragment (the first, the partly used GPU, wins). With the CPU: 23 CPUs back two more
  // 8-CPU shares; on the idle GPU (800m + 800m) those two use all the GPUs could hold of
  // the 500m shape, on the used one (600m + 1000m) not, so the idle GPU strands less.
  const mix = sizeMix([
    { count: 1, milli: 500, cpuMilli: 8000, weight: 1 },
    { count: 1, milli: 400, cpuMilli: 8000, weight: 1 },
  ]);
  const slots = { capacity: 2, freeWhole: 1, partialFree: [800] };
  const share = { resource: 'nvidia.com/gpu', count: 1, milli: 200, models: [], cpuMilli: 1000 };
  const host = { cpuFreeMilli: 24000, product: 'T4' };
  const scored = fragmentationPlacement({ name: 'n', unusable: null, gpus: slots, ...host }, share, mix).choice;
  t.same(scored, { on: 'idle' }, 'the score is for the idle GPU');
  t.same(POLICY_BY_NAME.fragmentation.choose(slots, share, mix), { on: 'partial', free: 800 }, 'without the host figures: the used GPU');
  t.same(POLICY_BY_NAME.fragmentation.choose(slots, share, mix, host), scored, 'with them: the GPU the score was for');
  // policyPick (the bind's pick) with the node and pod figures takes that GPU.
  const devices = [dev(0, { memMiB: 16000, usedMemMiB: 3200, usedCores: 20, usedSlots: 1 }), dev(1, { memMiB: 16000 })];
  const a: ShareAsk = { count: 1, memMiB: 3200, memPercent: 0, cores: 20 };
  const pickOn = (onNode?: Parameters<typeof policyPick>[3]): string => {
    const r = placeContainers(devices, [a], policyPick(POLICY_BY_NAME.fragmentation, mix, 'nvidia.com/gpu', onNode));
    return 'uses' in r ? r.uses[0]![0]!.uuid : r.misfit;
  };
  t.equal(pickOn(), 'GPU-0', 'the bind without them would take the used GPU');
  t.equal(pickOn({ host, cpuMilli: 1000, memMiB: 0 }), 'GPU-1', 'with them, the idle one');
});

// The measurement behind shareMilli = max(memory, cores fraction) and freeShareMilli =
// min(free memory, free cores fraction): over random GPU states and asks, how often the
// one-dimensional model says "fits" when the exact check says it does not (unsound: the
// policy would rank a node the pod cannot go to), and how often it says "does not fit"
// when it does (conservative: a share left unused). Mean and memory-only mappings for
// comparison. Deterministic (seeded).
t.test('mapping memory and cores onto one share: max is sound, mean and memory-only are not', async (t) => {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const maps = {
    max: (m: number, c: number) => Math.max(m, c),
    mean: (m: number, c: number) => (m + c) / 2,
    memory: (m: number, _c: number) => m,
  };
  const tally: Record<string, { unsound: number; conservative: number }> = {
    max: { unsound: 0, conservative: 0 },
    mean: { unsound: 0, conservative: 0 },
    memory: { unsound: 0, conservative: 0 },
  };
  const N = 20000;
  for (let i = 0; i < N; i++) {
    const d = dev(0, { usedMemMiB: Math.floor(rnd() * 16) * 1000, usedCores: Math.floor(rnd() * 11) * 10, usedSlots: 1, slots: 10 });
    const a: ShareAsk = { count: 1, memMiB: (1 + Math.floor(rnd() * 8)) * 1000, memPercent: 0, cores: Math.floor(rnd() * 6) * 10 };
    const exact = deviceMisfit(d, a) === null;
    for (const [name, f] of Object.entries(maps)) {
      const askMilli = Math.ceil(1000 * f(a.memMiB / d.memMiB, a.cores / 100));
      const freeMilli = Math.floor(
        1000 *
          (name === 'max'
            ? Math.min((d.memMiB - d.usedMemMiB) / d.memMiB, (d.cores - d.usedCores) / d.cores)
            : name === 'mean'
              ? ((d.memMiB - d.usedMemMiB) / d.memMiB + (d.cores - d.usedCores) / d.cores) / 2
              : (d.memMiB - d.usedMemMiB) / d.memMiB),
      );
      const oneD = freeMilli >= askMilli;
      if (oneD && !exact) tally[name]!.unsound++;
      if (!oneD && exact) tally[name]!.conservative++;
    }
  }
  t.comment(`of ${N} random (GPU, ask) pairs: ${JSON.stringify(tally)}`);
  t.equal(tally.max!.unsound, 0, 'max: never says fits when it does not');
  t.ok(tally.mean!.unsound > 0 && tally.memory!.unsound > 0, 'mean and memory-only do');
  // And the shipped functions agree with the max mapping used above.
  t.equal(shareMilli({ count: 1, memMiB: 4000, memPercent: 0, cores: 50 }, 16000), 500);
  t.equal(freeShareMilli(dev(0, { usedMemMiB: 4000, usedCores: 50, usedSlots: 1 })), 500);
});
