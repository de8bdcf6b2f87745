// Per kind: the gang from the workload's own spec (only GPU pods count), and the owner
// chain from a pod to the top workload (resolve.ts), with objects served from memory.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { job as jobKind } from '../../workloads/job.js';
import { jobSet as jobSetKind } from '../../workloads/jobset.js';
import type { KubeObject, WorkloadKind, WorkloadRef } from '../../workloads/kind.js';
import { leaderWorkerSet as lwsKind } from '../../workloads/leaderworkerset.js';
import { mpiJob as mpiKind } from '../../workloads/mpijob.js';
import { pyTorchJob as ptKind } from '../../workloads/pytorchjob.js';
import { rayCluster as rcKind } from '../../workloads/raycluster.js';
import { rayJob as rjKind } from '../../workloads/rayjob.js';
import { kindOf } from '../../workloads/registry.js';
import { resolveWorkload, type ObjectReader, type ReadResult } from '../../workloads/resolve.js';
import { tfJob as tfKind } from '../../workloads/tfjob.js';
import { childJob, GPU, job, jobSet, leaderWorkerSet, lwsPod, mpiJob, NS, podOf, pyTorchJob, rayCluster, rayJob, template, tfJob } from './fixtures.js';

const R = [GPU];
const anyPod = podOf({ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'x' }, 'p');
const gang = (k: WorkloadKind, o: KubeObject, pod: V1Pod = anyPod) => k.gang(o, pod, R);

t.test('PyTorchJob, TFJob, MPIJob: the sum of the replica specs that ask a GPU', async (t) => {
  t.same(gang(ptKind, pyTorchJob('mnist', 7)), { size: 8 }, 'Master + 7 Workers');
  const cpuMaster = pyTorchJob('m', 3);
  (cpuMaster.spec as any).pytorchReplicaSpecs.Master.template = template(0);
  t.same(gang(ptKind, cpuMaster), { size: 3 }, 'a CPU-only Master is no member');
  const noReplicas = pyTorchJob('d', 2);
  delete (noReplicas.spec as any).pytorchReplicaSpecs.Master.replicas;
  t.same(gang(ptKind, noReplicas), { size: 3 }, 'replicas defaults to 1');
  t.same(gang(tfKind, tfJob('tf')), { size: 4 }, 'Chief + 3 Workers; CPU-only PS not counted');
  t.same(gang(mpiKind, mpiJob('pi', 4)), { size: 4 }, 'CPU-only launcher not counted');
  const bad = mpiJob('bad', 2);
  (bad.spec as any).mpiReplicaSpecs.Worker.replicas = 'two';
  t.same(gang(mpiKind, bad), { problem: 'spec.mpiReplicaSpecs.Worker.replicas is "two", not a whole number' });
  t.match(gang(ptKind, { ...pyTorchJob('x', 1), spec: {} }), { problem: /spec\.pytorchReplicaSpecs is not a map/ });
  const allCpu = pyTorchJob('c', 1, 0);
  t.match(gang(ptKind, allCpu), { problem: /no pod template .* asks a GPU, yet this pod does/ });
});

t.test('JobSet: replicas x parallelism over the replicated jobs that ask a GPU', async (t) => {
  t.same(gang(jobSetKind, jobSet('js', 4, 2)), { size: 8 }, '4 Jobs x 2 pods; the CPU driver is no member');
  const fewer = jobSet('js', 2, 4);
  (fewer.spec as any).replicatedJobs[0].template.spec.completions = 1;
  t.same(gang(jobSetKind, fewer), { size: 2 }, 'a Job runs min(parallelism, completions) pods at once');
  t.same(gang(jobSetKind, { ...jobSet('x', 1, 1), spec: { replicatedJobs: 'no' } }), { problem: 'spec.replicatedJobs is not a list' });
});

t.test('RayCluster and RayJob: head + guaranteed workers; autoscaled ones are elastic', async (t) => {
  t.same(gang(rcKind, rayCluster('rc', { replicas: 3, minReplicas: 1 })), { size: 3 }, 'no autoscaler: the replicas; CPU head no member');
  t.same(gang(rcKind, rayCluster('rc', { replicas: 3, minReplicas: 1, headGpus: 1 })), { size: 4 }, 'a GPU head counts');
  t.same(gang(rcKind, rayCluster('rc', { replicas: 3, minReplicas: 2, autoscaling: true })), { size: 2 }, 'autoscaler on: minReplicas');
  t.same(gang(rcKind, rayCluster('rc', { replicas: 2, minReplicas: 2, autoscaling: true, hosts: 2 })), { size: 4 }, 'x numOfHosts (multi-host groups)');
  t.same(gang(rcKind, rayCluster('rc', { replicas: 1, minReplicas: 0, autoscaling: true })), { elastic: true }, 'nothing guaranteed: all GPU workers elastic');
  t.same(gang(rjKind, rayJob('rj', { replicas: 2, minReplicas: 2 })), { size: 2 }, 'RayJob: from spec.rayClusterSpec');
  t.match(gang(rjKind, { ...rayJob('rj', { replicas: 1, minReplicas: 1 }), spec: {} }), { problem: 'spec.rayClusterSpec is missing' });
});

t.test('LeaderWorkerSet: each group is one gang of size; the job is the group', async (t) => {
  const lws = leaderWorkerSet('vllm', 2, 4);
  t.same(gang(lwsKind, lws), { size: 4 });
  t.equal(lwsKind.jobName!(lws, lwsPod(lws, 1, 2)), 'leaderworkerset-vllm-1');
  t.match(lwsKind.jobName!(lws, podOf(lws, 'x')), { problem: /group-index/ });
  const cpuLeader = structuredClone(lws);
  (cpuLeader.spec as any).leaderWorkerTemplate.leaderTemplate = template(0);
  t.same(gang(lwsKind, cpuLeader), { size: 3 }, 'a CPU-only leader is no member');
});

t.test('Job: elastic unless it asks for a gang', async (t) => {
  t.same(gang(jobKind, job('sweep', 8)), { elastic: true });
  t.same(gang(jobKind, job('ddp', 4, { 'sluice.io/gang': 'true' })), { size: 4 });
  t.same(gang(jobKind, job('no', 4, { 'sluice.io/gang': 'false' })), { elastic: true });
  t.match(gang(jobKind, job('typo', 4, { 'sluice.io/gang': 'yes' })), { problem: /sluice.io\/gang is "yes"; write "true"/ });
});

t.test('kinds are recognised by API group and kind, any version', async (t) => {
  t.equal(kindOf('kubeflow.org/v1', 'MPIJob'), mpiKind);
  t.equal(kindOf('kubeflow.org/v2beta1', 'MPIJob'), mpiKind);
  t.equal(kindOf('ray.io/v1alpha1', 'RayCluster'), rcKind);
  t.equal(kindOf('apps/v1', 'ReplicaSet'), undefined);
  t.equal(kindOf('example.com/v1', 'Job'), undefined, 'same kind name in another group is not a Job');
});

/** Objects served from memory, keyed like the apiserver (kind + namespace + name). */
function memoryReader(objects: KubeObject[], fail: Record<string, ReadResult> = {}): ObjectReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    read(kind: WorkloadKind, ref: WorkloadRef, namespace: string): ReadResult {
      const key = `${kind.kind}/${namespace}/${ref.name}`;
      reads.push(key);
      if (fail[key]) return fail[key]!;
      const o = objects.find((x) => x.kind === kind.kind && x.metadata?.namespace === namespace && x.metadata?.name === ref.name);
      return o ? { ok: o } : { missing: 'object', reason: 'not found (deleted?)' };
    },
  };
}

t.test('owner chain: the top known workload is the job', async (t) => {
  const js = jobSet('llm', 4, 2, { labels: { 'sluice.io/queue': 'research' } });
  const child = childJob(js, 'llm-workers-0', 2);
  const r = await resolveWorkload(podOf(child, 'llm-workers-0-0'), NS, memoryReader([js, child]), R);
  t.match(r, { status: 'found', workload: { top: 'JobSet llm', job: 'jobset-llm', gangSize: '8' } }, 'a Job owned by a JobSet is part of the JobSet');
  t.equal(r.status === 'found' && r.workload.labels['sluice.io/queue'], 'research', "the JobSet's labels reach the pod");

  const rj = rayJob('rj', { replicas: 2, minReplicas: 2 });
  const rc = rayCluster(
    'rj-raycluster-abc',
    { replicas: 2, minReplicas: 2 },
    { ownerReferences: [{ apiVersion: 'ray.io/v1', kind: 'RayJob', name: 'rj', uid: rj.metadata!.uid!, controller: true }] },
  );
  t.match(
    await resolveWorkload(podOf(rc, 'w0'), NS, memoryReader([rj, rc]), R),
    { status: 'found', workload: { top: 'RayJob rj', job: 'rayjob-rj', gangSize: '2' } },
    'a RayCluster owned by a RayJob is part of the RayJob',
  );

  const pt = pyTorchJob('mnist', 3);
  t.match(await resolveWorkload(podOf(pt, 'mnist-worker-0'), NS, memoryReader([pt]), R), {
    status: 'found',
    workload: { job: 'pytorchjob-mnist', gangSize: '4' },
  });

  const lws = leaderWorkerSet('vllm', 2, 4);
  const reader = memoryReader([lws]);
  t.match(
    await resolveWorkload(lwsPod(lws, 1, 3), NS, reader, R),
    { status: 'found', workload: { job: 'leaderworkerset-vllm-1', gangSize: '4' } },
    'an LWS pod via its StatefulSet and labels',
  );
  t.same(reader.reads, ['LeaderWorkerSet/team-a/vllm'], 'the StatefulSet is not read');

  const elastic = job('sweep', 8);
  t.match(
    await resolveWorkload(podOf(elastic, 'sweep-0'), NS, memoryReader([elastic]), R),
    { status: 'found', workload: { job: 'job-sweep', gangSize: undefined } },
    'a plain Job: elastic',
  );

  const rs = podOf({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d9', uid: 'rs' }, 'web-5d9-x');
  const none = memoryReader([]);
  t.same(await resolveWorkload(rs, NS, none, R), { status: 'none' }, 'a ReplicaSet is no workload kind');
  t.same(none.reads, [], 'and nothing is read for it');
});

t.test('an explicit sluice.io/gang-size on the workload wins over its spec', async (t) => {
  const pt = pyTorchJob('mnist', 3, 1, { labels: { 'sluice.io/gang-size': '2' } });
  t.match(await resolveWorkload(podOf(pt, 'p'), NS, memoryReader([pt]), R), { status: 'found', workload: { gangSize: '2' } });
});

t.test("a workload that cannot be read, or is not the pod's: unreadable, with the reason", async (t) => {
  const js = jobSet('llm', 4, 2);
  const child = childJob(js, 'llm-workers-0', 2);
  const forbidden = memoryReader([js, child], { 'JobSet/team-a/llm': { error: 'sluice may not read jobsets.jobset.x-k8s.io (403 forbidden)' } });
  t.match(
    await resolveWorkload(podOf(child, 'p'), NS, forbidden, R),
    { status: 'unreadable', reason: /^JobSet team-a\/llm cannot be read: sluice may not read jobsets/ },
    'a parent that is forbidden: no partial answer',
  );

  const pt = pyTorchJob('mnist', 3);
  const pod = podOf(pt, 'p');
  pod.metadata!.ownerReferences![0]!.uid = 'an-older-uid';
  t.match(await resolveWorkload(pod, NS, memoryReader([pt]), R), { status: 'unreadable', reason: /deleted and another took its name/ });

  const malformed = pyTorchJob('bad', 1);
  (malformed.spec as any).pytorchReplicaSpecs.Worker.replicas = -1;
  t.match(await resolveWorkload(podOf(malformed, 'p'), NS, memoryReader([malformed]), R), {
    status: 'unreadable',
    reason: /PyTorchJob team-a\/bad gives no gang: .*replicas is -1/,
  });

  t.match(await resolveWorkload(podOf(pt, 'p'), NS, memoryReader([]), R), { status: 'unreadable', reason: /not found/ }, 'deleted');
});
