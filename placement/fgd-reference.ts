// FGD as its authors run it: the reference the trace simulator measures sluice against.
// Transcribed from the public artifact of the paper (Weng et al., "Beware of
// Fragmentation", USENIX ATC '23), github.com/hkust-adsl/kubernetes-scheduler-simulator
// at 8f3d641: pkg/utils/frag.go (GetTypicalPods, NodeGpuShareFragAmount,
// GetNodePodFrag), pkg/simulator/plugin/fgd_score.go (calculateGpuShareFragExtendScore)
// and pkg/type/resource.go (NodeResource.Sub). Not offered to pods by the extender.
//
// Target workload ("typical pods"): the pod list's shapes keyed by (CPU, GPU share, GPU
// count, GPU type string), CPU-only shapes included, most frequent first (equal counts:
// the larger shape by CPU, share, count, type first), cut where they cover 95 % of the
// pods, weights renormalized over the cut (podPopularityThreshold 95, podIncreaseStep 1,
// isInvolvedCpuPods true, gpuResWeight 0: scripts/generate_config_and_run.py defaults).
// Memory is not part of a shape and not part of fragmentation.
//
// Fragmentation of a node = sum over typical shapes of weight x:
//   all free GPU milli, when the shape is CPU-only (counted as XL or XR alike), the node's
//     GPU type is not one the shape accepts, the node lacks CPU for it, or fewer GPUs than
//     the shape's count have its share free;
//   else the free milli of the GPUs whose free share is below the shape's share.
// Score of a node for a pod = int(100 * sigmoid((frag before - frag after) / 1000)),
// truncated to an integer, where "after" takes the pod's CPU and:
//   share pod (1 GPU, < 1000 milli): each GPU it fits on, in index order; the best
//     integer score wins, the lowest index among equals;
//   other pods: the GPUs with the least sufficient free share first (ascending, stable),
//     i.e. the lowest-index idle GPUs for whole-GPU pods.
// Equal node scores: the artifact's scheduler (selectHost) takes the smallest node name,
// after its simulator renamed every node with a random prefix (the trace simulator's tie
// rule 'shuffled', bench/simulate/engine.ts). FGD is the only score plugin in the
// artifact's runs. The GPU indexes returned here are the ones the simulator occupies.
import { WHOLE } from './types.js';

export interface FgdShape {
  cpuMilli: number;
  /** Share of each GPU in milli (0 for CPU-only). */
  milli: number;
  count: number;
  /** The raw GPU type string ("" = any), as the artifact keys and matches it. */
  gpuType: string;
  weight: number;
}

export interface FgdPod {
  cpuMilli: number;
  milli: number;
  count: number;
  gpuType: string;
}

export interface FgdNode {
  cpuLeft: number;
  /** Free milli of each GPU, in device index order. */
  gpuLeft: readonly number[];
  /** GPU type of the node ("" = no GPUs). */
  gpuType: string;
}

// kube-scheduler's GetNonzeroRequests: a container without a CPU request counts 100m.
const DEFAULT_MILLI_CPU = 100;

const shapeLess = (a: FgdPod, b: FgdPod): boolean => {
  if (a.cpuMilli !== b.cpuMilli) return a.cpuMilli < b.cpuMilli;
  if (a.milli !== b.milli) return a.milli < b.milli;
  if (a.count !== b.count) return a.count < b.count;
  return a.gpuType < b.gpuType;
};

/** The artifact's GetTypicalPods with its run defaults (threshold 95 %, step 1). */
export function fgdTypicalShapes(pods: readonly FgdPod[], thresholdPct = 95): FgdShape[] {
  const tally = new Map<string, FgdShape>();
  for (const p of pods) {
    const cpuMilli = p.cpuMilli > 0 ? p.cpuMilli : DEFAULT_MILLI_CPU;
    const k = `${cpuMilli}/${p.milli}/${p.count}/${p.gpuType}`;
    const t = tally.get(k);
    if (t) t.weight++;
    else tally.set(k, { cpuMilli, milli: p.milli, count: p.count, gpuType: p.gpuType, weight: 1 });
  }
  const total = pods.length;
  // sort.Sort(sort.Reverse(list)): decreasing count, then decreasing by shapeLess.
  const list = [...tally.values()].sort((a, b) => {
    if (a.weight !== b.weight) return b.weight - a.weight;
    return shapeLess(b, a) ? -1 : shapeLess(a, b) ? 1 : 0;
  });
  const expected = (thresholdPct * total) / 100;
  let cum = 0;
  let i = 0;
  while (cum < expected && i < list.length) cum += list[i++]!.weight;
  const out = list.slice(0, i);
  return out.map((s) => ({ ...s, weight: s.weight / cum }));
}

function accessible(nodeType: string, podType: string): boolean {
  if (podType.length === 0) return true;
  if (nodeType.length === 0) return false;
  return podType.split('|').includes(nodeType);
}

/** GPUs with at least the shape's share free: can the node host its GPU part. */
function canHostGpus(gpuLeft: readonly number[], milli: number, count: number): boolean {
  let need = count;
  for (const left of gpuLeft) if (left >= milli && --need <= 0) return true;
  return false;
}

/** NodeGpuShareFragAmountScore: expected free GPU milli the typical shapes cannot use. */
export function fgdFragmentation(node: FgdNode, shapes: readonly FgdShape[]): number {
  let free = 0;
  for (const l of node.gpuLeft) free += l;
  if (free === 0) return 0;
  let frag = 0;
  for (const t of shapes) {
    if (t.milli === 0 || !accessible(node.gpuType, t.gpuType) || !canHostGpus(node.gpuLeft, t.milli, t.count) || node.cpuLeft < t.cpuMilli) {
      frag += t.weight * free;
      continue;
    }
    let small = 0;
    for (const l of node.gpuLeft) if (l < t.milli) small += l;
    frag += t.weight * small;
  }
  return frag;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const toScore = (before: number, after: number): number => Math.trunc(sigmoid((before - after) / 1000) * 100);

/** The node's FGD score for the pod (0..100 integer) and the GPUs it would take (device
 * indexes; empty for CPU-only pods). Call only when the pod fits the node.
 * `before` = fgdFragmentation(node, shapes) when the caller has it cached. */
export function fgdPlace(node: FgdNode, pod: FgdPod, shapes: readonly FgdShape[], before?: number): { score: number; gpus: number[] } {
  const b = before ?? fgdFragmentation(node, shapes);
  const cpuLeft = node.cpuLeft - pod.cpuMilli;
  if (pod.count === 1 && pod.milli < WHOLE) {
    let best = { score: 0, gpus: [] as number[] };
    for (let i = 0; i < node.gpuLeft.length; i++) {
      if (node.gpuLeft[i]! < pod.milli) continue;
      const gpuLeft = [...node.gpuLeft];
      gpuLeft[i]! -= pod.milli;
      const score = toScore(b, fgdFragmentation({ cpuLeft, gpuLeft, gpuType: node.gpuType }, shapes));
      if (best.gpus.length === 0 || score > best.score) best = { score, gpus: [i] };
    }
    return best;
  }
  // NodeResource.Sub: the least sufficient GPUs first (stable ascending by free milli).
  const gpuLeft = [...node.gpuLeft];
  const order = gpuLeft.map((_, i) => i).sort((x, y) => gpuLeft[x]! - gpuLeft[y]! || x - y);
  const gpus: number[] = [];
  for (const i of order) {
    if (gpus.length === pod.count) break;
    if (gpuLeft[i]! >= pod.milli) {
      gpuLeft[i]! -= pod.milli;
      gpus.push(i);
    }
  }
  return { score: toScore(b, fgdFragmentation({ cpuLeft, gpuLeft, gpuType: node.gpuType }, shapes)), gpus };
}
