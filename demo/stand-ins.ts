// What surrounds sluice in a real cluster, played on snapshot mode's in-memory cluster
// (cluster/in-memory.ts) for the demo. None of it decides anything sluice decides: every
// decision is sluice's own answer over HTTP, from the same server `sluice serve` runs.
//   - kube-apiserver's admission: a pod to create is sent to sluice's webhooks as an
//     AdmissionReview (mutate, then validate), sluice's JSON patch is applied, and the pod
//     is stored unless validation denied it; the warnings are what kubectl would print.
//   - kube-scheduler: each pod whose gates are gone gets a scheduling cycle through
//     sluice's extender (filter, prioritize, bind; sluice's scores alone, where
//     kube-scheduler would add its own plugins' scores). When no node fits and the pod may
//     preempt (preemptionPolicy is not Never), the pods of lower priority on the nodes that
//     failed for a reason preemption can cure go to sluice's preempt verb, as kube-scheduler's
//     DefaultPreemption proposes them; the victims sluice keeps are deleted and the pod is
//     tried again.
//   - kubelets: a bound pod starts running (phase Running, startTime); a pod finishes
//     (Succeeded) when the scenario says so.
import { randomUUID } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { applyJsonPatch, type Json } from '../bench/apiserver/standin.js';
import type { InMemoryCluster } from '../cluster/in-memory.js';
import type { AdmissionReviewResponse } from '../webhooks/admission.js';
import type { ExtenderFilterResult, ExtenderPreemptionResult, HostPriority, MetaVictims } from '../scheduler/wire.js';

export interface Admitted {
  pod: V1Pod;
  /** The admission warnings, as kubectl prints them ("Warning: ..."). */
  warnings: string[];
}

export class AdmissionDenied extends Error {
  override name = 'AdmissionDenied';
}

/** A pod's key for the record of what happened. */
export const podKey = (p: V1Pod): string => `${p.metadata?.namespace ?? 'default'}/${p.metadata?.name ?? ''}`;

export interface Reclaim {
  /** The pod kube-scheduler preempted for. */
  preemptor: V1Pod;
  node: string;
  /** The pods sluice kept as victims (deleted). */
  victims: V1Pod[];
}

export interface StandInsOptions {
  cluster: InMemoryCluster;
  /** sluice's API listener (webhooks, extender). */
  apiUrl: string;
  now: () => number;
  /** Every node name the extender may be asked about (kube-scheduler's node list). */
  nodeNames: readonly string[];
  /** Called when victims are deleted for a preemptor. */
  onReclaim?: (r: Reclaim) => void;
}

export class StandIns {
  constructor(private readonly o: StandInsOptions) {}

  private async post<T>(path: string, body: unknown): Promise<T> {
    const res = await fetch(this.o.apiUrl + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`sluice answered ${path} with HTTP ${res.status}: ${text}`);
    return JSON.parse(text) as T;
  }

  /** kube-apiserver's create: both webhooks, the patch, then the store. Throws AdmissionDenied with sluice's message. */
  async create(pod: V1Pod, username: string): Promise<Admitted> {
    const review = (object: V1Pod) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: randomUUID(),
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: object.metadata?.namespace ?? 'default',
        name: object.metadata?.name,
        operation: 'CREATE',
        userInfo: { username, groups: ['system:authenticated'] },
        object,
        oldObject: null,
        dryRun: false,
      },
    });
    const mutated = (await this.post<AdmissionReviewResponse>('/webhooks/mutate', review(pod))).response;
    if (!mutated.allowed) throw new AdmissionDenied(mutated.status?.message ?? 'denied by the mutating webhook');
    const ops = mutated.patch ? (JSON.parse(Buffer.from(mutated.patch, 'base64').toString('utf8')) as unknown) : [];
    const patched = applyJsonPatch(pod as unknown as Json, ops) as unknown as V1Pod;
    const validated = (await this.post<AdmissionReviewResponse>('/webhooks/validate', review(patched))).response;
    if (!validated.allowed) throw new AdmissionDenied(validated.status?.message ?? 'denied by the validating webhook');
    const stored = this.o.cluster.create(patched);
    return { pod: stored, warnings: [...(mutated.warnings ?? []), ...(validated.warnings ?? [])] };
  }

  /** Pods kube-scheduler would take now: no node, no gate, not finished, not being deleted; by priority, then age. */
  private schedulable(): V1Pod[] {
    return this.o.cluster
      .list()
      .filter(
        (p) =>
          !p.spec?.nodeName &&
          (p.spec?.schedulingGates ?? []).length === 0 &&
          !p.metadata?.deletionTimestamp &&
          !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
      )
      .sort((a, b) => (b.spec?.priority ?? 0) - (a.spec?.priority ?? 0) || time(a) - time(b));
  }

  /** One scheduling cycle for every schedulable pod; returns how many were bound. */
  async scheduleAll(): Promise<number> {
    let bound = 0;
    for (const pod of this.schedulable()) if (await this.scheduleOne(pod)) bound++;
    return bound;
  }

  private async scheduleOne(pod: V1Pod): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const filter = await this.post<ExtenderFilterResult>('/scheduler/filter', { Pod: pod, NodeNames: this.o.nodeNames });
      if (filter.Error) return false;
      const fits = filter.NodeNames ?? [];
      if (fits.length > 0) {
        const scores = await this.post<HostPriority[]>('/scheduler/prioritize', { Pod: pod, NodeNames: fits });
        const best = [...scores].filter((s) => fits.includes(s.Host)).sort((a, b) => b.Score - a.Score || a.Host.localeCompare(b.Host))[0]?.Host ?? fits[0]!;
        const md = pod.metadata!;
        const bind = await this.post<{ Error: string }>('/scheduler/bind', { PodName: md.name, PodNamespace: md.namespace, PodUID: md.uid, Node: best });
        return bind.Error === '';
      }
      // No node fits: the preemption kube-scheduler would try, once per cycle.
      if (attempt > 0 || pod.spec?.preemptionPolicy === 'Never' || !(await this.preempt(pod, Object.keys(filter.FailedNodes)))) return false;
    }
    return false;
  }

  /** Offers sluice the lower-priority pods of each node that may be cured; deletes the victims it keeps. */
  private async preempt(pod: V1Pod, nodes: readonly string[]): Promise<boolean> {
    const priority = pod.spec?.priority ?? 0;
    const all = this.o.cluster.list();
    const proposals: Record<string, MetaVictims> = {};
    for (const node of nodes) {
      const lower = all.filter(
        (p) =>
          p.spec?.nodeName === node &&
          !p.metadata?.deletionTimestamp &&
          !['Succeeded', 'Failed'].includes(p.status?.phase ?? '') &&
          (p.spec?.priority ?? 0) < priority,
      );
      if (lower.length > 0) proposals[node] = { Pods: lower.map((p) => ({ UID: p.metadata!.uid! })), NumPDBViolations: 0 };
    }
    if (Object.keys(proposals).length === 0) return false;
    const answer = await this.post<ExtenderPreemptionResult>('/scheduler/preempt', { Pod: pod, NodeNameToVictims: null, NodeNameToMetaVictims: proposals });
    const [node, kept] = Object.entries(answer.NodeNameToMetaVictims)[0] ?? [];
    if (!node || !kept || kept.Pods.length === 0) return false;
    const byUid = new Map(all.map((p) => [p.metadata!.uid!, p]));
    const victims = kept.Pods.map((v) => byUid.get(v.UID)).filter((p): p is V1Pod => p !== undefined);
    // kube-scheduler deletes the victims (they terminate, then go) and nominates the node.
    for (const v of victims)
      this.o.cluster.update(v.metadata!.namespace!, v.metadata!.name!, (p) => void (p.metadata!.deletionTimestamp = new Date(this.o.now())));
    for (const v of victims) this.o.cluster.delete(v.metadata!.namespace!, v.metadata!.name!);
    this.o.cluster.update(pod.metadata!.namespace!, pod.metadata!.name!, (p) => void (p.status = { ...p.status, nominatedNodeName: node }));
    this.o.onReclaim?.({ preemptor: pod, node, victims });
    return true;
  }

  /** The kubelets: every bound pod still Pending starts running now. */
  startBound(): number {
    let n = 0;
    for (const p of this.o.cluster.list()) {
      if (!p.spec?.nodeName || p.status?.phase !== 'Pending') continue;
      this.o.cluster.update(
        p.metadata!.namespace!,
        p.metadata!.name!,
        (x) => void (x.status = { ...x.status, phase: 'Running', startTime: new Date(this.o.now()) }),
      );
      n++;
    }
    return n;
  }

  /** A kubelet reports the pod's containers done: phase Succeeded. */
  finish(namespace: string, name: string): V1Pod {
    return this.o.cluster.update(namespace, name, (p) => void (p.status = { ...p.status, phase: 'Succeeded' }));
  }
}

const time = (p: V1Pod): number => {
  const t = p.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
};
