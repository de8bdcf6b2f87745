// kubeflow.org TFJob (training operator): Chief, PS, Worker, Evaluator replica specs.
// api-call: GET /apis/kubeflow.org/v1/namespaces/{namespace}/tfjobs/{name}
import type { WorkloadKind } from './kind.js';
import { replicaSpecsGang } from './replica-specs.js';

export const tfJob: WorkloadKind = {
  group: 'kubeflow.org',
  kind: 'TFJob',
  resource: 'tfjobs',
  version: 'v1',
  gang: (obj, _pod, gpuResources) => replicaSpecsGang(obj, 'tfReplicaSpecs', gpuResources),
};
