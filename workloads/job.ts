// batch/v1 Job. Most Jobs are elastic (each pod is useful alone: a sweep, a batch of
// inferences), so a Job is one gang only when it asks for it with the annotation (or
// label) sluice.io/gang: "true"; its gang is then the pods running at once,
// min(parallelism, completions). A Job owned by a JobSet or a RayJob is a part of that
// workload (resolve.ts climbs to it).
// api-call: GET /apis/batch/v1/namespaces/{namespace}/jobs/{name}
import { countField, specOf, templateAsksGpu, type Gang, type KubeObject, type WorkloadKind } from './kind.js';

/** Annotation (or label) on a Job: "true" = its pods start together. */
export const ANN_GANG = 'sluice.io/gang';

export const job: WorkloadKind = {
  group: 'batch',
  kind: 'Job',
  resource: 'jobs',
  version: 'v1',
  gang(obj, _pod, gpuResources) {
    return jobGang(obj, gpuResources);
  },
};

function jobGang(obj: KubeObject, gpuResources: readonly string[]): Gang {
  const asked = obj.metadata?.annotations?.[ANN_GANG] ?? obj.metadata?.labels?.[ANN_GANG];
  if (asked === undefined || asked === 'false') return { elastic: true };
  if (asked !== 'true') return { problem: `${ANN_GANG} is "${asked}"; write "true" (start all pods together) or "false"` };
  const spec = specOf(obj);
  const parallelism = countField(spec?.parallelism, 'spec.parallelism', 1);
  if (typeof parallelism === 'string') return { problem: parallelism };
  const completions = countField(spec?.completions, 'spec.completions', parallelism);
  if (typeof completions === 'string') return { problem: completions };
  if (!templateAsksGpu(spec?.template, gpuResources)) return { problem: "the Job's pod template asks no GPU, yet this pod does" };
  const size = Math.min(parallelism, completions);
  return size >= 1 ? { size } : { elastic: true };
}
