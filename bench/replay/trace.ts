// The openb pod list as a time-driven workload: each GPU pod is a job with its creation
// time (arrival) and its run time in production (deletion - scheduled). Parsing is pure;
// only loadTimedPods reads the file, in place (never copied into the repo).
import { readFileSync } from 'node:fs';

export interface TimedPod {
  name: string;
  /** Whole GPUs asked (a GPU share counts as one GPU: the queue counts whole GPUs). */
  gpus: number;
  /** Accepted models (gpu_spec); empty = any. */
  models: string[];
  /** openb QoS class (LS, BE, Burstable, Guaranteed): the job kind, and the priority. */
  kind: string;
  /** Trace seconds. */
  createdS: number;
  /** Seconds it ran in production (deletion - scheduled). */
  runS: number;
}

/** What was left out and why, for the report. */
export interface TraceSkips {
  cpuOnly: number;
  neverScheduled: number;
}

export function parseTimedPods(csv: string): { pods: TimedPod[]; skipped: TraceSkips } {
  const lines = csv.split('\n').filter((l) => l.length > 0);
  const header = (lines.shift() ?? '').split(',');
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`pod list has no column ${name} (header: ${header.join(',')}); the replay needs an openb list with times (not multigpu*)`);
    return i;
  };
  const [name, num, spec, qos, created, deleted, scheduled] = ['name', 'num_gpu', 'gpu_spec', 'qos', 'creation_time', 'deletion_time', 'scheduled_time'].map(
    col,
  ) as number[];
  const pods: TimedPod[] = [];
  const skipped: TraceSkips = { cpuOnly: 0, neverScheduled: 0 };
  for (const line of lines) {
    const r = line.split(',');
    const gpus = Number(r[num!]);
    if (!(gpus > 0)) {
      skipped.cpuOnly++;
      continue;
    }
    if (!r[scheduled!]) {
      skipped.neverScheduled++;
      continue;
    }
    const createdS = Number(r[created!]);
    const runS = Number(r[deleted!]) - Number(r[scheduled!]);
    if (!Number.isFinite(createdS) || !Number.isFinite(runS) || runS < 0) throw new Error(`pod ${r[name!]}: unreadable times (${line})`);
    const models = (r[spec!] ?? '') ? [...new Set(r[spec!]!.split('|').filter(Boolean))].sort() : [];
    pods.push({ name: r[name!]!, gpus, models, kind: r[qos!] || 'unknown', createdS, runS: Math.max(1, runS) });
  }
  pods.sort((a, b) => a.createdS - b.createdS || (a.name < b.name ? -1 : 1));
  return { pods, skipped };
}

export const loadTimedPods = (file: string): ReturnType<typeof parseTimedPods> => parseTimedPods(readFileSync(file, 'utf8'));

/** FNV-1a, 32 bit: a stable hash of a pod name (queue and user assignment). */
export function stableHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
