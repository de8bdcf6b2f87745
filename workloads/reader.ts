// The edge of job frameworks: reads workload objects from the apiserver for resolve.ts,
// once per object per cacheTtl (the pods of one job share one read; a read in progress is
// shared too), never more than one call per object at a time. Misses are remembered for
// missTtl so a job whose workload cannot be read costs one call per missTtl, not one per pod.
// A kind whose CRD is not installed is switched off for kindOffTtl with one log line (and
// one more when it comes back), not an error per pod.
import { LRUCache } from 'lru-cache';
import { ApiError } from '../cluster/api-transport.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { KubeObject, WorkloadKind, WorkloadRef } from './kind.js';
import type { ObjectReader, ReadResult } from './resolve.js';

/** GET of an apiserver path: the body text of a 2xx answer; ApiError (code, body) otherwise. */
export type ApiGet = (path: string, timeoutMs: number) => Promise<string>;

export interface WorkloadReaderOptions {
  /** How long a read object is used before it is read again. */
  cacheTtlMs?: number;
  /** How long a failed read is remembered. */
  missTtlMs?: number;
  /** How long a kind whose CRD is missing stays off. */
  kindOffTtlMs?: number;
  /** Give up on the apiserver after this long (the webhook's own timeout is 5 s). */
  timeoutMs?: number;
  maxObjects?: number;
  now?: () => number;
}

interface Entry {
  at: number;
  result: ReadResult;
}

export class WorkloadReader implements ObjectReader {
  private readonly cache: LRUCache<string, Entry>;
  private readonly inFlight = new Map<string, Promise<ReadResult>>();
  /** Kinds switched off (CRD missing), until when. */
  private readonly kindOff = new Map<string, number>();
  private readonly cacheTtlMs: number;
  private readonly missTtlMs: number;
  private readonly kindOffTtlMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly get: ApiGet,
    private readonly log: Logger,
    private readonly metrics: Metrics | null,
    o: WorkloadReaderOptions = {},
  ) {
    this.cacheTtlMs = o.cacheTtlMs ?? 30_000;
    this.missTtlMs = o.missTtlMs ?? 5_000;
    this.kindOffTtlMs = o.kindOffTtlMs ?? 60_000;
    this.timeoutMs = o.timeoutMs ?? 1_000;
    this.now = o.now ?? Date.now;
    this.cache = new LRUCache({ max: o.maxObjects ?? 10_000 });
  }

  read(kind: WorkloadKind, ref: WorkloadRef, namespace: string): ReadResult | Promise<ReadResult> {
    const kindKey = `${kind.group}/${kind.kind}`;
    const off = this.kindOff.get(kindKey);
    if (off !== undefined && this.now() < off) {
      return { missing: 'kind', reason: `the ${kind.kind} CRD (${kind.resource}.${kind.group}) is not installed; this integration is off` };
    }
    const key = `${namespace}/${kindKey}/${ref.name}`;
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < ('ok' in hit.result ? this.cacheTtlMs : this.missTtlMs)) return hit.result;
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.readOnce(kind, ref, namespace)
        .then((result) => {
          this.cache.set(key, { at: this.now(), result });
          return result;
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    return p;
  }

  private async readOnce(kind: WorkloadKind, ref: WorkloadRef, namespace: string): Promise<ReadResult> {
    const kindKey = `${kind.group}/${kind.kind}`;
    // The owner reference's version is one the apiserver serves (the object was made with it).
    const version = ref.apiVersion.includes('/') ? ref.apiVersion.slice(ref.apiVersion.indexOf('/') + 1) : kind.version;
    const path = `/apis/${kind.group}/${version}/namespaces/${encodeURIComponent(namespace)}/${kind.resource}/${encodeURIComponent(ref.name)}`;
    const what = `${kind.kind} ${namespace}/${ref.name}`;
    const count = (result: string): void => this.metrics?.workloadReads.inc({ kind: kind.kind, result });
    let text: string;
    try {
      text = await this.get(path, this.timeoutMs);
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) {
        if (notFoundNames(e.body, ref.name)) {
          count('not_found');
          return { missing: 'object', reason: `not found (deleted?)` };
        }
        count('no_crd');
        const reason = `the ${kind.kind} CRD (${kind.resource}.${kind.group}/${version}) is not installed`;
        if (!this.kindOff.has(kindKey))
          this.log.warn(
            { kind: kind.kind, group: kind.group, version },
            `${reason}: the ${kind.kind} integration is off; pods owned by a ${kind.kind} are their own jobs (checked again in ${Math.round(this.kindOffTtlMs / 1000)} s)`,
          );
        this.kindOff.set(kindKey, this.now() + this.kindOffTtlMs);
        return { missing: 'kind', reason };
      }
      if (e instanceof ApiError && e.code === 403) {
        count('forbidden');
        const reason = `sluice may not read ${kind.resource}.${kind.group} (403 forbidden); grant its ClusterRole get on ${kind.resource} in API group ${kind.group}`;
        this.log.warn({ kind: kind.kind, namespace, name: ref.name }, `${what}: ${reason}`);
        return { error: reason };
      }
      count('error');
      const reason = e instanceof ApiError ? `the apiserver answered ${e.code}` : `${(e as Error)?.message ?? String(e)}`;
      this.log.warn({ kind: kind.kind, namespace, name: ref.name, err: reason }, `${what} cannot be read: ${reason}`);
      return { error: reason };
    }
    let obj: KubeObject;
    try {
      obj = JSON.parse(text) as KubeObject;
    } catch {
      count('error');
      return { error: 'the apiserver sent a body that is not JSON' };
    }
    if (typeof obj !== 'object' || obj === null || typeof obj.metadata !== 'object' || obj.metadata === null) {
      count('error');
      return { error: 'the apiserver sent an object without metadata' };
    }
    count('found');
    if (this.kindOff.delete(kindKey))
      this.log.info({ kind: kind.kind, group: kind.group }, `the ${kind.kind} CRD is installed again: the ${kind.kind} integration is on`);
    return { ok: obj };
  }
}

/** A 404 Status about the object itself (details.name), not about an unknown resource type. */
function notFoundNames(body: string, name: string): boolean {
  try {
    const s = JSON.parse(body) as { details?: { name?: unknown } };
    return s?.details?.name === name;
  } catch {
    return false;
  }
}
