// Can this pod run on this node, as sluice checks it. The one check filter and bind share:
// a bind (which anyone who reaches the extender can send) must not place a pod where filter
// would not have passed it (issue 22, defect 5: an H100-only pod bound to an A100 node, a
// bind to a cordoned node accepted). Rules, in order:
//  1. sluice knows the node: it has a view of every resource the pod asks;
//  2. every GPU ask fits (fit.ts: health and cordon, model, size, free GPUs, CPU/memory);
//  3. the node's labels satisfy the pod's spec.nodeSelector and required node affinity.
import { fit, type Misfit } from './fit.js';
import { nodeMatches, type SelectorTerm } from './node-selector.js';
import type { GpuAsk, NodeView } from './types.js';

export const UNKNOWN_NODE = "not in sluice's cache (deleted, or not seen yet)";

/** What of a pod decides where it may run. */
export interface PodNeeds {
  asks: readonly GpuAsk[];
  nodeSelector: Readonly<Record<string, string>>;
  affinityTerms: readonly SelectorTerm[] | null;
}

/** How the caller looks up a node `N` (a name, a request's Node object, ...). */
export interface NodeLookup<N> {
  name(node: N): string;
  view(node: N, resource: string): NodeView | undefined;
  labels(node: N): Readonly<Record<string, string>> | undefined;
}

export type PodMisfit = Misfit | { reason: string; resolvable: false; kind: 'unknown_node' | 'node_selector' };

/** null when the pod may run on the node, else the first rule it breaks. */
export function podFitsNode<N>(pod: PodNeeds, node: N, nodes: NodeLookup<N>): PodMisfit | null {
  for (const a of pod.asks) {
    const v = nodes.view(node, a.resource);
    if (!v) return { reason: UNKNOWN_NODE, resolvable: false, kind: 'unknown_node' };
    const m = fit(v, a);
    if (m) return m;
  }
  const terms = pod.affinityTerms;
  if (Object.keys(pod.nodeSelector).length === 0 && (!terms || terms.length === 0)) return null;
  const name = nodes.name(node);
  if (!nodeMatches(name, nodes.labels(node) ?? {}, pod.nodeSelector, terms)) {
    return { reason: `node ${name} does not match the pod's spec.nodeSelector or required node affinity`, resolvable: false, kind: 'node_selector' };
  }
  return null;
}
