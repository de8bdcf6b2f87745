// HAMi's device-plugin protocol, the writing side: how a bind of a GPU-share pod tells
// HAMi's device plugin which GPUs to hand the pod's containers (checked against
// Project-HAMi/HAMi: pkg/scheduler/scheduler.go Bind and Filter's annotation patch,
// pkg/device/nvidia/device.go PatchAnnotations and LockNode, pkg/util/nodelock/nodelock.go,
// pkg/util/util.go GetPendingPod, the plugin's Allocate in
// pkg/device-plugin/nvidiadevice/nvinternal/plugin/server.go; docs/gpu-sharing.md).
//
// Why a node lock: kubelet's Allocate call tells the plugin device IDs, not the pod. The
// plugin finds the pod through the node's hami.io/mutex.lock (GetAllocatePodByNode), else
// the first pod on the node in bind phase "allocating": two such pods at once on one node
// could swap GPUs. So one share pod per node is between annotation and Allocate at a time.
// The plugin releases the lock when it sets the bind phase to "success" or "failed". A lock
// older than nodeLockExpire, or whose pod is gone, is stale and taken over (HAMi's LockNode).
//
// The bind, in order:
//   1. take the node lock (wait while another live pod holds it, up to lockWait);
//   2. patch the pod: the device lists, the node, the time, bind phase "allocating";
//   3. post the binding.
// A failure in 2 or 3 releases the lock; the caller rolls the assume ledger back.
import type { Logger } from '../observability/logger.js';
import type { CoreV1Event } from '@kubernetes/client-node';
import { hostname } from 'node:os';
import { HAMI_ALLOCATED, HAMI_BIND_PHASE, HAMI_BIND_TIME, HAMI_NODE, HAMI_NODE_LOCK, HAMI_TIME, HAMI_TO_ALLOCATE, encodeDeviceList } from '../cluster/hami.js';
import type { DeviceUse } from '../placement/shares.js';
import type { CacheChange, PodRecord } from '../cluster/cache.js';
import type { EventPoster } from './preempt-events.js';

/** The apiserver calls the protocol needs. */
export interface HamiApi {
  /** The node's annotations and resourceVersion. */
  readNode(name: string): Promise<{ resourceVersion: string; annotations: Record<string, string> }>;
  /** Merge-patches node annotations (null deletes), only if the node is still at
   * `resourceVersion` (else the apiserver answers 409). */
  patchNodeAnnotations(name: string, annotations: Record<string, string | null>, resourceVersion: string): Promise<void>;
  patchPodAnnotations(namespace: string, name: string, annotations: Record<string, string>): Promise<void>;
  /** False when the pod does not exist (404). */
  podExists(namespace: string, name: string): Promise<boolean>;
}

/** The lock value HAMi writes: "<RFC 3339 time, seconds>,<namespace>,<name>". */
export const lockValue = (atMs: number, namespace: string, name: string): string =>
  `${new Date(atMs).toISOString().replace(/\.\d{3}Z$/, 'Z')},${namespace},${name}`;

/** Parses a lock value; a bare time (HAMi's lock without a pod) has no owner. */
export function parseLock(v: string): { atMs: number; namespace: string; name: string } | null {
  const parts = v.split(',');
  if (parts.length !== 1 && parts.length !== 3) return null;
  const atMs = Date.parse(parts[0]!);
  if (Number.isNaN(atMs)) return null;
  return { atMs, namespace: parts[1] ?? '', name: parts[2] ?? '' };
}

export interface ShareBindOptions {
  api: HamiApi;
  /** A lock older than this is stale (HAMi: 5 min). */
  lockExpireMs: number;
  /** Longest wait for another pod's lock on the same node. */
  lockWaitMs: number;
  /** The lock the informer last showed on the node (cheap to poll), undefined for none. */
  peekLock: (node: string) => string | undefined;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const statusOf = (e: unknown): number =>
  typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : 0;

export class NodeLockBusy extends Error {
  override name = 'NodeLockBusy';
}

/** Takes and releases HAMi's per-node lock. Binds to different nodes never wait on each other. */
export class HamiNodeLocks {
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: ShareBindOptions) {
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Whether a lock value is one this bind may take over: none, expired, its own, or its
   * pod gone. */
  private async free(value: string | undefined, namespace: string, name: string): Promise<boolean> {
    if (value === undefined) return true;
    const l = parseLock(value);
    if (!l) return true; // HAMi's LockNode fails on a malformed lock; nothing could ever release it
    if (this.now() - l.atMs > this.o.lockExpireMs) return true;
    if (l.namespace === namespace && l.name === name) return true;
    if (l.namespace && l.name && !(await this.o.api.podExists(l.namespace, l.name))) return true;
    return false;
  }

  private readonly waiting = new Map<string, Set<() => void>>();

  /** The informer saw the node change (its lock may be gone): wakes the binds waiting on it. */
  nodeChanged(node: string): void {
    const w = this.waiting.get(node);
    if (!w) return;
    this.waiting.delete(node);
    for (const wake of w) wake();
  }

  /** Sleeps `ms`, or less when the node changes meanwhile. */
  private pauseOn(node: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(node);
      if (!set) this.waiting.set(node, (set = new Set()));
      const wake = (): void => {
        set!.delete(wake);
        resolve();
      };
      set.add(wake);
      void this.sleep(ms).then(wake);
    });
  }

  async acquire(node: string, namespace: string, name: string): Promise<void> {
    const deadline = this.now() + this.o.lockWaitMs;
    let pause = 20;
    for (;;) {
      // Wait on the informer's copy first: no apiserver call while the lock is plainly held.
      const seen = this.o.peekLock(node);
      if (seen === undefined || (await this.free(seen, namespace, name))) {
        const n = await this.o.api.readNode(node);
        const held = n.annotations[HAMI_NODE_LOCK];
        if (await this.free(held, namespace, name)) {
          try {
            await this.o.api.patchNodeAnnotations(node, { [HAMI_NODE_LOCK]: lockValue(this.now(), namespace, name) }, n.resourceVersion);
            return;
          } catch (e) {
            if (statusOf(e) !== 409) throw e; // another writer changed the node: look again
            continue;
          }
        }
      }
      if (this.now() >= deadline) {
        throw new NodeLockBusy(
          `node ${node} is locked (${HAMI_NODE_LOCK}: ${seen ?? '?'}) by another pod HAMi's device plugin has not finished allocating for, for over ${Math.round(this.o.lockWaitMs / 1000)} s; kube-scheduler retries the pod`,
        );
      }
      await this.pauseOn(node, pause);
      pause = Math.min(250, pause * 2);
    }
  }

  /** Releases the lock if this pod holds it (after a failed bind; on success the plugin does). */
  async release(node: string, namespace: string, name: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const n = await this.o.api.readNode(node);
      const l = n.annotations[HAMI_NODE_LOCK] !== undefined ? parseLock(n.annotations[HAMI_NODE_LOCK]!) : null;
      if (!l || l.namespace !== namespace || l.name !== name) return;
      try {
        await this.o.api.patchNodeAnnotations(node, { [HAMI_NODE_LOCK]: null }, n.resourceVersion);
        return;
      } catch (e) {
        if (statusOf(e) !== 409) throw e;
      }
    }
  }
}

/** The pod annotations of a share bind: what HAMi's scheduler writes and its device plugin
 * reads on Allocate. `containers` lists every container, init containers first ([] for one
 * without GPUs). */
export function allocationAnnotations(node: string, containers: readonly (readonly DeviceUse[])[], nowMs: number): Record<string, string> {
  const list = encodeDeviceList(containers);
  const seconds = String(Math.floor(nowMs / 1000));
  return {
    [HAMI_TO_ALLOCATE]: list,
    [HAMI_ALLOCATED]: list,
    [HAMI_NODE]: node,
    [HAMI_TIME]: seconds,
    [HAMI_BIND_PHASE]: 'allocating',
    [HAMI_BIND_TIME]: seconds,
  };
}

/** Lock, annotate, bind (see the top of this file). */
export async function bindShares(
  locks: HamiNodeLocks,
  api: HamiApi,
  postBinding: () => Promise<void>,
  pod: { namespace: string; name: string; node: string },
  containers: readonly (readonly DeviceUse[])[],
  now: () => number = Date.now,
): Promise<void> {
  await locks.acquire(pod.node, pod.namespace, pod.name);
  try {
    await api.patchPodAnnotations(pod.namespace, pod.name, allocationAnnotations(pod.node, containers, now()));
    await postBinding();
  } catch (e) {
    await locks.release(pod.node, pod.namespace, pod.name).catch(() => undefined);
    throw e;
  }
}

/**
 * Watches the device plugin's answer: a pod whose bind phase turns "failed" holds no GPUs
 * any more (the cache drops its hold and its ledger entry, cluster/cache.ts); this raises
 * a Warning Event on the pod and logs it, so its owner sees why it will not start.
 * `onFailed` gets the pod, the node and the message (counted and recorded by the caller).
 */
export function watchAllocationOutcomes(
  onChange: (fn: (c: CacheChange) => void) => void,
  post: EventPoster,
  log: Logger,
  onFailed?: (f: { pod: Readonly<PodRecord>; node: string; message: string }) => void,
): void {
  const instance = hostname();
  onChange((c) => {
    if (c.kind !== 'pod' || !c.after) return;
    const phase = c.after.annotations[HAMI_BIND_PHASE];
    if (phase !== 'failed' || c.before?.annotations[HAMI_BIND_PHASE] === 'failed') return;
    const p = c.after;
    const node = p.annotations[HAMI_NODE] ?? p.nodeName;
    const message = `HAMi's device plugin on node ${node} could not allocate the GPUs sluice chose (${p.annotations[HAMI_ALLOCATED] ?? '?'}); sluice no longer counts them as used. Delete the pod (its controller re-creates it) to place it again.`;
    log.warn({ pod: `${p.namespace}/${p.name}`, node }, message);
    onFailed?.({ pod: p, node, message });
    const at = new Date();
    const event: CoreV1Event = {
      metadata: { generateName: `${p.name}.`, namespace: p.namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: p.name, namespace: p.namespace, uid: p.uid },
      reason: 'GPUAllocationFailed',
      message,
      type: 'Warning',
      source: { component: 'sluice' },
      reportingComponent: 'sluice',
      reportingInstance: instance,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    post(p.namespace, event).catch((e: unknown) =>
      log.warn({ pod: `${p.namespace}/${p.name}`, err: String(e) }, 'cannot create the GPUAllocationFailed Event'),
    );
  });
}
