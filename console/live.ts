// Live updates for open console pages, as server-sent events. Cluster changes mark the
// nodes they touch; a short tick then sends those nodes' rows (the browser patches only
// them), and a "changed" event when the queue manager has evaluated again, so the queue
// and job pages fetch afresh. Nothing runs while no page is open.
import type { ClusterCache } from '../cluster/cache.js';
import type { QueueManager } from '../queue/manager.js';
import type { SizeMix } from '../placement/types.js';
import { nodeRow, observedMix, type NodeRow } from './views.js';

export interface LiveClient {
  send(event: string, data: unknown): void;
}

export interface LiveFeedOptions {
  cache: ClusterCache;
  manager: QueueManager | null;
  /** How often changes are gathered and sent (default 200 ms: a change shows within a second). */
  tickMs?: number;
  /** At most this often pages refetch the whole map because the pod mix changed (default 5 s). */
  mixEveryMs?: number;
}

export class LiveFeed {
  private readonly clients = new Set<LiveClient>();
  private readonly dirtyNodes = new Set<string>();
  private podsChanged = false;
  private timer: NodeJS.Timeout | null = null;
  private lastEvaluatedMs = 0;
  private lastMix: SizeMix | null = null;
  private lastMixSentMs = 0;

  constructor(private readonly opts: LiveFeedOptions) {
    opts.cache.onChange((c) => {
      if (this.clients.size === 0) return;
      if (c.kind === 'node') this.dirtyNodes.add(c.name);
      else {
        this.podsChanged = true;
        if (c.before?.nodeName) this.dirtyNodes.add(c.before.nodeName);
        if (c.after?.nodeName) this.dirtyNodes.add(c.after.nodeName);
      }
    });
  }

  get size(): number {
    return this.clients.size;
  }

  add(client: LiveClient): () => void {
    this.clients.add(client);
    if (!this.timer) {
      this.lastEvaluatedMs = this.opts.manager?.current()?.evaluatedAtMs ?? 0;
      this.lastMix = this.opts.cache.sizeMix();
      this.timer = setInterval(() => this.flush(), this.opts.tickMs ?? 200);
      this.timer.unref();
    }
    return () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.dirtyNodes.clear();
  }

  /** Sends what changed since the last tick. */
  flush(): void {
    const { cache } = this.opts;
    const mixNow = cache.sizeMix();
    if (this.dirtyNodes.size > 0) {
      const mix = observedMix(mixNow);
      const rows: NodeRow[] = [];
      const gone: string[] = [];
      for (const name of this.dirtyNodes) {
        let any = false;
        for (const resource of cache.resources) {
          const row = nodeRow(cache, name, resource, mix);
          if (row) {
            rows.push(row);
            any = true;
          }
        }
        if (!any) gone.push(name);
      }
      this.dirtyNodes.clear();
      this.broadcast('nodes', { rows, gone });
    }
    // Every node's stranded figure is measured against the mix, which on a busy cluster
    // changes with nearly every new pod: pages refetch the whole map (and redraw the rows
    // whose figures changed) at most every mixEveryMs.
    const now = Date.now();
    if (mixNow !== this.lastMix && now - this.lastMixSentMs >= (this.opts.mixEveryMs ?? 5000)) {
      this.lastMix = mixNow;
      this.lastMixSentMs = now;
      this.broadcast('cluster', { reason: 'the recent pod mix changed' });
    }
    const evaluated = this.opts.manager?.current()?.evaluatedAtMs ?? 0;
    if (evaluated !== this.lastEvaluatedMs || this.podsChanged) {
      this.lastEvaluatedMs = evaluated;
      this.podsChanged = false;
      this.broadcast('changed', { evaluatedAt: evaluated ? new Date(evaluated).toISOString() : null });
    }
  }

  private broadcast(event: string, data: unknown): void {
    for (const c of this.clients) c.send(event, data);
  }
}
