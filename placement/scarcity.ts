// How scarce the homes of each ask shape are. The fragmentation policy weighs a shape's
// fragment by how often the shape arrives times its scarcity: a shape that only a few nodes
// can ever take (eight GPUs and 120 CPUs, one GPU model) loses much more when one of those
// nodes is broken up than a shape every node can take. Without it, the policy spent the
// only nodes big enough for a rare large shape on pods that fit anywhere, and those large
// pods failed from 60 % of the cluster allocated on (openb multigpu50, README "Placement
// quality"). Pure: node classes and the mix in, the mix with scarcity out.
import { modelAccepted } from './gpu-model.js';
import { WHOLE, type SizeMix, type SizeMixEntry } from './types.js';

/** Nodes alike in what an empty one can take: GPUs, GPU product, CPU and memory. */
export interface NodeClass {
  gpus: number;
  product: string;
  /** Allocatable CPU (milli) and memory (MiB); undefined when not known (not checked). */
  cpuMilli?: number | undefined;
  memMiB?: number | undefined;
  /** How many nodes the class has. */
  nodes: number;
}

/** A shape's scarcity = (GPUs in the cluster / GPUs on nodes that could take one copy of
 * it when empty) ^ SCARCITY_EXPONENT. Tuned on the four shared openb lists: 1 kept the
 * large pods' early failures at a tenth of what 0 gave, 2 removed them. */
export const SCARCITY_EXPONENT = 2;

/** Key of a node's class (see NodeClass). */
export const nodeClassKey = (c: Omit<NodeClass, 'nodes'>): string => `${c.gpus}/${c.product}/${c.cpuMilli ?? ''}/${c.memMiB ?? ''}`;

/** Groups nodes into classes; nodes without GPUs are left out. */
export function nodeClasses(nodes: Iterable<Omit<NodeClass, 'nodes'>>): NodeClass[] {
  const byKey = new Map<string, NodeClass>();
  for (const n of nodes) {
    if (n.gpus <= 0) continue;
    const k = nodeClassKey(n);
    const c = byKey.get(k);
    if (c) c.nodes++;
    else byKey.set(k, { gpus: n.gpus, product: n.product, cpuMilli: n.cpuMilli, memMiB: n.memMiB, nodes: 1 });
  }
  return [...byKey.values()];
}

/** Could an empty node of the class take one copy of the shape. */
export function classTakes(c: NodeClass, t: SizeMixEntry): boolean {
  if (c.gpus < (t.milli >= WHOLE ? t.count : 1)) return false;
  if (t.cpuMilli !== undefined && c.cpuMilli !== undefined && t.cpuMilli > c.cpuMilli) return false;
  if (t.memMiB !== undefined && c.memMiB !== undefined && t.memMiB > c.memMiB) return false;
  return !t.models || t.models.length === 0 || modelAccepted(c.product, t.models);
}

/** The mix with each GPU shape's `scarcity` set, scaled so that the scarcity-weighted
 * weights sum to 1 (weights themselves, the arrival frequencies, are unchanged). A shape
 * no class can take gets scarcity 1 before scaling: it fails everywhere alike. */
export function withScarcity(mix: SizeMix, classes: readonly NodeClass[]): SizeMix {
  let all = 0;
  for (const c of classes) all += c.gpus * c.nodes;
  if (all === 0) return mix;
  const raw = mix.map((t) => {
    if (t.count === 0) return 1;
    let homes = 0;
    for (const c of classes) if (classTakes(c, t)) homes += c.gpus * c.nodes;
    return homes > 0 ? (all / homes) ** SCARCITY_EXPONENT : 1;
  });
  let sum = 0;
  for (let i = 0; i < mix.length; i++) sum += mix[i]!.weight * raw[i]!;
  if (!(sum > 0)) return mix;
  // One object literal with every field, not a spread: entries made by spreading and adding
  // a field made fragmentation() 5-7x slower (V8 kept migrating their maps; measured with
  // the gpuspec33 list's 422 shapes), which took the trace simulation from 2 to 10 minutes.
  return mix.map((t, i) => ({
    count: t.count,
    milli: t.milli,
    weight: t.weight,
    cpuMilli: t.cpuMilli,
    memMiB: t.memMiB,
    models: t.models,
    scarcity: raw[i]! / sum,
  }));
}
