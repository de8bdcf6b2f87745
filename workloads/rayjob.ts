// ray.io RayJob (KubeRay): owns the RayCluster it creates (and the submitter Job). The
// job is the RayJob; its gang is that of spec.rayClusterSpec (raycluster.ts).
// api-call: GET /apis/ray.io/v1/namespaces/{namespace}/rayjobs/{name}
import { asObject, specOf, type WorkloadKind } from './kind.js';
import { rayClusterGang } from './raycluster.js';

export const rayJob: WorkloadKind = {
  group: 'ray.io',
  kind: 'RayJob',
  resource: 'rayjobs',
  version: 'v1',
  gang: (obj, _pod, gpuResources) => rayClusterGang(asObject(specOf(obj)?.rayClusterSpec), 'spec.rayClusterSpec', gpuResources),
};
