// A pod's workload: from its controlling owner up the chain of known kinds to the top
// one (a Job owned by a JobSet or a RayJob, a RayCluster owned by a RayJob), which is the
// job; its gang comes from the top workload's own spec (the kind's file). The objects come
// from an ObjectReader (reader.ts, cached); everything else here is pure.
//
// Rules, in order:
//   1. A pod labelled with a LeaderWorkerSet's name and owned by a StatefulSet belongs to
//      that LeaderWorkerSet; else its controlling owner must be a known kind; else it has
//      no workload (sluice names its job after the controller, as before).
//   2. Each object's controlling owner of a known kind is its parent, up to MAX_DEPTH.
//   3. An object that cannot be read (forbidden, not found, CRD missing, timeout), that is
//      not the object the owner reference names (uid differs), or whose spec gives no gang,
//      makes the pod "unreadable": it falls back to its own job, with the reason.
//   4. The workload's labels and annotations are those of the chain, the top's winning.
//   5. The gang size label to write: the chain's explicit sluice.io/gang-size, else the
//      spec's gang when above 1; none for an elastic workload.
import type { V1Pod } from '@kubernetes/client-node';
import { labelSafe, LABEL_GANG_SIZE } from '../webhooks/labels.js';
import { controllerOf } from '../webhooks/pod-facts.js';
import type { KubeObject, WorkloadKind, WorkloadRef } from './kind.js';
import { lwsOf } from './leaderworkerset.js';
import { kindOf } from './registry.js';

const MAX_DEPTH = 4;

export type ReadResult = { ok: KubeObject } | { missing: 'object' | 'kind'; reason: string } | { error: string };

export interface ObjectReader {
  /** The object `ref` names in `namespace`; a cached answer may come back synchronously. */
  read(kind: WorkloadKind, ref: WorkloadRef, namespace: string): ReadResult | Promise<ReadResult>;
}

export interface Workload {
  /** The top workload, e.g. "PyTorchJob train". */
  top: string;
  /** The sluice.io/job value. */
  job: string;
  /** The sluice.io/gang-size value to write, or undefined (elastic: pods start one by one). */
  gangSize: string | undefined;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

export type Resolution = { status: 'none' } | { status: 'found'; workload: Workload } | { status: 'unreadable'; reason: string };

/** No known workload owns the pod. */
export const NO_WORKLOAD: Resolution = Object.freeze({ status: 'none' });

/** Rule 1: where the pod's workload chain starts, if anywhere. */
export function entryOf(pod: V1Pod): { kind: WorkloadKind; ref: WorkloadRef } | undefined {
  const owner = controllerOf(pod);
  const lws = lwsOf(pod, owner);
  const ref: WorkloadRef | undefined =
    lws ?? (owner ? { apiVersion: owner.apiVersion ?? '', kind: owner.kind, name: owner.name, uid: owner.uid ?? '' } : undefined);
  const kind = ref ? kindOf(ref.apiVersion, ref.kind) : undefined;
  return kind && ref ? { kind, ref } : undefined;
}

function parentOf(obj: KubeObject): { kind: WorkloadKind; ref: WorkloadRef } | undefined {
  for (const r of obj.metadata?.ownerReferences ?? []) {
    if (r?.controller !== true || typeof r.kind !== 'string' || typeof r.name !== 'string') continue;
    const kind = kindOf(r.apiVersion ?? '', r.kind);
    return kind ? { kind, ref: { apiVersion: r.apiVersion ?? '', kind: r.kind, name: r.name, uid: r.uid ?? '' } } : undefined;
  }
  return undefined;
}

export async function resolveWorkload(pod: V1Pod, namespace: string, reader: ObjectReader, gpuResources: readonly string[]): Promise<Resolution> {
  let at = entryOf(pod);
  if (!at) return NO_WORKLOAD;
  const chain: Array<{ kind: WorkloadKind; obj: KubeObject }> = [];
  for (let depth = 0; at && depth < MAX_DEPTH; depth++) {
    const { kind, ref } = at;
    const what = `${ref.kind} ${namespace}/${ref.name}`;
    const r = await reader.read(kind, ref, namespace);
    if (!('ok' in r)) return { status: 'unreadable', reason: `${what} cannot be read: ${'error' in r ? r.error : r.reason}` };
    const uid = r.ok.metadata?.uid;
    if (ref.uid !== '' && uid !== undefined && uid !== ref.uid) {
      return {
        status: 'unreadable',
        reason: `${what} is not the object this pod belongs to (uid ${uid}, owner reference ${ref.uid}): it was deleted and another took its name`,
      };
    }
    chain.push({ kind, obj: r.ok });
    at = parentOf(r.ok);
  }
  const top = chain[chain.length - 1]!;
  const topName = top.obj.metadata?.name ?? '';
  const what = `${top.kind.kind} ${namespace}/${topName}`;
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  for (const { obj } of chain) {
    Object.assign(labels, obj.metadata?.labels);
    Object.assign(annotations, obj.metadata?.annotations);
  }
  const named = top.kind.jobName ? top.kind.jobName(top.obj, pod) : `${top.kind.kind.toLowerCase()}-${topName}`;
  if (typeof named !== 'string') return { status: 'unreadable', reason: `${what}: ${named.problem}` };
  const explicit = labels[LABEL_GANG_SIZE] ?? annotations[LABEL_GANG_SIZE];
  let gangSize = explicit;
  if (explicit === undefined) {
    const gang = top.kind.gang(top.obj, pod, gpuResources);
    if ('problem' in gang) return { status: 'unreadable', reason: `${what} gives no gang: ${gang.problem}` };
    gangSize = 'size' in gang && gang.size > 1 ? String(gang.size) : undefined;
  }
  return { status: 'found', workload: { top: `${top.kind.kind} ${topName}`, job: labelSafe(named), gangSize, labels, annotations } };
}
