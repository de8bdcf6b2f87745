// A lean list+watch of one resource, as client-go's reflector does it: a paginated list
// (limit/continue, one consistent snapshot), then a watch from the list's resourceVersion
// with bookmarks, re-opened from the last resourceVersion seen when the apiserver ends it,
// and a relist when the apiserver answers 410 Gone (history compacted). Every object is
// decoded with JSON.parse and passed through `project` before anything keeps it; nothing
// here keeps the objects themselves, only their keys (to tell add from update and to find
// what a relist no longer shows).
//
// Replaces client-node's makeInformer for nodes and pods (cluster/informers.ts): that one
// turns every object into class instances (ObjectSerializer) and keeps every full object
// in its ObjectCache; at 100,000 pods that was most of sluice's memory and, in a real
// scheduling run, a quarter of its CPU with the client's fetch layer.
//
// Failures (list refused, apiserver unreachable, watch broken, an ERROR event other than
// 410) reject start() or are reported through 'error'; watch-with-backoff.ts restarts.
import type { IncomingMessage } from 'node:http';
import { ApiError, readText, type ApiTransport } from './api-transport.js';

export interface ListWatchOptions<T> {
  /** Collection path, e.g. /api/v1/pods. */
  path: string;
  /** What is kept of each decoded object (cluster/slim.ts). */
  project: (raw: unknown) => T;
  /** Identity of a projected object (pods: uid, nodes: name); '' = skip the object. */
  keyOf: (o: T) => string;
  /** Items per list page (client-go's reflector asks 500). */
  pageSize?: number;
  /** Asked watch duration; the apiserver ends the watch then and it is re-opened (default 5-10 min, spread). */
  watchTimeoutSeconds?: number;
}

type Handlers<T> = {
  add: Array<(o: T) => void>;
  update: Array<(o: T) => void>;
  /** Called with the key; with the last object when the watch delivered one. */
  delete: Array<(key: string, o: T | undefined) => void>;
  error: Array<(err?: unknown) => void>;
};

/** What a failed watch reports: relist (410) or give up (anything else). */
class Gone extends Error {}

export class ListWatch<T> {
  private readonly h: Handlers<T> = { add: [], update: [], delete: [], error: [] };
  private known = new Set<string>();
  private resourceVersion = '';
  private generation = 0;
  private abort: AbortController | null = null;
  private readonly pageSize: number;

  constructor(
    private readonly api: ApiTransport,
    private readonly o: ListWatchOptions<T>,
  ) {
    this.pageSize = o.pageSize ?? 500;
  }

  on(verb: 'add' | 'update', cb: (o: T) => void): void;
  on(verb: 'delete', cb: (key: string, o: T | undefined) => void): void;
  on(verb: 'error', cb: (err?: unknown) => void): void;
  on(verb: keyof Handlers<T>, cb: (...a: never[]) => void): void {
    (this.h[verb] as unknown[]).push(cb);
  }

  /** Lists, then starts watching in the background. Rejects when the list fails. */
  async start(): Promise<void> {
    this.abort?.abort();
    const gen = ++this.generation;
    const abort = (this.abort = new AbortController());
    await this.list(abort.signal);
    if (gen !== this.generation) return;
    void this.watchLoop(gen, abort.signal);
  }

  async stop(): Promise<void> {
    this.generation++;
    this.abort?.abort();
    this.abort = null;
  }

  private async list(signal: AbortSignal): Promise<void> {
    const seen = new Set<string>();
    let cont = '';
    let rv = '';
    let restarted = false;
    for (;;) {
      const q = `?limit=${this.pageSize}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
      const res = await this.api.open('GET', this.o.path + q, { signal, timeoutMs: 60_000 });
      const text = await readText(res);
      const status = res.statusCode ?? 0;
      if (status === 410 && cont && !restarted) {
        // The continue token expired mid-list: start over once, as the reflector does.
        restarted = true;
        cont = '';
        seen.clear();
        continue;
      }
      if (status !== 200) throw new ApiError(status, text);
      const page = JSON.parse(text) as { metadata?: { resourceVersion?: string; continue?: string }; items?: unknown[] };
      if (!cont) rv = page.metadata?.resourceVersion ?? '';
      for (const raw of page.items ?? []) this.apply('ADDED', raw, seen);
      cont = page.metadata?.continue ?? '';
      if (!cont) break;
    }
    for (const key of this.known) if (!seen.has(key)) for (const cb of this.h.delete) cb(key, undefined);
    this.known = seen;
    this.resourceVersion = rv;
  }

  /** Applies one object of a list or watch event; returns its resourceVersion. */
  private apply(type: string, raw: unknown, seen: Set<string> = this.known): string {
    const o = this.o.project(raw);
    const key = this.o.keyOf(o);
    const rv = (raw as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion ?? '';
    if (!key) return rv;
    if (type === 'DELETED') {
      seen.delete(key);
      for (const cb of this.h.delete) cb(key, o);
      return rv;
    }
    const update = this.known.has(key);
    seen.add(key);
    for (const cb of update ? this.h.update : this.h.add) cb(o);
    return rv;
  }

  private async watchLoop(gen: number, signal: AbortSignal): Promise<void> {
    while (gen === this.generation) {
      try {
        await this.watchOnce(signal);
      } catch (e) {
        if (gen !== this.generation) return;
        if (e instanceof Gone) {
          try {
            await this.list(signal);
            continue;
          } catch (err) {
            if (gen !== this.generation) return;
            return this.fail(err);
          }
        }
        return this.fail(e);
      }
    }
  }

  private fail(err: unknown): void {
    for (const cb of this.h.error) cb(err);
  }

  /** One watch request, until the apiserver ends it (resolves) or it fails (throws). */
  private async watchOnce(signal: AbortSignal): Promise<void> {
    const timeout = this.o.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
    const q = `?watch=true&allowWatchBookmarks=true&timeoutSeconds=${timeout}&resourceVersion=${encodeURIComponent(this.resourceVersion)}`;
    // The apiserver ends the watch after `timeout`; silence well past that is a dead
    // connection (no FIN seen): the idle timeout breaks it and the owner restarts.
    const res = await this.api.open('GET', this.o.path + q, { signal, timeoutMs: (timeout + 60) * 1000 });
    const status = res.statusCode ?? 0;
    if (status === 410) {
      await readText(res);
      throw new Gone('resourceVersion too old');
    }
    if (status !== 200) throw new ApiError(status, await readText(res));
    await this.events(res);
  }

  /** Reads newline-delimited watch events from the stream. */
  private events(res: IncomingMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      let buf = '';
      let failed = false;
      const fail = (e: unknown): void => {
        if (failed) return;
        failed = true;
        res.destroy();
        reject(e);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (failed) return;
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() === '') continue;
          try {
            this.event(line);
          } catch (e) {
            return fail(e);
          }
        }
      });
      res.on('end', () => {
        if (failed) return;
        if (buf.trim() !== '') {
          try {
            this.event(buf);
          } catch (e) {
            return fail(e);
          }
        }
        resolve();
      });
      res.on('error', fail);
      res.on('aborted', () => fail(new Error('the apiserver closed the watch mid-event')));
    });
  }

  private event(line: string): void {
    const e = JSON.parse(line) as { type?: string; object?: { code?: number; message?: string; metadata?: { resourceVersion?: string } } };
    switch (e.type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        const rv = this.apply(e.type, e.object);
        if (rv) this.resourceVersion = rv;
        return;
      }
      case 'BOOKMARK': {
        const rv = e.object?.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        return;
      }
      case 'ERROR':
        if (e.object?.code === 410) throw new Gone(e.object.message ?? 'resourceVersion too old');
        throw new ApiError(e.object?.code ?? 0, JSON.stringify(e.object ?? {}));
      default:
        throw new Error(`unexpected watch event type ${String(e.type)}`);
    }
  }
}
