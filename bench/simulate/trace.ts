// Reads the Alibaba openb GPU trace (cluster-trace-gpu-v2023 CSVs; see
// ../shared/data/openb/README.md): the node list and the pod lists. Parsing is pure; only
// loadTrace touches the file system. The data is read in place, never copied into the repo.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TraceNode {
  name: string;
  cpuMilli: number;
  memMiB: number;
  gpus: number;
  /** GPU model code (G2, T4, V100M16, ...); '' on CPU-only nodes. */
  model: string;
}

export interface TracePod {
  cpuMilli: number;
  memMiB: number;
  /** GPUs asked: 0 (CPU-only), 1, 2, 4 or 8. */
  numGpu: number;
  /** Share of each GPU in milli; 1000 = whole GPUs; < 1000 only with numGpu 1. */
  gpuMilli: number;
  /** Accepted models (gpu_spec as a set); empty = any. */
  models: string[];
}

export const POD_LISTS = ['default', 'multigpu50', 'gpushare100', 'gpuspec33'] as const;
export type PodListName = (typeof POD_LISTS)[number];

function rows(csv: string): { header: string[]; rows: string[][] } {
  const lines = csv.split('\n').filter((l) => l.length > 0);
  const header = (lines.shift() ?? '').split(',');
  return { header, rows: lines.map((l) => l.split(',')) };
}

function column(header: string[], name: string, required = true): number {
  const i = header.indexOf(name);
  if (i < 0 && required) throw new Error(`trace CSV has no column ${name}; header is ${header.join(',')}`);
  return i;
}

const int = (s: string | undefined): number => (s ? Number.parseInt(s, 10) : 0);

export function parseNodes(csv: string): TraceNode[] {
  const t = rows(csv);
  const [sn, cpu, mem, gpu, model] = ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'].map((c) => column(t.header, c)) as [number, number, number, number, number];
  return t.rows.map((r) => ({ name: r[sn] ?? '', cpuMilli: int(r[cpu]), memMiB: int(r[mem]), gpus: int(r[gpu]), model: r[model] ?? '' }));
}

export function parsePods(csv: string): TracePod[] {
  const t = rows(csv);
  const [cpu, mem, num, milli] = ['cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli'].map((c) => column(t.header, c)) as [number, number, number, number];
  const spec = column(t.header, 'gpu_spec', false); // multigpu* files have no gpu_spec
  return t.rows.map((r) => {
    const models = spec >= 0 && r[spec] ? [...new Set(r[spec]!.split('|').filter(Boolean))].sort() : [];
    return { cpuMilli: int(r[cpu]), memMiB: int(r[mem]), numGpu: int(r[num]), gpuMilli: int(r[milli]), models };
  });
}

export function loadTrace(dataDir: string, list: PodListName): { nodes: TraceNode[]; pods: TracePod[] } {
  return {
    nodes: parseNodes(readFileSync(join(dataDir, 'openb_node_list_all_node.csv'), 'utf8')),
    pods: parsePods(readFileSync(join(dataDir, `openb_pod_list_${list}.csv`), 'utf8')),
  };
}
