// What the informers keep of a Pod or Node as it arrives from a list or watch (decoded
// JSON), before anything stores it: a V1Pod/V1Node-shaped object with only the fields
// sluice's readers use, so podRecord(), nodeFacts() and whoever reads the cache next work
// on it unchanged. A full Pod from a real cluster is 5-15 kB of JSON (managedFields, the
// container images, env, probes, volumes, status of every container); at 100,000 pods
// keeping them whole was most of sluice's memory.
//
// Kept, pods: metadata name, namespace, uid, labels, annotations (without kubectl's
// last-applied-configuration, a copy of the whole manifest nothing here reads),
// ownerReferences, creationTimestamp, deletionTimestamp, resourceVersion; spec nodeName,
// schedulingGates, priority, priorityClassName, nodeSelector, affinity.nodeAffinity,
// tolerations, overhead, containers[] and initContainers[] as name + resources (all
// requests and limits) + restartPolicy (sidecars); status phase and startTime.
// Kept, nodes: metadata name, uid, labels, resourceVersion, the hami.io/ annotations (HAMi's
// device registration, handshake and node lock; cluster/hami.ts); spec unschedulable and taints;
// status capacity, allocatable and conditions (type, status, reason).
//
// Pure; timestamps stay strings (podRecord reads both strings and Dates).
import type { V1Container, V1Node, V1NodeCondition, V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

type Raw = Record<string, unknown>;
const obj = (v: unknown): Raw | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Raw) : undefined);
const list = (v: unknown): unknown[] | undefined => (Array.isArray(v) ? v : undefined);

/** Copies the listed keys that are present (not undefined) from `from` into `to`. */
function pick(to: Raw, from: Raw | undefined, keys: readonly string[]): void {
  if (!from) return;
  for (const k of keys) if (from[k] !== undefined) to[k] = from[k];
}

const POD_META = ['name', 'namespace', 'uid', 'labels', 'ownerReferences', 'creationTimestamp', 'deletionTimestamp', 'resourceVersion'] as const;
const POD_SPEC = ['nodeName', 'schedulingGates', 'priority', 'priorityClassName', 'nodeSelector', 'tolerations', 'overhead'] as const;

function slimContainers(v: unknown): V1Container[] | undefined {
  const cs = list(v);
  if (!cs) return undefined;
  return cs.map((c) => {
    const o = obj(c);
    const out: Raw = {};
    pick(out, o, ['name', 'resources', 'restartPolicy']);
    return out as unknown as V1Container;
  });
}

function slimAnnotations(v: unknown): Record<string, string> | undefined {
  const a = obj(v);
  if (!a || a[LAST_APPLIED] === undefined) return a as Record<string, string> | undefined;
  const out: Record<string, string> = {};
  for (const k in a) if (k !== LAST_APPLIED) out[k] = a[k] as string;
  return out;
}

/** The Pod as sluice keeps it. */
export function slimPod(raw: unknown): V1Pod {
  const p = obj(raw) ?? {};
  const meta: Raw = {};
  const m = obj(p.metadata);
  pick(meta, m, POD_META);
  const annotations = slimAnnotations(m?.annotations);
  if (annotations) meta.annotations = annotations;
  const spec: Raw = {};
  const s = obj(p.spec);
  pick(spec, s, POD_SPEC);
  const nodeAffinity = obj(s?.affinity)?.nodeAffinity;
  if (nodeAffinity !== undefined) spec.affinity = { nodeAffinity };
  const containers = slimContainers(s?.containers);
  if (containers) spec.containers = containers;
  const init = slimContainers(s?.initContainers);
  if (init) spec.initContainers = init;
  const status: Raw = {};
  pick(status, obj(p.status), ['phase', 'startTime']);
  const out: V1Pod = { metadata: meta as V1ObjectMeta };
  if (s) out.spec = spec as unknown as V1PodSpec;
  if (p.status !== undefined) out.status = status;
  return out;
}

/** The Node as sluice keeps it. */
export function slimNode(raw: unknown): V1Node {
  const n = obj(raw) ?? {};
  const meta: Raw = {};
  const m = obj(n.metadata);
  pick(meta, m, ['name', 'uid', 'labels', 'resourceVersion']);
  const annotations = obj(m?.annotations);
  if (annotations) {
    let hami: Record<string, string> | undefined;
    for (const k in annotations) if (k.startsWith('hami.io/')) (hami ??= {})[k] = annotations[k] as string;
    if (hami) meta.annotations = hami;
  }
  const spec: Raw = {};
  pick(spec, obj(n.spec), ['unschedulable', 'taints']);
  const status: Raw = {};
  const st = obj(n.status);
  pick(status, st, ['capacity', 'allocatable']);
  const conds = list(st?.conditions);
  if (conds) {
    status.conditions = conds.map((c) => {
      const out: Raw = {};
      pick(out, obj(c), ['type', 'status', 'reason']);
      return out as unknown as V1NodeCondition;
    });
  }
  const out: V1Node = { metadata: meta as V1ObjectMeta, spec, status };
  return out;
}
