// HTTP load driver and measurements for the latency benchmark: keep-alive POSTs with
// node:http, closed-loop workers at a fixed concurrency, percentiles, and the server's
// CPU and RSS read from /proc/<pid>/stat.
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

export interface Reply {
  status: number;
  body: string;
  ms: number;
}

export class Client {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(base: string, concurrency: number) {
    const u = new URL(base);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  }

  post(path: string, body: Buffer): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = request(
        {
          host: this.host,
          port: this.port,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: Number(process.hrtime.bigint() - t0) / 1e6 }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function stats(ms: readonly number[]): LatencyStats {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? 0;
  return { count: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s.at(-1) ?? 0, mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) };
}

/** Runs `step(i)` for i = 0.. on `concurrency` closed-loop workers until `count` steps
 * are done or `maxMs` passed. Returns steps done and the wall time. */
export async function closedLoop(concurrency: number, count: number, maxMs: number, step: (i: number) => Promise<void>): Promise<{ done: number; ms: number }> {
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() - t0 < maxMs) {
      const i = next++;
      await step(i);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { done, ms: performance.now() - t0 };
}

export interface ProcSample {
  /** CPU seconds used so far (user + system). */
  cpuSeconds: number;
  rssMB: number;
}

const CLK_TCK = 100; // Linux USER_HZ; sysconf is not reachable from node without a native module

/** CPU and RSS of a process from /proc/<pid>/stat; null when not on Linux or gone. */
export function procSample(pid: number): ProcSample | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its ')' are fixed.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]);
    const stime = Number(f[12]);
    const rssPages = Number(f[21]);
    return { cpuSeconds: (utime + stime) / CLK_TCK, rssMB: (rssPages * 4096) / (1024 * 1024) };
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` to find its peak. */
export class RssWatch {
  peakMB = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    everyMs = 200,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }
  sample(): void {
    const s = procSample(this.pid);
    if (s && s.rssMB > this.peakMB) this.peakMB = s.rssMB;
  }
  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

export interface Started {
  child: ChildProcess;
  url: string;
  startupMs: number;
  /** The whole "serving" line (sluice's has ops: its /readyz and /metrics URL). */
  line: Record<string, unknown>;
}

/** Starts a server child and waits for its "serving" JSON line (fields api or url). */
export function startChild(cmd: string[], marker: string, env: NodeJS.ProcessEnv): Promise<Started> {
  const t0 = performance.now();
  const child = spawn(process.execPath, cmd, { stdio: ['ignore', 'pipe', 'pipe'], env });
  return new Promise((resolveP, reject) => {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`${cmd.join(' ')} did not report "${marker}" in 120 s`)), 120_000);
    lines.on('line', (line) => {
      if (!line.includes(marker)) return;
      try {
        const j = JSON.parse(line) as { api?: string };
        if (!j.api) return;
        clearTimeout(timer);
        resolveP({ child, url: j.api.replace('0.0.0.0', '127.0.0.1'), startupMs: performance.now() - t0, line: j as Record<string, unknown> });
      } catch {
        /* not JSON: keep waiting */
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd.join(' ')} exited with ${code} before serving: ${stderr}`));
    });
  });
}

/**
 * `sluice serve --config FILE [extra]` from the build in `dist`, on loopback with ports the
 * kernel picks, logging at info, waiting for its "sluice is serving" line; `nodeArgs` go to
 * node itself (--cpu-prof ...). What every benchmark that starts a real sluice runs.
 */
export function startSluice(o: {
  dist: string;
  config: string;
  env: NodeJS.ProcessEnv;
  nodeArgs?: readonly string[];
  extra?: readonly string[];
}): Promise<Started> {
  return startChild(
    [
      ...(o.nodeArgs ?? []),
      join(o.dist, 'bin/sluice.js'),
      'serve',
      '--config',
      o.config,
      ...(o.extra ?? []),
      ...['--https-host', '127.0.0.1', '--https-port', '0', '--http-host', '127.0.0.1', '--http-port', '0', '--log-level', 'info'],
    ],
    'sluice is serving',
    o.env,
  );
}

export function stop(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null) return r();
    child.on('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}
