// Prometheus metrics. One registry per running instance so tests and the bench can
// start several servers in one process without name clashes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly extenderRequests = new Counter({
    name: 'sluice_extender_requests_total',
    help: 'Scheduler extender requests by verb and outcome (ok, bad_request, error).',
    labelNames: ['verb', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly extenderLatency = new Histogram({
    name: 'sluice_extender_duration_seconds',
    help: 'Time spent deciding a scheduler extender request, by verb (bind includes its apiserver call).',
    labelNames: ['verb'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });

  readonly extenderNotReady = new Counter({
    name: 'sluice_extender_not_ready_total',
    help: 'Extender requests answered with a retryable error because the cluster cache had not synced (node and pod informers), by verb.',
    labelNames: ['verb'] as const,
    registers: [this.registry],
  });

  readonly binds = new Counter({
    name: 'sluice_binds_total',
    help: 'Binds attempted by the extender, by result (bound, rejected, api_error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly filterRejections = new Counter({
    name: 'sluice_filter_rejections_total',
    help: 'Nodes filtered out, by reason kind.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly cacheSynced = new Gauge({
    name: 'sluice_cluster_cache_synced',
    help: '1 once the node and pod informers have listed the cluster, else 0.',
    registers: [this.registry],
  });

  readonly cacheEvents = new Counter({
    name: 'sluice_cluster_cache_events_total',
    help: 'Watch events applied to the cluster cache, by kind and verb.',
    labelNames: ['kind', 'verb'] as const,
    registers: [this.registry],
  });

  readonly informerErrors = new Counter({
    name: 'sluice_informer_errors_total',
    help: 'Informer list/watch errors (each is retried with backoff), by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly namespaceReads = new Counter({
    name: 'sluice_namespace_reads_total',
    help: 'Namespaces the informer had not delivered yet, read from the apiserver on the admission path, by result (found, not_found, error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly workloadReads = new Counter({
    name: 'sluice_workload_reads_total',
    help: "Workload objects (Job, JobSet, PyTorchJob, ...) read from the apiserver to find a pod's job and gang, by kind and result (found, not_found, no_crd, forbidden, error); cache hits are not counted.",
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });

  readonly assumedPods = new Gauge({
    name: 'sluice_assumed_pods',
    help: 'Pods bound by the extender whose binding the watch has not shown yet.',
    registers: [this.registry],
  });

  readonly assumeExpired = new Counter({
    name: 'sluice_assume_expired_total',
    help: 'Assumed pods dropped because the watch never showed them bound within the TTL.',
    registers: [this.registry],
  });

  // ---- store (Postgres) ----
  readonly storeUp = new Gauge({
    name: 'sluice_store_up',
    help: '1 when the last Postgres operation of the store succeeded, else 0.',
    registers: [this.registry],
  });

  readonly storeListenerConnected = new Gauge({
    name: 'sluice_store_listener_connected',
    help: '1 while the LISTEN connection that keeps the queue cache fresh is up, else 0.',
    registers: [this.registry],
  });

  readonly queueLookups = new Counter({
    name: 'sluice_queue_lookups_total',
    help: 'Queue lookups on the admission path by source (cache, database, stale_cache = Postgres down, unavailable = Postgres down and nothing cached).',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly auditRecords = new Counter({
    name: 'sluice_audit_records_total',
    help: 'Admission audit records by result (written, dropped = buffer full while Postgres was down, rejected = refused by Postgres for its content too often).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly jobRecords = new Counter({
    name: 'sluice_job_records_total',
    help: 'Job record writes by result (written; rejected = refused by Postgres for its content too often and dropped, see the log; closed_gone = closed by a new leader because no pod of the job was left, the job went while no replica watched).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly storeValuesRewritten = new Counter({
    name: 'sluice_store_values_rewritten_total',
    help: 'Values changed before being written to Postgres, by record kind and change (escaped = U+0000 or a lone surrogate replaced, Postgres text cannot hold them; cut = longer than its limit, cut and marked).',
    labelNames: ['records', 'change'] as const,
    registers: [this.registry],
  });

  readonly storePrunedRows = new Counter({
    name: 'sluice_store_pruned_rows_total',
    help: 'Rows deleted from Postgres for being older than queue.historyDays, by table (store/retention.ts).',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  readonly storePruneBatch = new Histogram({
    name: 'sluice_store_prune_batch_seconds',
    help: 'Time of one batched delete of old records (at most 1000 rows), by table: how long it held its rows locked.',
    labelNames: ['table'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  readonly storePruneLast = new Gauge({
    name: 'sluice_store_prune_last_success_timestamp_seconds',
    help: 'When this replica last finished a round of pruning old records (unix seconds); 0 = never (another replica may be doing it).',
    registers: [this.registry],
  });

  readonly connectionsRefused = new Counter({
    name: 'sluice_connections_refused_total',
    help: 'Connections closed at once because their client address already held connections.*MaxConnectionsPerClient, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });

  readonly auditPending = new Gauge({
    name: 'sluice_audit_pending',
    help: 'Admission audit records buffered in memory, not yet written to Postgres.',
    registers: [this.registry],
  });

  readonly apiRequests = new Counter({
    name: 'sluice_api_requests_total',
    help: 'Admin API (/api/v1) requests by route and status code.',
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });

  readonly webhookRequests = new Counter({
    name: 'sluice_webhook_requests_total',
    help: 'Admission webhook requests by webhook (mutate, validate) and outcome (allowed, patched, denied, out_of_scope, unreadable, store_down, bad_request, error).',
    labelNames: ['webhook', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly webhookLatency = new Histogram({
    name: 'sluice_webhook_duration_seconds',
    help: 'Time spent deciding an admission request, by webhook.',
    labelNames: ['webhook'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
    registers: [this.registry],
  });

  readonly webhookStoreDown = new Counter({
    name: 'sluice_webhook_store_unavailable_total',
    help: 'Validations that could not read their queue (Postgres down, nothing cached), by the policy applied (allow, deny).',
    labelNames: ['policy'] as const,
    registers: [this.registry],
  });

  readonly certExpirySeconds = new Gauge({
    name: 'sluice_cert_expiry_timestamp_seconds',
    help: 'Expiry (unix seconds) of the certificates sluice serves with, by kind (ca, serving).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  // ---- queue manager (queue/); names follow Kueue's where the meaning matches ----
  readonly pendingJobs = new Gauge({
    name: 'sluice_pending_jobs',
    help: 'Jobs waiting behind the scheduling gate, by queue and wait reason (quota, user_quota, capacity, gang_incomplete, order, queue_missing, invalid).',
    labelNames: ['queue', 'reason'] as const,
    registers: [this.registry],
  });

  readonly admittedJobs = new Counter({
    name: 'sluice_admitted_jobs_total',
    help: 'Jobs released by the queue manager (gate removed from every pod), by queue.',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });

  readonly admissionWait = new Histogram({
    name: 'sluice_admission_wait_time_seconds',
    help: "Time from a job's first pod creation to its release, by queue.",
    labelNames: ['queue'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
    registers: [this.registry],
  });

  readonly gateRemoval = new Histogram({
    name: 'sluice_gate_removal_seconds',
    help: 'Time from the cluster or quota event that let a job go to its last gate removed.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly queueGpus = new Gauge({
    name: 'sluice_queue_gpus',
    help: 'GPUs per queue and resource (GPU shares as fractions of a GPU): used (bound or released pods, guaranteed QoS), best_effort_used, guaranteed (quota), best_effort_cap.',
    labelNames: ['queue', 'resource', 'state'] as const,
    registers: [this.registry],
  });

  readonly queueEvaluation = new Histogram({
    name: 'sluice_queue_evaluation_seconds',
    help: 'Time one evaluation of every waiting job takes (ordering, quota and placement checks).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly releaseActions = new Counter({
    name: 'sluice_release_actions_total',
    help: 'Gate removals carried out by the release worker, by result (removed, already_gone, pod_gone, retried, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly redisUp = new Gauge({
    name: 'sluice_redis_up',
    help: '1 while the release queue reaches Redis (last command succeeded), else 0; only the leader releases.',
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: 'sluice_leader',
    help: '1 while this replica holds the sluice Lease (runs the queue manager), else 0.',
    registers: [this.registry],
  });

  readonly leaseError = new Gauge({
    name: 'sluice_lease_error',
    help: '1 while this replica cannot read or write the leader Lease (namespace missing, RBAC; /readyz and the log say why), else 0. sum(sluice_leader) == 0 means no replica leads.',
    registers: [this.registry],
  });

  // ---- preemption (scheduler/ preempt verb) ----
  readonly preemptions = new Counter({
    name: 'sluice_preemptions_total',
    help: "Preemptions decided by the extender, by the preemptor's queue and reason.",
    labelNames: ['queue', 'reason'] as const,
    registers: [this.registry],
  });

  readonly preemptedGpus = new Counter({
    name: 'sluice_preempted_gpus_total',
    help: 'GPUs taken back from best-effort pods by preemption.',
    registers: [this.registry],
  });

  /** Where sluice_gpus reads the inventory from when scraped (set by the server). */
  gpuInventory:
    | (() => Iterable<{ resource: string; product: string; total: number; used: number; assumed: number; free: number; unusable: string | null }>)
    | null = null;

  readonly gpus: Gauge<'resource' | 'state'>;

  readonly gpusByModel: Gauge<'resource' | 'model' | 'state'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const metrics = this;
    this.gpus = new Gauge({
      name: 'sluice_gpus',
      help: 'GPUs in the cluster cache by resource and state (allocatable, used, free); used includes assumed binds.',
      labelNames: ['resource', 'state'] as const,
      registers: [this.registry],
      // Computed from the cache when Prometheus scrapes, not on a timer.
      collect() {
        this.reset();
        const by = new Map<string, { allocatable: number; used: number; free: number }>();
        for (const n of metrics.gpuInventory?.() ?? []) {
          const t = by.get(n.resource) ?? { allocatable: 0, used: 0, free: 0 };
          t.allocatable += n.total;
          t.used += n.used + n.assumed;
          t.free += n.free;
          by.set(n.resource, t);
        }
        for (const [resource, t] of by) for (const [state, v] of Object.entries(t)) this.set({ resource, state }, v);
      },
    });
    this.gpusByModel = new Gauge({
      name: 'sluice_gpus_by_model',
      help: "GPUs by resource, GPU model (the node's nvidia.com/gpu.product) and state (allocatable, used, free, unusable = on nodes whose GPUs cannot be used).",
      labelNames: ['resource', 'model', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const by = new Map<string, { resource: string; model: string; allocatable: number; used: number; free: number; unusable: number }>();
        for (const n of metrics.gpuInventory?.() ?? []) {
          const k = `${n.resource}\u0000${n.product}`;
          const t = by.get(k) ?? { resource: n.resource, model: n.product, allocatable: 0, used: 0, free: 0, unusable: 0 };
          t.allocatable += n.total;
          t.used += n.used + n.assumed;
          t.free += n.free;
          if (n.unusable) t.unusable += n.total;
          by.set(k, t);
        }
        for (const { resource, model, ...states } of by.values()) for (const [state, v] of Object.entries(states)) this.set({ resource, model, state }, v);
      },
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
  }
}
