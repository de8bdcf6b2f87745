// kubeflow.org MPIJob (mpi-operator v2beta1, or the training operator's v1): Launcher and
// Worker replica specs. A launcher that asks no GPU is not a gang member.
// api-call: GET /apis/kubeflow.org/v2beta1/namespaces/{namespace}/mpijobs/{name}
import type { WorkloadKind } from './kind.js';
import { replicaSpecsGang } from './replica-specs.js';

export const mpiJob: WorkloadKind = {
  group: 'kubeflow.org',
  kind: 'MPIJob',
  resource: 'mpijobs',
  version: 'v2beta1',
  gang: (obj, _pod, gpuResources) => replicaSpecsGang(obj, 'mpiReplicaSpecs', gpuResources),
};
