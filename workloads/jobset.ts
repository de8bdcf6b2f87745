// jobset.x-k8s.io JobSet: its child Jobs (each owned by the JobSet) run as one workload.
// The gang is the sum over spec.replicatedJobs of replicas x the pods each Job runs at
// once (min(parallelism, completions), both defaulting to 1), counting the replicated
// jobs whose pod template asks a GPU.
// api-call: GET /apis/jobset.x-k8s.io/v1alpha2/namespaces/{namespace}/jobsets/{name}
import { asObject, countField, specOf, sumGang, templateAsksGpu, type WorkloadKind } from './kind.js';

export const jobSet: WorkloadKind = {
  group: 'jobset.x-k8s.io',
  kind: 'JobSet',
  resource: 'jobsets',
  version: 'v1alpha2',
  gang(obj, _pod, gpuResources) {
    const list = specOf(obj)?.replicatedJobs;
    if (!Array.isArray(list)) return { problem: 'spec.replicatedJobs is not a list' };
    const parts = list.map((rj, i): number | string => {
      const r = asObject(rj);
      const at = `spec.replicatedJobs[${i}]`;
      const replicas = countField(r?.replicas, `${at}.replicas`, 1);
      const jobSpec = asObject(asObject(r?.template)?.spec);
      const parallelism = countField(jobSpec?.parallelism, `${at}.template.spec.parallelism`, 1);
      if (typeof replicas === 'string') return replicas;
      if (typeof parallelism === 'string') return parallelism;
      const completions = countField(jobSpec?.completions, `${at}.template.spec.completions`, parallelism);
      if (typeof completions === 'string') return completions;
      return templateAsksGpu(jobSpec?.template, gpuResources) ? replicas * Math.min(parallelism, completions) : 0;
    });
    return sumGang(parts, 'the JobSet');
  },
};
