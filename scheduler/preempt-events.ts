// What a victim's owner sees in `kubectl describe`: a core/v1 Event on each preempted pod
// and on the controller that made it ("preempted by team-b/train-7, guaranteed in queue
// team-b"). Sent in the background; a failed Event is logged, never retried, never fatal.
import { hostname } from 'node:os';
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { PreemptionRecord, PreemptionSink } from '../store/preemptions.js';
import { errorText } from './extender.js';

/** Creates one Event; the apiserver client in production, a recorder in tests. */
export type EventPoster = (namespace: string, event: CoreV1Event) => Promise<unknown>;

export function kubeEventPoster(kc: KubeConfig): EventPoster {
  const core = kc.makeApiClient(CoreV1Api);
  return (namespace, body) => core.createNamespacedEvent({ namespace, body });
}

export class PreemptionEvents implements PreemptionSink {
  private readonly instance = hostname();

  constructor(
    private readonly post: EventPoster,
    private readonly log: Logger,
  ) {}

  recordPreemption(r: PreemptionRecord): void {
    const owners = new Map<string, { namespace: string; apiVersion: string; kind: string; name: string; uid: string }>();
    for (const v of r.victims) {
      const message = `${r.reason}: ${v.gpus} ${r.resource} on node ${r.node} taken back from this best-effort pod`;
      this.send(v.namespace, { apiVersion: 'v1', kind: 'Pod', name: v.pod, uid: v.uid }, message, r.at);
      if (v.owner) owners.set(`${v.namespace}/${v.owner.uid || v.owner.name}`, { namespace: v.namespace, ...v.owner });
    }
    for (const o of owners.values()) {
      const pods = r.victims.filter((v) => v.namespace === o.namespace && v.owner?.name === o.name && v.owner.kind === o.kind).map((v) => v.pod);
      const message = `${r.reason}: pod${pods.length === 1 ? '' : 's'} ${pods.join(', ')} on node ${r.node} deleted; as best-effort work it is queued again when its pods are re-created`;
      this.send(o.namespace, { apiVersion: o.apiVersion, kind: o.kind, name: o.name, uid: o.uid }, message, r.at);
    }
  }

  private send(namespace: string, target: { apiVersion: string; kind: string; name: string; uid: string }, message: string, at: Date): void {
    const event: CoreV1Event = {
      metadata: { generateName: `${target.name}.`, namespace },
      involvedObject: { ...target, namespace },
      reason: 'PreemptedBySluice',
      message,
      type: 'Warning',
      source: { component: 'sluice' },
      reportingComponent: 'sluice',
      reportingInstance: this.instance,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    this.post(namespace, event).catch((e: unknown) => {
      this.log.warn(
        { namespace, kind: target.kind, name: target.name, err: errorText(e) },
        `cannot create the preemption Event on ${target.kind} ${namespace}/${target.name} (${errorText(e)}); the preemption itself is unaffected`,
      );
    });
  }
}
