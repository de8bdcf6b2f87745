// The console's Activity timeline, read from the records sluice keeps in Postgres: job
// releases (jobs.released_at), preemptions (preemptions), admission denials
// (admission_decisions) and failed binds (bind_failures, store/bind-failures.ts).
import type { Pool } from 'pg';
import type { BindFailureCause } from '../store/bind-failures.js';

export type ActivityKind = 'released' | 'preempted' | 'denied' | 'bind_failed';

export interface ActivityItem {
  at: string;
  kind: ActivityKind;
  namespace: string;
  /** The job (released, and failed binds of a pod with a job), the preempting pod's job
   * (preempted), or the pod (denied, failed binds of a pod without a job). */
  name: string;
  queue: string;
  text: string;
  /** Preemptions: the pods taken back. */
  victims?: Array<{ namespace: string; pod: string; job: string; queue: string; gpus: number }>;
  /** Failed binds: the pod, the node, why, how often since when (`at` is the last failure). */
  bind?: { pod: string; node: string; cause: BindFailureCause; attempts: number; firstAt: string };
}

/** A failed bind in words, for the timeline. */
const CAUSE_TEXT: Record<BindFailureCause, (node: string) => string> = {
  rejected: (node) => `bind to ${node} refused by the re-check`,
  node_gone: (node) => `bind to ${node} failed: the node is gone`,
  // The reason says where: the apiserver's message, or HAMi's node lock held too long.
  api_error: (node) => `bind to ${node} failed`,
  allocation_failed: (node) => `GPU allocation on ${node} failed (HAMi's device plugin)`,
};

interface VictimRow {
  namespace: string;
  pod: string;
  job: string;
  queue: string;
  gpus: number;
}

/** The newest `limit` events of each kind within `hours`, newest first. */
export async function readActivity(pool: Pool, o: { hours: number; limit: number }): Promise<ActivityItem[]> {
  const since = new Date(Date.now() - o.hours * 3600_000);
  const [released, preempted, denied, failedBinds] = await Promise.all([
    pool.query<{ at: Date; namespace: string; name: string; queue: string; gpus: number; qos: string }>(
      `SELECT released_at AS at, namespace, name, queue, gpus, qos FROM jobs WHERE released_at >= $1 ORDER BY released_at DESC LIMIT $2`,
      [since, o.limit],
    ),
    pool.query<{
      at: Date;
      namespace: string;
      pod: string;
      job: string;
      queue: string;
      node: string;
      resource: string;
      gpus: number;
      reason: string;
      victims: VictimRow[];
    }>(
      `SELECT decided_at AS at, preemptor_namespace AS namespace, preemptor_pod AS pod, preemptor_job AS job, queue, node, resource,
              gpus_taken_back AS gpus, reason, victims
         FROM preemptions WHERE decided_at >= $1 ORDER BY decided_at DESC LIMIT $2`,
      [since, o.limit],
    ),
    pool.query<{ at: Date; namespace: string; pod: string; reason: string; username: string }>(
      `SELECT decided_at AS at, namespace, pod, reason, username FROM admission_decisions
        WHERE NOT allowed AND NOT dry_run AND decided_at >= $1 ORDER BY decided_at DESC LIMIT $2`,
      [since, o.limit],
    ),
    pool.query<{
      at: Date;
      first_at: Date;
      namespace: string;
      pod: string;
      job: string;
      queue: string;
      node: string;
      cause: BindFailureCause;
      reason: string;
      attempts: number;
    }>(
      `SELECT last_at AS at, first_at, namespace, pod, job, queue, node, cause, reason, attempts FROM bind_failures
        WHERE last_at >= $1 ORDER BY last_at DESC LIMIT $2`,
      [since, o.limit],
    ),
  ]);
  const items: ActivityItem[] = [
    ...released.rows.map(
      (r): ActivityItem => ({
        at: r.at.toISOString(),
        kind: 'released',
        namespace: r.namespace,
        name: r.name,
        queue: r.queue,
        text: `released: ${r.gpus} GPU${r.gpus === 1 ? '' : 's'}, ${r.qos}`,
      }),
    ),
    ...preempted.rows.map(
      (r): ActivityItem => ({
        at: r.at.toISOString(),
        kind: 'preempted',
        namespace: r.namespace,
        name: r.job || r.pod,
        queue: r.queue,
        text: `took back ${r.gpus} ${r.resource} on ${r.node} from ${r.victims.length} best-effort pod${r.victims.length === 1 ? '' : 's'}`,
        victims: r.victims.map((v) => ({ namespace: v.namespace, pod: v.pod, job: v.job, queue: v.queue, gpus: v.gpus })),
      }),
    ),
    ...denied.rows.map(
      (r): ActivityItem => ({
        at: r.at.toISOString(),
        kind: 'denied',
        namespace: r.namespace,
        name: r.pod,
        queue: '',
        text: r.reason,
      }),
    ),
    ...failedBinds.rows.map(
      (r): ActivityItem => ({
        at: r.at.toISOString(),
        kind: 'bind_failed',
        namespace: r.namespace,
        name: r.job || r.pod,
        queue: r.queue,
        text: `${CAUSE_TEXT[r.cause](r.node)}: ${r.reason}`,
        bind: { pod: r.pod, node: r.node, cause: r.cause, attempts: r.attempts, firstAt: r.first_at.toISOString() },
      }),
    ),
  ];
  items.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return items.slice(0, o.limit);
}

/**
 * What a non-admin may see of the timeline: events of their namespaces in full; a
 * preemption in another namespace that took back their pods, with the preemptor's name
 * hidden; nothing else. Victims in namespaces they cannot see are counted, not named.
 */
export function redactActivity(items: readonly ActivityItem[], visible: ReadonlySet<string>): ActivityItem[] {
  const out: ActivityItem[] = [];
  for (const it of items) {
    const mine = visible.has(it.namespace);
    const victims = it.victims?.map((v) => (visible.has(v.namespace) ? v : { namespace: '', pod: '', job: '', queue: v.queue, gpus: v.gpus }));
    const touchesMine = victims?.some((v) => v.namespace !== '') ?? false;
    if (!mine && !touchesMine) continue;
    out.push({ ...it, ...(mine ? {} : { namespace: '', name: '', text: it.text }), ...(victims ? { victims } : {}) });
  }
  return out;
}
