// Reads the Alibaba openb GPU trace (cluster-trace-gpu-v2023 CSVs; see
// ../shared/data/openb/README.md): the node list and the pod lists. Parsing is pure; only
// loadTrace touches the file system. The data is read in place, never copied into the repo.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

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
  /** gpu_spec as written ('' = any): the FGD artifact keys its target workload on it. */
  gpuSpec: string;
}

/** The pod lists the FGD paper published figures for (and that the trace folder holds). */
export const SHARED_LISTS = ['default', 'multigpu50', 'gpushare100', 'gpuspec33'] as const;
export const GPU_NODE_LIST = 'openb_node_list_gpu_node.csv';
export const ALL_NODE_LIST = 'openb_node_list_all_node.csv';
const POD_LIST_FILE = /^openb_pod_list_(.+)\.csv$/;

/** A pod list to replay: a name for the report and the CSV file. */
export interface PodListSource {
  name: string;
  file: string;
}

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
  const [sn, cpu, mem, gpu, model] = ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'].map((c) => column(t.header, c)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return t.rows.map((r) => ({ name: r[sn] ?? '', cpuMilli: int(r[cpu]), memMiB: int(r[mem]), gpus: int(r[gpu]), model: r[model] ?? '' }));
}

export function parsePods(csv: string): TracePod[] {
  const t = rows(csv);
  const [cpu, mem, num, milli] = ['cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli'].map((c) => column(t.header, c)) as [number, number, number, number];
  const spec = column(t.header, 'gpu_spec', false); // multigpu* files have no gpu_spec
  return t.rows.map((r) => {
    const gpuSpec = spec >= 0 ? (r[spec] ?? '') : '';
    const models = gpuSpec ? [...new Set(gpuSpec.split('|').filter(Boolean))].sort() : [];
    return { cpuMilli: int(r[cpu]), memMiB: int(r[mem]), numGpu: int(r[num]), gpuMilli: int(r[milli]), models, gpuSpec };
  });
}

/** The list name of a pod file: openb_pod_list_<name>.csv gives <name>, else the base name. */
export function podListName(file: string): string {
  const b = basename(file);
  return POD_LIST_FILE.exec(b)?.[1] ?? b.replace(/\.csv$/, '');
}

/** The openb_pod_list_*.csv files of a folder, by name. */
export function podListsIn(dir: string): PodListSource[] {
  return readdirSync(dir)
    .filter((f) => POD_LIST_FILE.test(f))
    .sort()
    .map((f) => ({ name: podListName(f), file: join(dir, f) }));
}

export const loadNodes = (file: string): TraceNode[] => checkNodes(parseNodes(readFileSync(file, 'utf8')), file);
export const loadPods = (file: string): TracePod[] => checkPods(parsePods(readFileSync(file, 'utf8')), file);

function checkNodes(nodes: TraceNode[], file: string): TraceNode[] {
  const bad = nodes.findIndex((n) => !(n.cpuMilli >= 0 && n.memMiB >= 0 && n.gpus >= 0) || !Number.isFinite(n.cpuMilli + n.memMiB + n.gpus));
  if (bad >= 0) throw new Error(`${file}: row ${bad + 2} has a negative or non-numeric cpu_milli, memory_mib or gpu`);
  if (!nodes.some((n) => n.gpus > 0)) throw new Error(`${file}: no node has GPUs`);
  return nodes;
}

function checkPods(pods: TracePod[], file: string): TracePod[] {
  const bad = pods.findIndex(
    (p) =>
      !Number.isFinite(p.cpuMilli + p.memMiB + p.numGpu + p.gpuMilli) ||
      p.cpuMilli < 0 ||
      p.memMiB < 0 ||
      p.numGpu < 0 ||
      p.gpuMilli < 0 ||
      p.gpuMilli > 1000 ||
      (p.gpuMilli < 1000 && p.numGpu > 1) ||
      p.numGpu > 0 !== p.gpuMilli > 0,
  );
  if (bad >= 0) throw new Error(`${file}: row ${bad + 2} is not a valid pod (num_gpu, gpu_milli 1..1000, a share only with one GPU)`);
  if (pods.length === 0) throw new Error(`${file}: no pods`);
  return pods;
}
