// kubeflow.org PyTorchJob (training operator): Master and Worker replica specs.
// api-call: GET /apis/kubeflow.org/v1/namespaces/{namespace}/pytorchjobs/{name}
import type { WorkloadKind } from './kind.js';
import { replicaSpecsGang } from './replica-specs.js';

export const pyTorchJob: WorkloadKind = {
  group: 'kubeflow.org',
  kind: 'PyTorchJob',
  resource: 'pytorchjobs',
  version: 'v1',
  gang: (obj, _pod, gpuResources) => replicaSpecsGang(obj, 'pytorchReplicaSpecs', gpuResources),
};
