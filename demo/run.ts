// Runs the real sluice (serve(), as `sluice serve --cluster-snapshot` runs it: webhooks,
// queue manager, extender, admin API) on snapshot mode's in-memory cluster with a
// simulated clock, and gives the scenario (scenario.ts) a Driver to act through sluice's
// interfaces: pods created through the webhooks, scheduled through the extender, queues
// and jobs read and written through the admin API. What the Driver records comes from what
// sluice answered and what changed in the in-memory cluster, never from the script.
import { createWriteStream, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { V1Pod } from '@kubernetes/client-node';
import { parseSnapshot, type Snapshot } from '../cluster/snapshot.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { serve, type Running } from '../server/run.js';
import type { QueueInput } from '../store/queues.js';
import { GATE_QUEUE, LABEL_GANG_SIZE, LABEL_JOB, LABEL_QOS, LABEL_QUEUE, LABEL_USER } from '../webhooks/labels.js';
import { ANNOTATION_EXPECTED_DURATION } from '../queue/duration.js';
import { ANNOTATION_GPU_MODEL } from '../scheduler/pod-ask.js';
import { podGpuRequests } from '../cluster/pod-request.js';
import { svgToPng } from '../bench/plot/png.js';
import { checkSteps, checksText } from './checks.js';
import { timelineSvg } from './picture.js';
import { runScenario, SETUP } from './scenario.js';
import { StandIns, podKey, type Reclaim } from './stand-ins.js';
import { hhmm, timelineText, type JobTrack, type StepNo, type Timeline, type TimelineEvent } from './timeline.js';

export class DemoError extends Error {
  override name = 'DemoError';
}

export interface DemoOptions {
  /** kubectl get nodes,pods -A -o json (examples/cluster-snapshot.json). */
  snapshotFile: string;
  storeUrl: string;
  /** Emptied at the start: must start with sluice_demo. */
  storeSchema: string;
  /** sluice's own JSON log goes here; null: nowhere. */
  logFile: string | null;
  logLevel?: string;
}

/** The simulated clock: moved only by the scenario. */
export class SimulatedClock {
  constructor(private ms: number) {}
  readonly now = (): number => this.ms;
  set(ms: number): void {
    if (ms < this.ms) throw new Error(`the demo's clock cannot go back (${hhmm(ms)} < ${hhmm(this.ms)})`);
    this.ms = ms;
  }
}

export interface SubmitSpec {
  name: string;
  namespace: string;
  user: string;
  queue: string;
  qos: 'guaranteed' | 'best-effort';
  gpusPerPod: number;
  /** sluice.io/gpu-model alias ("a100"). */
  model: string;
  expected: string;
  /** Gang: the job's name and its size; the pod is one member. */
  gang?: { job: string; size: number };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Why the demo cannot use this Postgres, in one sentence, or null when it can. */
export async function checkPostgres(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return err.code ?? err.message ?? String(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export class Driver {
  readonly clock: SimulatedClock;
  private readonly stand: StandIns;
  private step: StepNo = 1;
  readonly events: TimelineEvent[] = [];
  private readonly jobs = new Map<string, JobTrack>();
  private readonly podJob = new Map<string, string>();
  /** Cache changes seen: settle() waits until they stop. */
  private changes = 0;
  /** Gates removed and binds, in the order the in-memory cluster showed them, not yet in the timeline. */
  private seen: Array<{ kind: 'release' | 'bind'; pod: string; node: string; atMs: number }> = [];

  constructor(
    readonly running: Running,
    clock: SimulatedClock,
    snap: Snapshot,
    /** The admin API token sluice was started with. */
    private readonly token: string,
  ) {
    this.clock = clock;
    const cluster = running.cluster;
    if (!cluster) throw new DemoError('sluice is not in snapshot mode: the demo needs its in-memory cluster');
    this.stand = new StandIns({
      cluster,
      apiUrl: running.apiUrl,
      now: clock.now,
      nodeNames: snap.nodes.map((n) => n.metadata?.name ?? '').filter(Boolean),
      onReclaim: (r) => this.reclaimed(r),
    });
    // The in-memory cluster's watch: what sluice changed (gates removed, binds).
    running.cache.onChange((c) => {
      this.changes++;
      if (c.kind !== 'pod' || !c.before || !c.after) return;
      const key = `${c.after.namespace}/${c.after.name}`;
      if (c.before.gates.includes(GATE_QUEUE) && !c.after.gates.includes(GATE_QUEUE))
        this.seen.push({ kind: 'release', pod: key, node: '', atMs: clock.now() });
      if (!c.before.nodeName && c.after.nodeName) this.seen.push({ kind: 'bind', pod: key, node: c.after.nodeName, atMs: clock.now() });
    });
    for (const p of snap.pods) this.trackSnapshotPod(p);
  }

  private trackSnapshotPod(p: V1Pod): void {
    const labels = p.metadata?.labels ?? {};
    const gpus = gpuCount(p, this.running.cache.resources);
    if (!labels[LABEL_QUEUE] || gpus === 0 || !p.metadata?.uid) return;
    const ns = p.metadata.namespace ?? 'default';
    const key = podKey(p);
    // A bare pod's job, as the webhook names it (it ran before sluice here: no label).
    const job = `${ns}/${labels[LABEL_JOB] ?? `pod-${p.metadata.name}`}`;
    this.podJob.set(key, job);
    this.jobs.set(job, {
      job,
      queue: labels[LABEL_QUEUE]!,
      qos: labels[LABEL_QOS] === 'best-effort' ? 'best-effort' : 'guaranteed',
      user: labels[LABEL_USER] ?? '',
      gpus,
      gpusPerPod: gpus,
      model: this.running.cache.nodeLabels(p.spec?.nodeName ?? '')?.['nvidia.com/gpu.product'] ?? '',
      gangSize: 1,
      expected: p.metadata.annotations?.[ANNOTATION_EXPECTED_DURATION] ?? null,
      fromSnapshot: true,
      pods: [{ pod: key, submittedMs: null, releasedMs: null, boundMs: null, node: p.spec?.nodeName ?? null, endedMs: null }],
      atSubmit: null,
      warnings: [],
      endedHow: null,
      reclaimedFor: null,
      apiAfterReclaim: null,
    });
  }

  /** Sets the step the next events belong to. */
  beginStep(step: StepNo): void {
    this.step = step;
  }

  private event(kind: TimelineEvent['kind'], job: string, text: string, details: string[] = []): void {
    this.events.push({ atMs: this.clock.now(), step: this.step, kind, job, text, details });
  }

  async api<T>(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(this.running.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** Waits until the admin API can read queues from Postgres (the store migrates in the background). */
  async awaitStore(): Promise<void> {
    let last = '';
    for (let i = 0; i < 200; i++) {
      const res = await this.api<{ message?: string }>('GET', '/api/v1/queues');
      if (res.status === 200) return;
      last = `HTTP ${res.status} ${res.body?.message ?? ''}`;
      await sleep(100);
    }
    throw new DemoError(`sluice's Postgres store did not become ready within 20 s (${last})`);
  }

  /** Creates or replaces a queue through the admin API (PUT /api/v1/queues/NAME). */
  async putQueue(name: string, q: QueueInput): Promise<void> {
    const res = await this.api<{ message?: string }>('PUT', `/api/v1/queues/${name}`, q);
    if (res.status !== 200 && res.status !== 201) throw new DemoError(`the admin API refused queue ${name}: HTTP ${res.status} ${res.body?.message ?? ''}`);
  }

  /** Waits until the queue manager has read these queues from Postgres. */
  async awaitQueues(names: readonly string[]): Promise<void> {
    for (let i = 0; i < 300; i++) {
      const s = this.running.queue?.current();
      if (s && names.every((n) => s.queues.has(n))) return;
      this.running.queue?.trigger('demo');
      await sleep(50);
    }
    throw new DemoError(`the queue manager did not load queues ${names.join(', ')} from Postgres within 15 s`);
  }

  /** Moves the clock (forward only). */
  at(hh: number, mm: number): void {
    const d = new Date(this.clock.now());
    d.setUTCHours(hh, mm, 0, 0);
    this.clock.set(d.getTime());
  }

  /**
   * Lets everything that follows from the last change happen at this instant: the queue
   * manager's pass (the one its timer would run), releases, kube-scheduler's cycles, the
   * kubelets starting bound pods, until the cluster stops changing; then the ETA forecast
   * (its timer's work) and the record of releases and binds.
   */
  async settle(): Promise<void> {
    const manager = this.running.queue!;
    for (let i = 0; i < 40; i++) {
      const before = this.changes;
      manager.evaluateNow();
      await sleep(10); // releases are carried out asynchronously
      await this.stand.scheduleAll();
      this.stand.startBound();
      if (this.changes === before) break;
    }
    manager.eta?.recompute();
    this.flushStarts();
  }

  /**
   * Turns the releases and binds seen since the last flush into events, one per job: "released;
   * bound to" when both were seen together, else each on its own line (a guaranteed job is
   * released, then its victims go, then it is bound).
   */
  private flushStarts(): void {
    const seen = this.seen;
    this.seen = [];
    const byJob = new Map<string, typeof seen>();
    for (const o of seen) {
      const job = this.podJob.get(o.pod);
      if (!job) continue;
      byJob.set(job, [...(byJob.get(job) ?? []), o]);
    }
    for (const [job, obs] of byJob) {
      const track = this.jobs.get(job)!;
      const released = obs.filter((o) => o.kind === 'release');
      const bound = obs.filter((o) => o.kind === 'bind');
      for (const o of obs) {
        const p = track.pods.find((x) => x.pod === o.pod);
        if (!p) continue;
        if (o.kind === 'release') p.releasedMs = o.atMs;
        else {
          p.boundMs = o.atMs;
          p.node = o.node;
        }
      }
      const where = bound.map((b) => (track.gangSize > 1 ? `${b.pod.split('/')[1]} on ${b.node}` : b.node)).join(', ');
      const waited = track.atSubmit?.state === 'queued' && (track.pods[0]?.submittedMs ?? Infinity) < this.clock.now();
      const eta = track.atSubmit?.etaMs;
      const etaNote = !waited ? '' : eta != null ? ` (its ETA at submission: ${hhmm(eta)})` : ' (no ETA was known at submission)';
      if (released.length === 0) {
        this.event('bind', job, `${job} bound to ${where} by the extender`);
      } else if (track.gangSize > 1) {
        const at = new Set(released.map((r) => r.atMs));
        this.event(
          'release',
          job,
          `${job}: all ${released.length} of ${track.gangSize} pods released in one pass${where ? `, bound: ${where}` : ''}${etaNote}`,
          [at.size === 1 ? 'the gang starts whole: no pod of it was released before all of them could run' : `released at ${[...at].map(hhmm).join(', ')}`],
        );
      } else {
        this.event('release', job, `${job} released by the queue manager${where ? `, bound to ${where}` : ''}${etaNote}`);
      }
    }
  }

  /** Submits a pod through the webhooks (kube-apiserver's admission), then settles; records the warning and what the admin API says. */
  async submit(s: SubmitSpec): Promise<void> {
    const jobName = s.gang?.job ?? s.name;
    const job = `${s.namespace}/${jobName}`;
    const labels: Record<string, string> = { [LABEL_QUEUE]: s.queue, [LABEL_QOS]: s.qos, [LABEL_JOB]: jobName };
    if (s.gang) labels[LABEL_GANG_SIZE] = String(s.gang.size);
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: s.name, namespace: s.namespace, labels, annotations: { [ANNOTATION_GPU_MODEL]: s.model, [ANNOTATION_EXPECTED_DURATION]: s.expected } },
      spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'trainer:1', resources: { limits: { 'nvidia.com/gpu': String(s.gpusPerPod) } } }] },
    };
    const admitted = await this.stand.create(pod, s.user);
    const key = podKey(admitted.pod);
    this.podJob.set(key, job);
    const gangSize = s.gang?.size ?? 1;
    const track = this.jobs.get(job) ?? {
      job,
      queue: s.queue,
      qos: s.qos,
      user: s.user,
      gpus: s.gpusPerPod * gangSize,
      gpusPerPod: s.gpusPerPod,
      model: s.model,
      gangSize,
      expected: s.expected,
      fromSnapshot: false,
      pods: [],
      atSubmit: null,
      warnings: [],
      endedHow: null,
      reclaimedFor: null,
      apiAfterReclaim: null,
    };
    this.jobs.set(job, track);
    track.pods.push({ pod: key, submittedMs: this.clock.now(), releasedMs: null, boundMs: null, node: null, endedMs: null });
    track.warnings.push(...admitted.warnings);
    const what = `${s.gpusPerPod} × ${s.model.toUpperCase()} GPU${s.gpusPerPod === 1 ? '' : 's'}, ${s.qos}, expected ${s.expected}`;
    const text = s.gang
      ? `${s.user} submits ${key}: pod ${track.pods.length} of gang ${job} (${s.gang.size} pods of ${what})`
      : `${s.user} submits ${job} (${what}) to queue ${s.queue}`;
    const submitEvent: TimelineEvent = {
      atMs: this.clock.now(),
      step: this.step,
      kind: 'submit',
      job,
      text,
      details: admitted.warnings.map((w) => `Warning: ${w}`),
    };
    this.events.push(submitEvent);
    await this.settle();
    const view = await this.api<ApiJob>('GET', `/api/v1/jobs/${s.namespace}/${jobName}`);
    if (view.status !== 200) throw new DemoError(`GET /api/v1/jobs/${job} answered HTTP ${view.status}`);
    const j = view.body;
    const etaMs = j.estimatedStartTime ? Date.parse(j.estimatedStartTime) : null;
    track.atSubmit = {
      state: j.state,
      waitingFor: j.waitingFor,
      reason: j.reason,
      position: j.position,
      etaMs,
      etaUnknown: j.estimatedStart?.unknownReason ?? null,
    };
    if (j.state === 'queued') {
      const eta = etaMs !== null ? `estimated start ${hhmm(etaMs)}` : `no estimated start: ${j.estimatedStart?.unknownReason ?? 'not known yet'}`;
      submitEvent.details.push(`admin API: queued, waiting for ${j.waitingFor}, position ${j.position ?? '-'}; ${eta}`);
    }
  }

  /** A pod's containers end (its kubelet reports Succeeded), then settles. */
  async finish(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const job = this.podJob.get(key) ?? key;
    const pod = this.stand.finish(namespace, name);
    const track = this.jobs.get(job);
    const p = track?.pods.find((x) => x.pod === key);
    if (p) p.endedMs = this.clock.now();
    if (track && track.pods.every((x) => x.endedMs !== null)) track.endedHow = 'finished';
    const gpus = gpuCount(pod, this.running.cache.resources);
    this.event(
      'finish',
      job,
      `${job} finished: ${gpus} GPU${gpus === 1 ? '' : 's'} on ${pod.spec?.nodeName ?? '?'} free${track?.fromSnapshot ? ' (a job of the snapshot)' : ''}`,
    );
    await this.settle();
  }

  private reclaimed(r: Reclaim): void {
    this.flushStarts(); // the preemptor's release comes before its victims go
    const preemptorJob = this.podJob.get(podKey(r.preemptor)) ?? podKey(r.preemptor);
    for (const v of r.victims) {
      const key = podKey(v);
      const job = this.podJob.get(key) ?? key;
      const track = this.jobs.get(job);
      const p = track?.pods.find((x) => x.pod === key);
      if (p) p.endedMs = this.clock.now();
      if (track) {
        track.endedHow = 'reclaimed';
        track.reclaimedFor = preemptorJob;
      }
      const gpus = gpuCount(v, this.running.cache.resources);
      this.event(
        'reclaim',
        job,
        `${job} (${v.metadata?.labels?.[LABEL_QOS] ?? '?'}) reclaimed for ${preemptorJob} (${r.preemptor.metadata?.labels?.[LABEL_QOS] ?? '?'}): ${gpus} GPUs on ${r.node}`,
        [`sluice's preempt verb kept ${key} as the only victim on ${r.node}; kube-scheduler deleted it`],
      );
    }
  }

  /** After a reclaim: waits for sluice's record of it (Postgres, written in the background) and adds it to the timeline. */
  async recordReclaims(): Promise<void> {
    for (const track of this.jobs.values()) {
      if (track.endedHow !== 'reclaimed' || track.apiAfterReclaim) continue;
      const [ns, name] = track.job.split('/') as [string, string];
      let last: ApiJob | null = null;
      for (let i = 0; i < 100; i++) {
        const res = await this.api<ApiJob>('GET', `/api/v1/jobs/${ns}/${name}`);
        if (res.status === 200) {
          last = res.body;
          if (last.state === 'preempted') break;
        }
        await sleep(50);
      }
      track.apiAfterReclaim = last ? { state: last.state, preemptedBy: last.preemptedBy } : null;
      const ev = [...this.events].reverse().find((e) => e.kind === 'reclaim' && e.job === track.job);
      ev?.details.push(
        last ? `admin API: ${track.job} ${last.state}${last.preemptedBy ? ` by ${last.preemptedBy}` : ''}` : `admin API: no record of ${track.job}`,
      );
    }
  }

  timeline(setup: string[], startMs: number): Timeline {
    return { setup, startMs, endMs: this.clock.now(), events: this.events, jobs: [...this.jobs.values()] };
  }
}

interface ApiJob {
  state: string;
  waitingFor: string;
  reason: string;
  position: number | null;
  estimatedStartTime: string | null;
  estimatedStart: { unknownReason: string | null } | null;
  preemptedBy: string | null;
}

function gpuCount(p: V1Pod, resources: readonly string[]): number {
  try {
    return podGpuRequests(p, resources).reduce((a, r) => a + r.count, 0);
  } catch {
    return 0;
  }
}

export interface Started {
  running: Running;
  driver: Driver;
  close(): Promise<void>;
}

/**
 * Checks Postgres, empties the demo's schema, starts sluice on the snapshot with the
 * simulated clock and waits for its store. Throws DemoError with what to do when it cannot.
 */
export async function startDemo(o: DemoOptions, snapshotJson: unknown, clock: SimulatedClock): Promise<Started> {
  if (!/^sluice_demo[a-z0-9_]*$/.test(o.storeSchema)) {
    throw new DemoError(`--store-schema ${o.storeSchema}: the demo empties its schema at the start, so it only uses schemas named sluice_demo...`);
  }
  const down = await checkPostgres(o.storeUrl);
  if (down) {
    throw new DemoError(
      `the demo keeps its queues and quotas in PostgreSQL and cannot reach it at ${redact(o.storeUrl)} (${down}); start PostgreSQL or point --store-url (or DATABASE_URL) at one. Redis is not needed: in snapshot mode the queue manager releases jobs in memory`,
    );
  }
  const admin = new pg.Client({ connectionString: o.storeUrl });
  await admin.connect();
  try {
    await admin.query(`DROP SCHEMA IF EXISTS "${o.storeSchema}" CASCADE`);
  } finally {
    await admin.end();
  }
  const snap = parseSnapshot(snapshotJson, `cluster snapshot ${o.snapshotFile}`);
  const logStream: WriteStream | null = o.logFile ? createWriteStream(o.logFile) : null;
  // The admin API's token: random, known only to this run's driver.
  const token = randomBytes(12).toString('hex');
  const config = loadConfig({
    env: {},
    base: {
      clusterSnapshot: o.snapshotFile,
      logLevel: o.logLevel ?? 'info',
      https: { host: '127.0.0.1', port: 0, certFile: '', keyFile: '' },
      http: { host: '127.0.0.1', port: 0 },
      store: { url: o.storeUrl, schema: o.storeSchema },
      api: { tokenReview: false, token },
      // The submit warning's what-if gets more than its default 20 ms: on a loaded machine a
      // pause would print "ETA not yet known", and what the demo shows is the estimate.
      queue: { etaAdmissionBudgetMs: 500 },
    },
  });
  const log = logStream ? createLogger(config.logLevel, logStream) : createLogger('silent');
  let running: Running;
  let driver: Driver;
  try {
    running = await serve(config, { log, now: clock.now });
  } catch (e) {
    logStream?.end();
    throw e;
  }
  try {
    driver = new Driver(running, clock, snap, token);
    await driver.awaitStore();
  } catch (e) {
    await running.close();
    logStream?.end();
    throw e;
  }
  return {
    running,
    driver,
    async close() {
      await running.close();
      await new Promise<void>((r) => (logStream ? logStream.end(r) : r()));
    },
  };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return url;
  }
}

export interface DemoRun {
  timeline: Timeline;
  ok: boolean;
  files: { txt: string; svg: string; png: string | null; json: string; log: string };
  pngSkipped: string | null;
}

/** Runs the scenario and writes the files; throws DemoError when sluice cannot run. */
export async function runDemo(o: { snapshot: string; out: string; storeUrl: string; storeSchema: string; chromium: string }): Promise<DemoRun> {
  mkdirSync(o.out, { recursive: true });
  let text: string;
  try {
    text = readFileSync(o.snapshot, 'utf8');
  } catch (e) {
    throw new DemoError(`cluster snapshot ${o.snapshot} cannot be read: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DemoError(`cluster snapshot ${o.snapshot} is not JSON: ${(e as Error).message}`);
  }
  const files = {
    txt: join(o.out, 'demo-timeline.txt'),
    svg: join(o.out, 'demo-timeline.svg'),
    png: join(o.out, 'demo-timeline.png'),
    json: join(o.out, 'demo-timeline.json'),
    log: join(o.out, 'sluice.log'),
  };
  const start = new Date();
  start.setUTCHours(9, 0, 0, 0);
  const clock = new SimulatedClock(start.getTime());
  const started = await startDemo({ snapshotFile: o.snapshot, storeUrl: o.storeUrl, storeSchema: o.storeSchema, logFile: files.log }, json, clock);
  let timeline: Timeline;
  try {
    await runScenario(started.driver);
    timeline = started.driver.timeline(SETUP, start.getTime());
  } finally {
    await started.close();
  }
  const checks = checkSteps(timeline);
  writeFileSync(files.txt, `${timelineText(timeline)}\n${checksText(checks)}`);
  writeFileSync(files.json, `${JSON.stringify({ timeline, checks }, null, 2)}\n`);
  const svg = timelineSvg(timeline);
  writeFileSync(files.svg, svg);
  const pngSkipped = await svgToPng(svg, files.png, o.chromium);
  return { timeline, ok: checks.every((c) => c.ok), files: { ...files, png: pngSkipped ? null : files.png }, pngSkipped };
}
