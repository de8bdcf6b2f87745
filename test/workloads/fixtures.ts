// Workload manifests shaped like the operators' own examples (Kubeflow's mnist
// PyTorchJob, the JobSet and KubeRay samples, LWS's sample), and the pods their operators
// would make, with the owner references they set. Shared by the workload tests.
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeObject } from '../../workloads/kind.js';

export const GPU = 'nvidia.com/gpu';
export const NS = 'team-a';

let seq = 0;
const uid = (what: string): string => `${what}-uid-${++seq}`;

/** A pod template asking `gpus` GPUs (0: none, CPU only). */
export function template(gpus: number, name = 'main'): Record<string, unknown> {
  const resources = gpus > 0 ? { limits: { [GPU]: String(gpus) }, requests: { [GPU]: String(gpus) } } : { requests: { cpu: '1' } };
  return {
    metadata: {},
    spec: { containers: [{ name, image: 'docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727', resources }], restartPolicy: 'OnFailure' },
  };
}

function object(apiVersion: string, kind: string, name: string, spec: unknown, meta: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: NS, uid: uid(kind.toLowerCase()), ...meta }, spec };
}

export const ownerRef = (o: KubeObject) => ({
  apiVersion: o.apiVersion!,
  kind: o.kind!,
  name: o.metadata!.name!,
  uid: o.metadata!.uid!,
  controller: true,
  blockOwnerDeletion: true,
});

/** PyTorchJob with one Master and `workers` Workers, `gpus` each (Kubeflow's pytorch-simple example). */
export function pyTorchJob(name: string, workers: number, gpus = 1, meta: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject {
  return object(
    'kubeflow.org/v1',
    'PyTorchJob',
    name,
    {
      pytorchReplicaSpecs: {
        Master: { replicas: 1, restartPolicy: 'OnFailure', template: template(gpus, 'pytorch') },
        Worker: { replicas: workers, restartPolicy: 'OnFailure', template: template(gpus, 'pytorch') },
      },
    },
    meta,
  );
}

export function tfJob(name: string): KubeObject {
  return object('kubeflow.org/v1', 'TFJob', name, {
    tfReplicaSpecs: {
      Chief: { replicas: 1, template: template(1, 'tensorflow') },
      PS: { replicas: 2, template: template(0, 'tensorflow') },
      Worker: { replicas: 3, template: template(1, 'tensorflow') },
    },
  });
}

/** MPIJob v2beta1 with a CPU-only launcher (the mpi-operator's pi example shape). */
export function mpiJob(name: string, workers: number): KubeObject {
  return object('kubeflow.org/v2beta1', 'MPIJob', name, {
    slotsPerWorker: 1,
    mpiReplicaSpecs: {
      Launcher: { replicas: 1, template: template(0, 'mpi-launcher') },
      Worker: { replicas: workers, template: template(1, 'mpi-worker') },
    },
  });
}

/** JobSet: `replicas` Jobs of `parallelism` GPU pods each, plus a CPU-only driver Job. */
export function jobSet(name: string, replicas: number, parallelism: number, meta: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject {
  return object(
    'jobset.x-k8s.io/v1alpha2',
    'JobSet',
    name,
    {
      replicatedJobs: [
        { name: 'workers', replicas, template: { spec: { parallelism, completions: parallelism, backoffLimit: 0, template: template(8) } } },
        { name: 'driver', template: { spec: { template: template(0) } } },
      ],
    },
    meta,
  );
}

/** A child Job as the JobSet controller makes it (owned by the JobSet). */
export function childJob(parent: KubeObject, name: string, parallelism: number, meta: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject {
  return object('batch/v1', 'Job', name, { parallelism, completions: parallelism, template: template(8) }, { ownerReferences: [ownerRef(parent)], ...meta });
}

export function job(name: string, parallelism: number, annotations: Record<string, string> = {}): KubeObject {
  return object('batch/v1', 'Job', name, { parallelism, completions: parallelism, template: template(1) }, { annotations });
}

/** RayCluster: a CPU-only head and one GPU worker group (KubeRay's ray-cluster.sample shape). */
export function rayCluster(
  name: string,
  o: { replicas: number; minReplicas: number; autoscaling?: boolean; headGpus?: number; hosts?: number },
  meta: Partial<NonNullable<KubeObject['metadata']>> = {},
): KubeObject {
  return object('ray.io/v1', 'RayCluster', name, rayClusterSpec(o), meta);
}

export function rayClusterSpec(o: {
  replicas: number;
  minReplicas: number;
  autoscaling?: boolean;
  headGpus?: number;
  hosts?: number;
}): Record<string, unknown> {
  return {
    rayVersion: '2.9.0',
    enableInTreeAutoscaling: o.autoscaling ?? false,
    headGroupSpec: { rayStartParams: { 'dashboard-host': '0.0.0.0' }, template: template(o.headGpus ?? 0, 'ray-head') },
    workerGroupSpecs: [
      {
        groupName: 'gpu-group',
        replicas: o.replicas,
        minReplicas: o.minReplicas,
        maxReplicas: 10,
        ...(o.hosts ? { numOfHosts: o.hosts } : {}),
        rayStartParams: {},
        template: template(1, 'ray-worker'),
      },
    ],
  };
}

export function rayJob(name: string, cluster: { replicas: number; minReplicas: number }, meta: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject {
  return object('ray.io/v1', 'RayJob', name, { entrypoint: 'python /home/ray/samples/sample_code.py', rayClusterSpec: rayClusterSpec(cluster) }, meta);
}

/** LeaderWorkerSet: `replicas` groups of `size` GPU pods (LWS's sample). */
export function leaderWorkerSet(name: string, replicas: number, size: number): KubeObject {
  return object('leaderworkerset.x-k8s.io/v1', 'LeaderWorkerSet', name, {
    replicas,
    leaderWorkerTemplate: { size, restartPolicy: 'RecreateGroupOnPodRestart', workerTemplate: template(1, 'worker') },
  });
}

/** A pod as an operator makes it: owned by `owner`, from a template asking `gpus` GPUs. */
export function podOf(
  owner: KubeObject | { apiVersion: string; kind: string; name: string; uid: string },
  name: string,
  gpus = 1,
  labels: Record<string, string> = {},
): V1Pod {
  const ref = 'name' in owner ? { ...owner, controller: true, blockOwnerDeletion: true } : ownerRef(owner);
  const t = template(gpus) as { spec: V1Pod['spec'] };
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels, ownerReferences: [ref] }, spec: structuredClone(t.spec) };
}

/** An LWS pod: owned by a StatefulSet, labelled with the LWS's name and group index. */
export function lwsPod(lws: KubeObject, group: number, index: number): V1Pod {
  const sts = index === 0 ? lws.metadata!.name! : `${lws.metadata!.name}-${group}`;
  return podOf(
    { apiVersion: 'apps/v1', kind: 'StatefulSet', name: sts, uid: `sts-${sts}` },
    index === 0 ? `${lws.metadata!.name}-${group}` : `${lws.metadata!.name}-${group}-${index}`,
    1,
    {
      'leaderworkerset.sigs.k8s.io/name': lws.metadata!.name!,
      'leaderworkerset.sigs.k8s.io/group-index': String(group),
      'leaderworkerset.sigs.k8s.io/worker-index': String(index),
    },
  );
}
