// worker_threads entry of the simulator: runs the jobs main.ts posts, one at a time.
import { parentPort } from 'node:worker_threads';
import { simulate, type SimPolicyName, type TieRule } from './engine.js';
import { loadNodes, loadPods, type TraceNode, type TracePod } from './trace.js';

export interface SimJob {
  id: number;
  nodesFile: string;
  podsFile: string;
  list: string;
  policy: SimPolicyName;
  seed: number;
  extenderScores: ExtenderScoresOption | null;
  /** With extenderScores: the extender's filter answers only this many best nodes (0: all). */
  filterBest?: number;
  /** Rule for equal node scores; absent = the engine's default. */
  ties?: TieRule;
  /** Return every arrival's node and GPU indexes. */
  recordPlacements?: boolean;
}

/** Rank nodes as kube-scheduler does with the extender: its own plugins' scores plus the
 * extender's 0..10 score x (100/10) x weight (see engine.ts). */
export interface ExtenderScoresOption {
  weight: number;
}

const nodeLists = new Map<string, TraceNode[]>();
const podLists = new Map<string, TracePod[]>();

parentPort?.on('message', (job: SimJob) => {
  try {
    let nodes = nodeLists.get(job.nodesFile);
    if (!nodes) nodeLists.set(job.nodesFile, (nodes = loadNodes(job.nodesFile)));
    let pods = podLists.get(job.podsFile);
    if (!pods) podLists.set(job.podsFile, (pods = loadPods(job.podsFile)));
    const result = simulate({
      nodes,
      pods,
      policy: job.policy,
      seed: job.seed,
      extenderScores: job.extenderScores ?? undefined,
      filterBest: job.filterBest,
      ...(job.ties ? { ties: job.ties } : {}),
      ...(job.recordPlacements ? { recordPlacements: true } : {}),
    });
    parentPort?.postMessage({ id: job.id, result });
  } catch (e) {
    parentPort?.postMessage({ id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
