// GPU shares at admission: the sluice.io/gpus share form ("0.25", "8Gi") becomes HAMi's
// resources, validation checks they agree, and a share no registered GPU could hold is
// denied naming the largest GPU.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { mutatePod } from '../../webhooks/mutate.js';
import { checkPodSpec, checkQueue, checkShares, isJobAsk } from '../../webhooks/validate.js';
import { policyFromConfig, type ClusterFacts } from '../../webhooks/policy.js';
import { CacheFacts } from '../../webhooks/cluster-facts.js';
import { shorthandOf } from '../../webhooks/pod-facts.js';
import { loadConfig } from '../../config/load.js';
import { ClusterCache } from '../../cluster/cache.js';
import { NamespaceStore } from '../../cluster/namespaces.js';
import { shareNamesOf } from '../../cluster/pod-request.js';
import { applyPatch } from './helpers.js';
import { hamiNode, sharePod } from '../helpers/hami-agent.js';

const config = loadConfig({ env: {} });
const names = shareNamesOf(config.sharing)!;
const policy = policyFromConfig(config.webhooks, ['nvidia.com/gpu'], names);
const cache = new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 30000, recentPodWindow: 100, sharing: { names, handshakeTimeoutMs: 60000 } });
cache.replaceAll([hamiNode('small', { memMiB: 16000 }), hamiNode('large', { gpus: 4, memMiB: 81920 })], []);
const namespaces = new NamespaceStore();
namespaces.replaceAll([{ metadata: { name: 'team-a', labels: { 'sluice.io/queue': 'team-a' } } }]);
const facts: ClusterFacts = new CacheFacts(cache, namespaces);

const withShorthand = (v: string): V1Pod =>
  ({ metadata: { name: 'p', namespace: 'team-a', annotations: { 'sluice.io/gpus': v } }, spec: { containers: [{ name: 'main', image: 'x' }] } }) as V1Pod;
const mutated = (p: V1Pod): V1Pod => applyPatch(p, mutatePod({ pod: p, username: 'alice', nsLabels: namespaces.get('team-a'), policy, facts }).ops) as V1Pod;

t.test('the share form of sluice.io/gpus', async (t) => {
  const quarter = mutated(withShorthand('0.25'));
  t.same(quarter.spec!.containers[0]!.resources!.limits, { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem-percentage': '25', 'nvidia.com/gpucores': '25' });
  const mem = mutated(withShorthand('8Gi'));
  t.same(mem.spec!.containers[0]!.resources!.limits, { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '8192' });
  t.same(mutated(withShorthand('6000Mi')).spec!.containers[0]!.resources!.requests, { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '6000' });
  t.same(mutated(withShorthand('2')).spec!.containers[0]!.resources!.limits, { 'nvidia.com/gpu': '2' }, 'whole GPUs as before');
  t.same(
    mutatePod({ pod: quarter, username: 'alice', nsLabels: namespaces.get('team-a'), policy, facts }).ops.filter((o) => o.path.includes('resources')),
    [],
    'idempotent',
  );
  const v = checkPodSpec(quarter, namespaces.get('team-a'), 'alice', policy);
  t.ok(v !== null && !('allowed' in v && !v.allowed), 'the mutated pod validates');
  for (const bad of ['0.255', '1.5', '0', 'lots', '0.001']) {
    const sh = shorthandOf(withShorthand(bad));
    if (bad === '0') t.same(sh, { kind: 'ok', gpus: 0, container: 0 }, '"0" is zero GPUs');
    else t.match(sh, { kind: 'bad', message: /sluice.io\/gpus/ }, `"${bad}" refused: ${'message' in sh ? sh.message : ''}`);
  }
  const off = policyFromConfig(config.webhooks, ['nvidia.com/gpu'], null);
  const skipped = withShorthand('0.25');
  skipped.spec!.containers[0]!.resources = { limits: { 'nvidia.com/gpu': '1' } };
  t.match(checkPodSpec(skipped, namespaces.get('team-a'), 'alice', off), { allowed: false, message: /GPU sharing is off/ });
});

t.test('a share no GPU could ever hold is denied, naming the largest GPU', async (t) => {
  t.same(checkShares(sharePod('ok', { memMiB: 80000 }), policy, facts), { allowed: true });
  t.match(checkShares(sharePod('big', { memMiB: 90000 }), policy, facts), {
    allowed: false,
    code: 403,
    message:
      /pod asks 90000 MiB of GPU memory \(nvidia.com\/gpumem\) but the largest GPU is 81920 MiB with 100 cores \(GPU 0 of node large\); ask at most 81920/,
  });
  t.match(checkShares(sharePod('cores', { cores: 120 }), policy, facts), { allowed: false, code: 422 });
  const empty = new CacheFacts(new ClusterCache({ resources: ['nvidia.com/gpu'], assumeTtlMs: 1, recentPodWindow: 1 }), namespaces);
  t.same(checkShares(sharePod('big', { memMiB: 90000 }), policy, empty), { allowed: true }, 'no shared GPUs known: nothing to conclude');
});

t.test("a queue's quota at admission counts shares as fractions of a GPU", async (t) => {
  const queue = {
    name: 'team-a',
    parent: null,
    cohort: null,
    open: true,
    weight: 1,
    limits: [{ resource: 'nvidia.com/gpu', model: '', guaranteed: 1, bestEffortCap: 0, perJobMax: 0, perUserMax: 0 }],
  };
  const gang = (size: number, o: Parameters<typeof sharePod>[1]): V1Pod => {
    const p = sharePod('g-0', o);
    p.metadata!.labels = { 'sluice.io/queue': 'team-a', 'sluice.io/gang-size': String(size) };
    return p;
  };
  const verdict = (p: V1Pod) => {
    const ask = checkPodSpec(p, namespaces.get('team-a'), 'alice', policy);
    if (!isJobAsk(ask)) throw new Error(`not a job: ${JSON.stringify(ask)}`);
    return checkQueue(ask, { status: 'found', queue }, policy, facts);
  };
  t.same(verdict(gang(4, { percent: 25, cores: 25 })), { allowed: true }, 'four quarters: 1 GPU, within a guaranteed quota of 1');
  t.match(verdict(gang(5, { percent: 25, cores: 25 })), {
    allowed: false,
    message:
      "job asks 1.25 nvidia.com/gpu (5 pods of 0.25) but queue team-a's guaranteed quota is 1 (0.25 over), so it could never run; ask for fewer GPUs or a larger quota",
  });
  // 4000 MiB is priced on the smallest GPU that holds it (16000 MiB): 0.25 each.
  t.same(verdict(gang(4, { memMiB: 4000 })), { allowed: true });
  t.match(verdict(gang(2, { percent: 100 })), { allowed: false, message: /job asks 2 nvidia.com\/gpu \(2 pods of 1\)/ }, 'whole GPUs count whole');
});
