// Loads a cluster snapshot - the output of `kubectl get nodes,pods -A -o json` - into a
// ClusterCache. Used by `sluice serve --cluster-snapshot FILE` (no apiserver: try sluice,
// replay a captured cluster, benchmark) and by tests.
import { readFileSync } from 'node:fs';
import type { V1Namespace, V1Node, V1Pod, V1PriorityClass } from '@kubernetes/client-node';
import type { InMemoryCluster } from './in-memory.js';

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

export interface Snapshot {
  nodes: V1Node[];
  pods: V1Pod[];
  /** Namespaces, when the file has them (kubectl get nodes,pods,namespaces -A -o json): the webhooks read their labels. */
  namespaces: V1Namespace[];
  /** PriorityClasses, when the file has them (kubectl get nodes,pods,namespaces,priorityclasses -A -o json). */
  priorityClasses: V1PriorityClass[];
}

/** Accepts a v1 List of Nodes, Pods (and Namespaces, PriorityClasses), a NodeList/PodList, or {nodes, pods, namespaces?, priorityClasses?}. */
export function parseSnapshot(doc: unknown, source = 'snapshot'): Snapshot {
  if (typeof doc !== 'object' || doc === null) throw new SnapshotError(`${source} is not a JSON object`);
  const d = doc as { items?: unknown; nodes?: unknown; pods?: unknown; kind?: unknown };
  if (Array.isArray(d.nodes) || Array.isArray(d.pods)) {
    const namespaces = Array.isArray((d as { namespaces?: unknown }).namespaces) ? (d as { namespaces: V1Namespace[] }).namespaces : [];
    const priorityClasses = Array.isArray((d as { priorityClasses?: unknown }).priorityClasses)
      ? (d as { priorityClasses: V1PriorityClass[] }).priorityClasses
      : [];
    return { nodes: (d.nodes ?? []) as V1Node[], pods: (d.pods ?? []) as V1Pod[], namespaces, priorityClasses };
  }
  if (!Array.isArray(d.items)) throw new SnapshotError(`${source} has neither "items" (kubectl -o json) nor "nodes"/"pods"`);
  const listKind = typeof d.kind === 'string' ? d.kind : '';
  const nodes: V1Node[] = [];
  const pods: V1Pod[] = [];
  const namespaces: V1Namespace[] = [];
  const priorityClasses: V1PriorityClass[] = [];
  for (const item of d.items as Array<{ kind?: string }>) {
    const kind = item?.kind ?? (listKind === 'NodeList' ? 'Node' : listKind === 'PodList' ? 'Pod' : '');
    if (kind === 'Node') nodes.push(item as V1Node);
    else if (kind === 'Pod') pods.push(item as V1Pod);
    else if (kind === 'Namespace') namespaces.push(item as V1Namespace);
    else if (kind === 'PriorityClass') priorityClasses.push(item as V1PriorityClass);
  }
  return { nodes, pods, namespaces, priorityClasses };
}

/** Reads the file and loads it into snapshot mode's cluster (and so into its cache). */
export function loadSnapshotFile(path: string, cluster: InMemoryCluster): Snapshot {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new SnapshotError(`cluster snapshot ${path} cannot be read as JSON: ${(e as Error).message}`);
  }
  const snap = parseSnapshot(doc, `cluster snapshot ${path}`);
  cluster.load(snap);
  return snap;
}
