// The workload kinds sluice knows, one file each. Adding a kind: a file with its
// WorkloadKind (and its api-call comment, which the RBAC check reads), listed here, and
// `get` on its resource in manifests/base/rbac.yaml and the Helm chart.
import type { WorkloadKind } from './kind.js';
import { groupOf } from './kind.js';
import { job } from './job.js';
import { jobSet } from './jobset.js';
import { leaderWorkerSet } from './leaderworkerset.js';
import { mpiJob } from './mpijob.js';
import { pyTorchJob } from './pytorchjob.js';
import { rayCluster } from './raycluster.js';
import { rayJob } from './rayjob.js';
import { tfJob } from './tfjob.js';

export const WORKLOAD_KINDS: readonly WorkloadKind[] = [job, jobSet, pyTorchJob, tfJob, mpiJob, rayCluster, rayJob, leaderWorkerSet];

const byGroupKind = new Map(WORKLOAD_KINDS.map((k) => [`${k.group}/${k.kind}`, k]));

/** The kind an ownerReference (apiVersion, kind) names, if sluice knows it. */
export function kindOf(apiVersion: string, kind: string): WorkloadKind | undefined {
  return byGroupKind.get(`${groupOf(apiVersion)}/${kind}`);
}
