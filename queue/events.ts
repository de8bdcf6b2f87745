// Events on pods the queue manager holds: "Released" when their gate is removed, and
// "Queued" (at most once a minute per job) saying why they still wait, so `kubectl
// describe pod` tells the user. Sent in the background at a bounded rate so that
// thousands of waiting jobs cannot flood the apiserver; what exceeds the rate is dropped
// and counted, never queued without bound.
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Unit } from './units.js';

export interface QueueEvents {
  released(u: Unit): void;
  waiting(u: Unit, message: string): void;
}

export class KubeQueueEvents implements QueueEvents {
  private readonly core: CoreV1Api;
  private tokens: number;
  private refilledAt = Date.now();
  private dropped = 0;
  private warned = false;

  constructor(
    kc: KubeConfig,
    private readonly log: Logger,
    private readonly perSecond: number,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.tokens = perSecond;
  }

  released(u: Unit): void {
    const why = u.inFlight ? 'the rest of its gang is already released' : `queue ${u.queue} has room and the job fits on the nodes`;
    for (const p of u.pods) this.emit(u.namespace, p.name, p.uid, 'Released', `released by sluice from queue ${u.queue}: ${why}`);
  }

  waiting(u: Unit, message: string): void {
    // One event per job: on its first waiting pod.
    const p = u.pods[0];
    if (p) this.emit(u.namespace, p.name, p.uid, 'Queued', message);
  }

  private take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private emit(namespace: string, name: string, uid: string, reason: string, message: string): void {
    if (!this.take()) {
      this.dropped++;
      return;
    }
    const now = new Date();
    const body: CoreV1Event = {
      metadata: { generateName: `${name}.`, namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace, name, uid },
      reason,
      message: message.slice(0, 1024),
      type: 'Normal',
      source: { component: 'sluice-queue' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: 'sluice-queue',
      reportingInstance: 'sluice',
    };
    this.core.createNamespacedEvent({ namespace, body }).catch((e: unknown) => {
      if (!this.warned) {
        this.warned = true;
        this.log.warn({ err: (e as Error).message, dropped: this.dropped }, 'cannot create pod events (RBAC or apiserver); queueing goes on without them');
      }
    });
  }
}
