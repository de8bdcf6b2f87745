// The managed pods of each job, kept from cluster cache events, so that the queue
// manager's per-job work follows what changed: which jobs may have a new record, which pods
// wait, and a job's view on demand for the admin API.
import type { ClusterCache, PodRecord } from '../cluster/cache.js';
import { jobStateOf, jobView, type JobView } from './state.js';
import { isGated, isQueued, jobKey } from './units.js';

export type LiveJob = { view: JobView; state: ReturnType<typeof jobStateOf> };

export class JobIndex {
  private readonly podsByJob = new Map<string, Set<string>>();
  private readonly jobOfPod = new Map<string, string>();
  /** Jobs whose record may have changed since the last records pass. */
  readonly dirty = new Set<string>();
  /** Managed pods waiting behind the gate. */
  readonly gated = new Set<string>();

  constructor(private readonly cache: ClusterCache) {}

  /** Follows one pod (undefined: it is gone). */
  update(uid: string, p: Readonly<PodRecord> | undefined): void {
    const key = p && isQueued(p) ? jobKey(p) : undefined;
    const was = this.jobOfPod.get(uid);
    if (was !== undefined && was !== key) {
      const set = this.podsByJob.get(was);
      set?.delete(uid);
      if (set && set.size === 0) this.podsByJob.delete(was);
      this.jobOfPod.delete(uid);
      this.dirty.add(was);
    }
    if (key !== undefined) {
      let set = this.podsByJob.get(key);
      if (!set) this.podsByJob.set(key, (set = new Set()));
      set.add(uid);
      this.jobOfPod.set(uid, key);
      this.dirty.add(key);
    }
    if (p && key !== undefined && !p.terminal && isGated(p)) this.gated.add(uid);
    else this.gated.delete(uid);
  }

  /** namespace/job of every job with at least one pod in the cache (a relist can drop a pod without an event: each is checked). */
  *liveJobs(): Iterable<string> {
    for (const [key, uids] of this.podsByJob) {
      for (const uid of uids) {
        if (this.cache.pod(uid)) {
          yield key;
          break;
        }
      }
    }
  }

  /** The job's view from its pods in the cache; undefined when none exists. */
  view(key: string, releasing: ReadonlySet<string>): JobView | undefined {
    const uids = this.podsByJob.get(key);
    if (!uids) return undefined;
    const pods: Array<Readonly<PodRecord>> = [];
    for (const uid of uids) {
      const p = this.cache.pod(uid);
      if (p) pods.push(p);
    }
    return jobView(key, pods, releasing, (p) => this.cache.gpuEquivalents(p));
  }

  job(key: string, releasing: ReadonlySet<string>): LiveJob | undefined {
    const view = this.view(key, releasing);
    return view ? { view, state: jobStateOf(view) } : undefined;
  }

  jobsOf(queue: string, releasing: ReadonlySet<string>): LiveJob[] {
    const out: LiveJob[] = [];
    for (const key of this.podsByJob.keys()) {
      const view = this.view(key, releasing);
      if (view && view.queue === queue) out.push({ view, state: jobStateOf(view) });
    }
    return out;
  }
}
