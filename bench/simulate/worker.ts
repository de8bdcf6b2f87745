// worker_threads entry of the simulator: runs the jobs main.ts posts, one at a time.
import { parentPort } from 'node:worker_threads';
import { simulate, type SimPolicyName } from './engine.js';
import { loadTrace, type PodListName, type TraceNode, type TracePod } from './trace.js';

export interface SimJob {
  id: number;
  dataDir: string;
  list: PodListName;
  policy: SimPolicyName;
  seed: number;
  extenderScores: boolean;
}

const traces = new Map<string, { nodes: TraceNode[]; pods: TracePod[] }>();

parentPort?.on('message', (job: SimJob) => {
  try {
    const key = `${job.dataDir}:${job.list}`;
    let t = traces.get(key);
    if (!t) traces.set(key, (t = loadTrace(job.dataDir, job.list)));
    const result = simulate({ nodes: t.nodes, pods: t.pods, policy: job.policy, seed: job.seed, extenderScores: job.extenderScores });
    parentPort?.postMessage({ id: job.id, result });
  } catch (e) {
    parentPort?.postMessage({ id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
