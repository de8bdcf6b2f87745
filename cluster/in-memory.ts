// The cluster of snapshot mode (`sluice serve --cluster-snapshot FILE`) as whole objects:
// the snapshot's nodes and pods, plus pods created, changed and deleted afterwards, each
// change fed to the ClusterCache as an informer would deliver it. Without it snapshot
// mode can only read its file: no pod can arrive, finish or go, so nothing ever queues
// or frees (the demo, demo/, plays kube-apiserver, kube-scheduler and the kubelets on it).
//
// sluice's own changes in snapshot mode - a gate removed by the queue manager
// (ClusterCache.ungate), a bind (ClusterCache.confirmAssumed) - are made on the cache, as
// the watch would show them; the objects here follow them, so that a later change of the
// same pod (a kubelet's status, a deletion) keeps the gate gone and the node set.
import { randomUUID } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from './cache.js';
import type { Snapshot } from './snapshot.js';

export class InMemoryClusterError extends Error {
  override name = 'InMemoryClusterError';
  constructor(
    /** The HTTP status kube-apiserver would answer (404, 409, 422). */
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;

export class InMemoryCluster {
  /** namespace/name -> the pod as stored. */
  private readonly pods = new Map<string, V1Pod>();
  private readonly keyByUid = new Map<string, string>();

  constructor(
    private readonly cache: ClusterCache,
    private readonly now: () => number = Date.now,
  ) {
    cache.onChange((c) => {
      if (c.kind !== 'pod' || !c.after) return;
      const key = this.keyByUid.get(c.uid);
      const pod = key ? this.pods.get(key) : undefined;
      if (!pod?.spec) return;
      const rec = c.after;
      if (rec.nodeName && pod.spec.nodeName !== rec.nodeName) pod.spec.nodeName = rec.nodeName;
      const gates = pod.spec.schedulingGates ?? [];
      if (gates.some((g) => !rec.gates.includes(g.name))) {
        const kept = gates.filter((g) => rec.gates.includes(g.name));
        if (kept.length > 0) pod.spec.schedulingGates = kept;
        else delete pod.spec.schedulingGates;
      }
    });
  }

  /** Replaces everything with the snapshot's nodes and pods (pods without a uid are skipped, as the cache skips them). */
  load(snap: Snapshot): void {
    this.pods.clear();
    this.keyByUid.clear();
    for (const p of snap.pods) {
      const uid = p.metadata?.uid;
      if (!uid) continue;
      const key = keyOf(p.metadata?.namespace ?? 'default', p.metadata?.name ?? uid);
      this.pods.set(key, structuredClone(p));
      this.keyByUid.set(uid, key);
    }
    this.cache.replaceAll(snap.nodes, snap.pods);
  }

  /** A copy of the pod, or undefined. */
  pod(namespace: string, name: string): V1Pod | undefined {
    const p = this.pods.get(keyOf(namespace, name));
    return p ? structuredClone(p) : undefined;
  }

  /** Copies of every pod. */
  list(): V1Pod[] {
    return [...this.pods.values()].map((p) => structuredClone(p));
  }

  /**
   * Stores a new pod as kube-apiserver would after admission: a uid, the creation time
   * (this cluster's clock) and phase Pending. 409 when the name is taken, 422 without a name.
   */
  create(pod: V1Pod): V1Pod {
    const name = pod.metadata?.name;
    const namespace = pod.metadata?.namespace || 'default';
    if (!name) throw new InMemoryClusterError(422, 'a pod needs metadata.name');
    const key = keyOf(namespace, name);
    if (this.pods.has(key)) throw new InMemoryClusterError(409, `pods "${name}" already exists in namespace ${namespace}`);
    const stored: V1Pod = structuredClone(pod);
    stored.metadata = { ...stored.metadata, name, namespace, uid: randomUUID(), creationTimestamp: new Date(this.now()) };
    stored.status = { phase: 'Pending', ...stored.status };
    this.pods.set(key, stored);
    this.keyByUid.set(stored.metadata.uid!, key);
    this.cache.upsertPod(stored);
    return structuredClone(stored);
  }

  /** Applies `change` to the stored pod (a kubelet's status, a deletionTimestamp) and returns a copy. 404 when there is none. */
  update(namespace: string, name: string, change: (pod: V1Pod) => void): V1Pod {
    const key = keyOf(namespace, name);
    const prev = this.pods.get(key);
    if (!prev) throw new InMemoryClusterError(404, `pods "${name}" not found in namespace ${namespace}`);
    const next = structuredClone(prev);
    change(next);
    if (next.metadata?.uid !== prev.metadata?.uid || next.metadata?.name !== prev.metadata?.name || next.metadata?.namespace !== prev.metadata?.namespace) {
      throw new InMemoryClusterError(422, `an update of pod ${key} may not change its name, namespace or uid`);
    }
    this.pods.set(key, next);
    this.cache.upsertPod(next);
    return structuredClone(next);
  }

  /** Removes the pod at once (no grace period); false when there was none. */
  delete(namespace: string, name: string): boolean {
    const key = keyOf(namespace, name);
    const pod = this.pods.get(key);
    if (!pod) return false;
    this.pods.delete(key);
    const uid = pod.metadata!.uid!;
    this.keyByUid.delete(uid);
    this.cache.deletePod(uid);
    return true;
  }
}
