// sluice get queues|jobs|nodes, sluice describe job NS/NAME and sluice apply -f FILE: the
// admin API as kubectl-style tables (also installed as the kubectl plugin kubectl-sluice).
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { call, CliError, connect, get, type Connection, type ConnectionFlags } from './api-client.js';
import { didYouMean } from '../config/closest.js';
import { helpText, parseFlags, type CommandSpec, type FlagSpec } from './flags.js';
import { age, dash, eta, table } from './format.js';

const CONNECTION_FLAGS: FlagSpec[] = [
  { name: 'server', short: 's', value: 'URL', default: '$SLUICE_API_URL', help: "sluice's API listener, e.g. https://localhost:9443" },
  { name: 'token', value: 'TOKEN', default: "$SLUICE_API_TOKEN, else the kubeconfig current context's token", help: 'bearer token for the admin API' },
  {
    name: 'certificate-authority',
    value: 'FILE',
    default: '$SLUICE_API_CA, else the system CAs',
    help: "PEM file of the CA that signed sluice's serving certificate",
  },
  { name: 'insecure-skip-tls-verify', help: "do not check sluice's serving certificate (testing only)" },
];
const OUTPUT: FlagSpec = { name: 'output', short: 'o', value: 'wide|json|yaml', default: 'a table', help: 'output format' };
const FOOTER = 'Also installed as the kubectl plugin kubectl-sluice: kubectl sluice get queues.';

export const CLI_SPECS: Record<'get' | 'describe' | 'apply', CommandSpec> = {
  get: {
    usage: 'sluice get queues|jobs|nodes [-q QUEUE] [-o wide|json|yaml] [flags]',
    about: `Lists from the admin API as kubectl-style tables:
  queues   each queue's weight, GPUs used against its guarantee and best-effort cap, jobs waiting
  jobs     waiting jobs in release order with the reason each waits, then running ones
  nodes    the GPU inventory per node: total, used, free, health`,
    flags: [OUTPUT, { name: 'queue', short: 'q', value: 'QUEUE', default: 'every queue', help: 'get jobs: only this queue' }, ...CONNECTION_FLAGS],
    footer: FOOTER,
  },
  describe: {
    usage: 'sluice describe job NAMESPACE/NAME [-o json|yaml] [flags]',
    about: `One job: queue, QoS, GPUs, state, why it waits, its pods. NAME is the job (the pods' label
sluice.io/job, else pod-<pod name>) or the name of one of its pods.`,
    flags: [OUTPUT, ...CONNECTION_FLAGS],
    footer: FOOTER,
  },
  apply: {
    usage: 'sluice apply -f FILE [flags]',
    about: 'Creates or replaces every queue listed in FILE, a YAML or JSON file: {queues: [{name, cohort, weight, limits}]} or a list.',
    flags: [{ name: 'filename', short: 'f', value: 'FILE', help: 'the queue file (required)' }, ...CONNECTION_FLAGS],
    footer: FOOTER,
  },
};

interface Limit {
  resource: string;
  model: string;
  guaranteed: number;
  bestEffortCap: number;
  perJobMax: number;
}
interface Queue {
  name: string;
  parent: string | null;
  cohort: string | null;
  open: boolean;
  weight: number;
  limits: Limit[];
}
interface Usage {
  queue: string;
  pods: number;
  totals: Array<{ resource: string; guaranteed: number; bestEffort: number }>;
}
interface SharedGpuRow {
  index: number;
  uuid: string;
  memoryMiB: number;
  usedMemoryMiB: number;
  cores: number;
  usedCores: number;
  slots: number;
  usedSlots: number;
}
interface NodeRow {
  name: string;
  resource: string;
  model: string;
  memoryMiB: number;
  total: number;
  used: number;
  assumed: number;
  free: number;
  health: string;
  reason: string;
  gpus?: SharedGpuRow[];
}

/** Shared GPUs of a node, one "GPU <index> <used>/<total>Mi <cores>% <slots>/<slots>" each. */
const sharedGpus = (n: NodeRow): string =>
  n.gpus ? n.gpus.map((g) => `${g.index}:${g.usedMemoryMiB}/${g.memoryMiB}Mi,${g.usedCores}/${g.cores}c,${g.usedSlots}/${g.slots}`).join(' ') || 'none' : '-';
export interface WaitingJob {
  position: number;
  namespace: string;
  name: string;
  user: string;
  qos: string;
  gpus: number;
  resource: string;
  model: string;
  gangSize: number;
  podsSeen: number;
  waitingFor: string;
  reason: string;
  submittedAt: string | null;
  estimatedStartTime?: string | null;
}
export interface RunningJob {
  namespace: string;
  name: string;
  user: string;
  qos: string;
  gpus: number;
  resource: string;
  releasedAt: string;
}
export interface QueueJobs {
  queue: string;
  waiting: WaitingJob[];
  running: RunningJob[];
}
export interface JobDetail {
  namespace: string;
  name: string;
  queue: string;
  qos: string;
  user: string;
  resource: string;
  model: string;
  gangSize: number;
  gpus: number;
  state: string;
  reason: string;
  submittedAt: string | null;
  releasedAt: string | null;
  finishedAt: string | null;
  position: number | null;
  estimatedStartTime?: string | null;
  estimatedStart?: { earliest: string | null; latest: string | null; unknownReason: string | null; basis: { summary: string } } | null;
  pods: Array<{ name: string; node: string | null; gated: boolean; terminal: boolean }>;
}

type Output = 'table' | 'wide' | 'json' | 'yaml';

interface Parsed extends ConnectionFlags {
  positional: string[];
  output: Output;
  queue?: string;
  file?: string;
}

function parse(verb: keyof typeof CLI_SPECS, argv: readonly string[]): Parsed {
  const f = parseFlags(argv, CLI_SPECS[verb], { positional: true });
  const o = f.get('output');
  if (o !== undefined && !['wide', 'json', 'yaml'].includes(o)) throw new CliError(`output format "${o}" is not one of wide, json, yaml`);
  return {
    positional: f.positional,
    output: (o ?? 'table') as Output,
    queue: f.get('queue'),
    file: f.get('filename'),
    server: f.get('server'),
    token: f.get('token'),
    certificateAuthority: f.get('certificate-authority'),
    insecure: f.has('insecure-skip-tls-verify'),
  };
}

const enc = (s: string): string => encodeURIComponent(s);

function emit(out: NodeJS.WritableStream, output: Output, data: unknown, render: () => string): void {
  if (output === 'json') out.write(JSON.stringify(data, null, 2) + '\n');
  else if (output === 'yaml') out.write(yaml.dump(data, { noRefs: true, lineWidth: 120 }));
  else out.write(render());
}

/** The waiting and running jobs of a queue; null when this sluice has no jobs route yet. */
async function queueJobs(conn: Connection, queue: string): Promise<QueueJobs | null> {
  const res = await call<QueueJobs & { message?: string }>(conn, 'GET', `/api/v1/queues/${enc(queue)}/jobs`);
  if (res.status === 200) return res.body;
  // fastify's own 404 for an unknown route: a sluice without the queue manager.
  if (res.status === 404 && /^Route GET/.test(res.body?.message ?? '')) return null;
  throw new CliError(`GET /api/v1/queues/${queue}/jobs: ${res.status} ${res.body?.message ?? ''}`.trim());
}

/** GPUs add up to thousandths (GPU shares count as fractions such as 0.25): no float noise in a table. */
const sum = (xs: number[]): number => Math.round(xs.reduce((a, b) => a + b * 1000, 0)) / 1000;

async function getQueues(conn: Connection, p: Parsed, out: NodeJS.WritableStream): Promise<void> {
  const { items } = await get<{ items: Queue[] }>(conn, '/api/v1/queues');
  const rows = await Promise.all(
    items.map(async (q) => {
      const [usage, jobs] = await Promise.all([get<Usage>(conn, `/api/v1/queues/${enc(q.name)}/usage`), queueJobs(conn, q.name)]);
      return { queue: q, usage, waiting: jobs ? jobs.waiting.length : null };
    }),
  );
  emit(out, p.output, { items: rows.map((r) => ({ ...r.queue, usage: r.usage.totals, waiting: r.waiting })) }, () => {
    const headers = ['NAME', 'COHORT', 'WEIGHT', 'GPU USED/GUARANTEED', 'BE USED/CAP', 'WAITING'];
    if (p.output === 'wide') headers.push('PARENT', 'OPEN', 'PODS', 'RESOURCES');
    return table(
      headers,
      rows.map(({ queue: q, usage: u, waiting }) => {
        const row = [
          q.name,
          dash(q.cohort),
          String(q.weight),
          `${sum(u.totals.map((t) => t.guaranteed))}/${sum(q.limits.map((l) => l.guaranteed))}`,
          `${sum(u.totals.map((t) => t.bestEffort))}/${sum(q.limits.map((l) => l.bestEffortCap))}`,
          dash(waiting),
        ];
        if (p.output === 'wide')
          row.push(
            dash(q.parent),
            String(q.open),
            String(u.pods),
            dash([...new Set(q.limits.map((l) => (l.model ? `${l.resource}(${l.model})` : l.resource)))].join(',')),
          );
        return row;
      }),
    );
  });
}

async function getJobs(conn: Connection, p: Parsed, out: NodeJS.WritableStream): Promise<void> {
  const queues = p.queue ? [p.queue] : (await get<{ items: Queue[] }>(conn, '/api/v1/queues')).items.map((q) => q.name);
  const all: QueueJobs[] = [];
  for (const q of queues) {
    const jobs = await queueJobs(conn, q);
    if (!jobs) throw new CliError('this sluice has no jobs API (GET /api/v1/queues/:name/jobs); it comes with the queue manager');
    all.push(jobs);
  }
  emit(out, p.output, { items: all }, () => {
    const wide = p.output === 'wide';
    const headers = ['POSITION', 'JOB', 'USER', 'GPUS', 'QOS', 'WAITING FOR', 'ETA', 'REASON'];
    if (wide || !p.queue) headers.splice(1, 0, 'QUEUE');
    if (wide) headers.push('MODEL', 'PODS', 'AGE');
    const rows: string[][] = [];
    for (const q of all) {
      for (const j of q.waiting) {
        const row = [String(j.position), `${j.namespace}/${j.name}`, j.user, String(j.gpus), j.qos, j.waitingFor, eta(j.estimatedStartTime), j.reason];
        if (wide || !p.queue) row.splice(1, 0, q.queue);
        if (wide) row.push(dash(j.model), `${j.podsSeen}/${j.gangSize}`, age(j.submittedAt));
        rows.push(row);
      }
      for (const j of q.running) {
        const row = ['running', `${j.namespace}/${j.name}`, j.user, String(j.gpus), j.qos, '-', '-', `released ${age(j.releasedAt)} ago`];
        if (wide || !p.queue) row.splice(1, 0, q.queue);
        if (wide) row.push('-', '-', '-');
        rows.push(row);
      }
    }
    return rows.length ? table(headers, rows) : `No jobs${p.queue ? ` in queue ${p.queue}` : ''}.\n`;
  });
}

async function getNodes(conn: Connection, p: Parsed, out: NodeJS.WritableStream): Promise<void> {
  const body = await get<{ items: NodeRow[] }>(conn, '/api/v1/nodes');
  emit(out, p.output, body, () => {
    const shared = body.items.some((n) => n.gpus);
    const headers = ['NAME', 'RESOURCE', 'MODEL', 'TOTAL', 'USED', 'FREE', 'HEALTH'];
    if (shared) headers.push('GPUS (MEM,CORES,SLOTS USED/TOTAL)');
    if (p.output === 'wide') headers.push('MEMORY', 'ASSUMED', 'REASON');
    return table(
      headers,
      body.items.map((n) => {
        const row = [n.name, n.resource, dash(n.model), String(n.total), String(n.used), String(n.free), n.health];
        if (shared) row.push(sharedGpus(n));
        if (p.output === 'wide') row.push(n.memoryMiB ? `${n.memoryMiB}Mi` : '-', String(n.assumed), dash(n.reason));
        return row;
      }),
    );
  });
}

async function describeJob(conn: Connection, p: Parsed, out: NodeJS.WritableStream): Promise<void> {
  const ref = p.positional[2] ?? '';
  const m = /^([a-z0-9][-a-z0-9]*)\/([^/]+)$/.exec(ref);
  if (!m) throw new CliError(`describe job needs NAMESPACE/NAME, got "${ref}"`);
  const res = await call<JobDetail & { message?: string }>(conn, 'GET', `/api/v1/jobs/${enc(m[1]!)}/${enc(m[2]!)}`);
  if (res.status === 404 && /^Route GET/.test(res.body?.message ?? ''))
    throw new CliError('this sluice has no jobs API (GET /api/v1/jobs/:namespace/:name); it comes with the queue manager');
  if (res.status !== 200) throw new CliError(`job ${ref}: ${res.status} ${res.body?.message ?? ''}`.trim());
  const j = res.body;
  const field = (k: string, v: string): string => `${(k + ':').padEnd(14)}${v}\n`;
  let text =
    field('Name', j.name) +
    field('Namespace', j.namespace) +
    field('Queue', j.queue) +
    field('User', dash(j.user)) +
    field('QoS', j.qos) +
    field('GPUs', `${j.gpus} ${j.resource}${j.model ? ` (${j.model})` : ''}`) +
    field('Gang size', String(j.gangSize)) +
    field('State', j.state) +
    field('Position', dash(j.position)) +
    field('Reason', dash(j.reason)) +
    (j.estimatedStart
      ? field(
          'ETA',
          j.estimatedStartTime
            ? `${j.estimatedStartTime} (${eta(j.estimatedStartTime)}; ${j.estimatedStart.basis.summary}${j.estimatedStart.earliest && j.estimatedStart.earliest !== j.estimatedStart.latest ? `; range ${j.estimatedStart.earliest} to ${j.estimatedStart.latest ?? 'unknown'}` : ''})`
            : `not known: ${j.estimatedStart.unknownReason}`,
        )
      : '') +
    field('Submitted', dash(j.submittedAt)) +
    field('Released', dash(j.releasedAt)) +
    field('Finished', dash(j.finishedAt)) +
    'Pods:\n';
  text += j.pods.length
    ? table(
        ['NAME', 'NODE', 'GATED', 'FINISHED'],
        j.pods.map((pod) => [pod.name, dash(pod.node), pod.gated ? 'yes' : 'no', pod.terminal ? 'yes' : 'no']),
      ).replace(/^/gm, '  ')
    : '  <none>\n';
  emit(out, p.output === 'table' || p.output === 'wide' ? 'table' : p.output, j, () => text);
}

/** Creates or replaces every queue of a YAML/JSON file: {queues: [{name, ...}]} or a list. */
async function apply(conn: Connection, p: Parsed, out: NodeJS.WritableStream): Promise<void> {
  if (!p.file) throw new CliError('apply needs -f FILE with {queues: [{name, cohort, weight, limits}]}');
  let doc: unknown;
  try {
    doc = yaml.load(readFileSync(p.file, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read ${p.file} (${(e as Error).message.split('\n')[0]}); give a YAML or JSON file`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { queues?: unknown } | null)?.queues;
  if (!Array.isArray(list)) throw new CliError(`${p.file} holds no queue list; write {queues: [{name: team-a, limits: [...]}]}`);
  for (const q of list as Array<Record<string, unknown>>) {
    if (typeof q?.name !== 'string' || !q.name) throw new CliError(`${p.file}: every queue needs a name`);
  }
  for (const q of list as Array<Record<string, unknown>>) {
    const { name, ...body } = q;
    const res = await call<{ message?: string }>(conn, 'PUT', `/api/v1/queues/${enc(String(name))}`, body);
    if (res.status !== 200 && res.status !== 201) throw new CliError(`queue ${String(name)}: ${res.status} ${res.body?.message ?? ''}`.trim());
    out.write(`queue/${String(name)} ${res.status === 201 ? 'created' : 'configured'}\n`);
  }
}

/** Runs one CLI command; argv starts with get, describe or apply. */
export async function cliCommand(argv: readonly string[], out: NodeJS.WritableStream = process.stdout, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const verb = argv[0] as keyof typeof CLI_SPECS;
  if (!(verb in CLI_SPECS))
    throw new CliError(`unknown command "${argv[0] ?? ''}"${didYouMean(argv[0] ?? '', Object.keys(CLI_SPECS))}; use get, describe or apply`);
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(helpText(CLI_SPECS[verb]));
    return 0;
  }
  const p = parse(verb, argv.slice(1));
  const what = p.positional[0];
  p.positional.unshift(verb);
  const run =
    verb === 'get' && (what === 'queues' || what === 'queue')
      ? getQueues
      : verb === 'get' && (what === 'jobs' || what === 'job')
        ? getJobs
        : verb === 'get' && (what === 'nodes' || what === 'node')
          ? getNodes
          : verb === 'describe' && what === 'job'
            ? describeJob
            : verb === 'apply' && what === undefined
              ? apply
              : null;
  const objects = verb === 'get' ? ['queues', 'jobs', 'nodes'] : verb === 'describe' ? ['job'] : [];
  const hint = what === undefined ? '' : didYouMean(what, objects);
  if (!run) throw new CliError(`unknown command "${p.positional.join(' ')}"${hint}; see sluice ${verb} --help\n\n${helpText(CLI_SPECS[verb])}`);
  await run(await connect(p, env), p, out);
  return 0;
}
