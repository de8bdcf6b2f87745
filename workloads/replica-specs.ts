// The Kubeflow training operator's shape, shared by PyTorchJob, TFJob and MPIJob (and
// the operator's other kinds): spec.<x>ReplicaSpecs maps a role (Master, Worker, Chief,
// PS, Launcher, ...) to { replicas (default 1), template }. The gang is the sum of the
// replicas of the roles whose template asks a GPU.
import { asObject, countField, specOf, sumGang, templateAsksGpu, type Gang, type KubeObject } from './kind.js';

export function replicaSpecsGang(obj: KubeObject, field: string, gpuResources: readonly string[]): Gang {
  const specs = asObject(specOf(obj)?.[field]);
  if (!specs) return { problem: `spec.${field} is not a map of replica specs` };
  const parts = Object.entries(specs).map(([role, rs]): number | string => {
    const r = asObject(rs);
    if (!r) return `spec.${field}.${role} is not a replica spec`;
    const replicas = countField(r.replicas, `spec.${field}.${role}.replicas`, 1);
    if (typeof replicas === 'string') return replicas;
    return templateAsksGpu(r.template, gpuResources) ? replicas : 0;
  });
  return sumGang(parts, `the ${obj.kind ?? 'workload'}`);
}
