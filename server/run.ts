// `sluice serve`: wires config, cache, the cluster source (live apiserver or snapshot
// file) and the listeners, and shuts down cleanly on SIGTERM/SIGINT.
import { existsSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';
import type { SluiceConfig } from '../config/schema.js';
import { ClusterCache } from '../cluster/cache.js';
import { ClusterWatcher } from '../cluster/informers.js';
import { loadSnapshotFile } from '../cluster/snapshot.js';
import { InMemoryCluster } from '../cluster/in-memory.js';
import { NamespaceStore, NamespaceWatcher } from '../cluster/namespaces.js';
import { PriorityClassStore, PriorityClassWatcher } from '../cluster/priority-classes.js';
import { prepareServingCert } from '../certs/serving.js';
import type { SecureContextTarget } from '../certs/reload.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { KubeBinder, SnapshotBinder, type PodBinder } from '../scheduler/binder.js';
import { kubeEventPoster, PreemptionEvents } from '../scheduler/preempt-events.js';
import { shareNamesOf } from '../cluster/pod-request.js';
import { watchAllocationOutcomes } from '../scheduler/hami-bind.js';
import type { PreemptionSink } from '../store/preemptions.js';
import { Store } from '../store/store.js';
import { finishedDurations, JobRecorder, openJobRecords } from '../store/jobs.js';
import { LeaderElector, SOLE_LEADER, type Leadership } from '../cluster/leader.js';
import { LABEL_LEADER, LeaderLabel } from '../cluster/leader-label.js';
import { settledWithin } from '../cluster/settled-within.js';
import { KubeQueueEvents } from '../queue/events.js';
import { QueueManager } from '../queue/manager.js';
import { BullReleaser, InMemoryReleaser, KubeGatePatcher, type ReleaseSink } from '../queue/releaser.js';
import { GATE_QUEUE, LABEL_JOB, LABEL_QUEUE } from '../webhooks/labels.js';
import { DurationHistory } from '../queue/duration-history.js';
import { EtaService, etaPhrase } from '../queue/eta-service.js';
import { randomBytes } from 'node:crypto';
import { ApiTransport } from '../cluster/api-transport.js';
import { WorkloadReader } from '../workloads/reader.js';
import { buildServers, type Servers } from './app.js';
import { keepTlsPolicy } from './listeners.js';

export const TRY_WITHOUT_CLUSTER =
  'to try sluice without a cluster: npm start -- --cluster-snapshot examples/cluster-snapshot.json (see README "Without a cluster")';

export class NoClusterError extends Error {
  override name = 'NoClusterError';
}

/** Finds the kubeconfig the way kubectl does, or says none is configured. */
export function resolveKubeConfig(config: SluiceConfig, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (config.kubeconfig) {
    if (!existsSync(config.kubeconfig)) throw new NoClusterError(`kubeconfig ${config.kubeconfig} does not exist`);
    kc.loadFromFile(config.kubeconfig);
    return kc;
  }
  const fromEnv = (env.KUBECONFIG ?? '').split(':').filter((p) => p && existsSync(p));
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (fromEnv.length === 0 && !env.KUBERNETES_SERVICE_HOST && !existsSync(home)) {
    throw new NoClusterError(
      env.KUBECONFIG
        ? `KUBECONFIG=${env.KUBECONFIG} names no existing file`
        : 'no Kubernetes cluster configured (KUBECONFIG unset, no ~/.kube/config, not in a pod)',
    );
  }
  kc.loadFromDefault();
  return kc;
}

export interface Running {
  servers: Servers;
  cache: ClusterCache;
  /** null when queue.enabled is false. */
  queue: QueueManager | null;
  /** Snapshot mode's cluster as objects (create, change, delete pods); null with a live apiserver. */
  cluster: InMemoryCluster | null;
  metrics: Metrics;
  log: Logger;
  apiUrl: string;
  opsUrl: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  log?: Logger;
  kubeConfig?: KubeConfig;
  /** This replica's pod (the leader labels it); default: env POD_NAME / POD_NAMESPACE. */
  podName?: string;
  podNamespace?: string;
  /**
   * The clock of every decision that reads the time: the cluster cache, the queue manager,
   * the ETA forecast, the submit-time warning, and pods created in snapshot mode. Default
   * Date.now; the demo (demo/) drives its own, so that an hour of queueing takes seconds.
   */
  now?: () => number;
}

export async function serve(config: SluiceConfig, opts: ServeOptions = {}): Promise<Running> {
  const log = opts.log ?? createLogger(config.logLevel);
  const metrics = new Metrics();
  const now = opts.now ?? Date.now;
  const cache = new ClusterCache({
    now,
    resources: config.gpuResources,
    assumeTtlMs: config.assumeTtlSeconds * 1000,
    recentPodWindow: config.recentPodWindow,
    ...(config.sharing.enabled ? { sharing: { names: shareNamesOf(config.sharing)!, handshakeTimeoutMs: config.sharing.handshakeTimeoutSeconds * 1000 } } : {}),
  });
  // A malformed HAMi registration is ignored (the node's GPUs count as whole ones): say so
  // once per node and problem, naming the node and the field.
  const registrationWarned = new Map<string, string>();
  cache.onChange((c) => {
    if (c.kind !== 'node') return;
    const problem = cache.registrationProblem(c.name);
    if (problem && registrationWarned.get(c.name) !== problem)
      log.warn({ node: c.name }, `${problem}; its GPUs are not shared until the device plugin registers them again`);
    if (problem) registrationWarned.set(c.name, problem);
    else registrationWarned.delete(c.name);
  });

  let binder: PodBinder;
  let watcher: ClusterWatcher | null = null;
  const namespaces = new NamespaceStore();
  let nsWatcher: NamespaceWatcher | null = null;
  const priorityClasses = new PriorityClassStore(new Set([config.webhooks.guaranteedPriorityClass, config.webhooks.bestEffortPriorityClass]));
  let pcWatcher: PriorityClassWatcher | null = null;
  let liveKc: KubeConfig | null = null;
  let cluster: InMemoryCluster | null = null;
  if (config.clusterSnapshot) {
    cluster = new InMemoryCluster(cache, now);
    const snap = loadSnapshotFile(config.clusterSnapshot, cluster);
    namespaces.replaceAll(snap.namespaces);
    // Without PriorityClasses in the file the webhook writes the configured values.
    if (snap.priorityClasses.length > 0) priorityClasses.replaceAll(snap.priorityClasses);
    binder = new SnapshotBinder(cache);
    metrics.cacheSynced.set(1);
    log.info(
      { snapshot: config.clusterSnapshot, nodes: snap.nodes.length, pods: snap.pods.length },
      'serving from a cluster snapshot: no apiserver; binds change only the in-memory copy',
    );
  } else {
    const kc = opts.kubeConfig ?? resolveKubeConfig(config);
    binder = new KubeBinder(kc);
    watcher = new ClusterWatcher(kc, cache, log, metrics);
    const server = kc.getCurrentCluster()?.server ?? '(unknown)';
    void probeApiserver(kc).then((err) => {
      if (err) log.warn({ apiserver: server, err }, `apiserver ${server} is not reachable (${err}); retrying with backoff; ${TRY_WITHOUT_CLUSTER}`);
      else log.info({ apiserver: server }, 'apiserver reachable');
    });
    watcher.start();
    liveKc = kc;
    nsWatcher = new NamespaceWatcher(kc, namespaces, log, metrics);
    nsWatcher.start();
    pcWatcher = new PriorityClassWatcher(kc, priorityClasses, log, metrics);
    pcWatcher.start();
  }

  // Binds the watch never confirms stop counting after the TTL.
  const expiry = setInterval(() => {
    const n = cache.expireAssumed();
    if (n > 0) {
      metrics.assumeExpired.inc(n);
      log.warn({ expired: n }, 'assumed binds never showed up in the watch; their GPUs count as free again');
    }
    metrics.assumedPods.set(cache.assumedCount);
  }, 1000);
  expiry.unref();

  const notReady = (): string | null => {
    if (watcher && !watcher.synced()) return 'cluster cache has not synced with the apiserver yet';
    if (nsWatcher && !namespaces.synced) return 'namespace informer has not synced with the apiserver yet';
    if (pcWatcher && !priorityClasses.synced) return 'PriorityClass informer has not synced with the apiserver yet';
    return null;
  };
  // Postgres down must not stop sluice: the store migrates in the background and the
  // webhooks answer from the queue cache meanwhile. store.url '' = no store at all.
  if (config.store.url && config.clusterSnapshot) {
    // A try-out with a snapshot still writes to Postgres: say where, and how not to.
    log.warn(
      { store: redactUrl(config.store.url), schema: config.store.schema },
      `snapshot mode keeps queues and job records in Postgres at ${redactUrl(config.store.url)}, schema "${config.store.schema}" (created if missing); --store-url '' runs without a store`,
    );
  }
  const store = config.store.url
    ? new Store({
        url: config.store.url,
        schema: config.store.schema,
        log,
        metrics,
        queueCacheSize: config.store.queueCacheSize,
        missingTtlSeconds: config.store.missingTtlSeconds,
        auditBufferSize: config.store.auditBufferSize,
        historyDays: config.queue.historyDays,
      })
    : null;
  if (store) store.startInBackground();
  else log.warn('store.url is empty: no Postgres store; queue lookups answer "unavailable", no audit records, the admin API queue routes answer 503');

  // One Lease decides which replica serves the extender (its assume ledger is per process)
  // and runs the queue manager; every replica serves the webhooks and the read-only API.
  const self = { name: opts.podName ?? process.env.POD_NAME ?? '', namespace: opts.podNamespace ?? process.env.POD_NAMESPACE ?? config.queue.leaseNamespace };
  const elector =
    liveKc && config.leaderElection
      ? new LeaderElector(liveKc, {
          namespace: config.queue.leaseNamespace,
          name: config.queue.leaseName,
          identity: `${self.name || hostname()}-${randomBytes(3).toString('hex')}`,
          leaseDurationMs: config.queue.leaseDurationSeconds * 1000,
          renewDeadlineMs: config.queue.renewDeadlineSeconds * 1000,
          retryPeriodMs: config.queue.retryPeriodSeconds * 1000,
          log,
        })
      : null;
  const leadership = elector ?? SOLE_LEADER;
  leadership.subscribe((leading) => metrics.leader.set(leading ? 1 : 0));
  metrics.leaseError.set(0);
  elector?.onLeaseProblem((problem) => metrics.leaseError.set(problem ? 1 : 0));
  const label = liveKc && self.name ? new LeaderLabel(liveKc, self, log) : null;
  if (label) leadership.subscribe((leading) => void label.set(leading));
  const queue = config.queue.enabled ? await startQueueManager(config, { cache, store, kc: liveKc, log, metrics, leadership, now }) : null;
  elector?.start();

  // Preemptions: job records in Postgres, Events on the victims and their owners.
  const preemptionSinks: PreemptionSink[] = [];
  if (store) preemptionSinks.push(store.preemptions);
  if (liveKc) preemptionSinks.push(new PreemptionEvents(kubeEventPoster(liveKc), log));
  // HAMi's device plugin answers a share bind with bind phase success or failed.
  if (liveKc && config.sharing.enabled) {
    watchAllocationOutcomes(
      (fn) => cache.onChange(fn),
      kubeEventPoster(liveKc),
      log,
      ({ pod, node, message }) => {
        metrics.binds.inc({ result: 'allocation_failed' });
        store?.bindFailures.recordBindFailure({
          at: new Date(),
          namespace: pod.namespace,
          pod: pod.name,
          uid: pod.uid,
          job: pod.labels[LABEL_JOB] ?? '',
          queue: pod.labels[LABEL_QUEUE] ?? '',
          node,
          cause: 'allocation_failed',
          reason: message,
        });
      },
    );
  }

  // Job frameworks: the workloads that own pods, read on the admission path (cached).
  const workloadApi = liveKc && config.jobFrameworks.enabled ? new ApiTransport(liveKc, { maxSockets: 4 }) : null;
  const workloads = workloadApi
    ? new WorkloadReader((path, timeoutMs) => workloadApi.call('GET', path, { timeoutMs }), log, metrics, {
        cacheTtlMs: config.jobFrameworks.cacheSeconds * 1000,
        timeoutMs: config.jobFrameworks.readTimeoutMs,
      })
    : null;

  const tlsCert = await prepareServingCert(config, liveKc, log, metrics);
  const servers = await buildServers({
    config: tlsCert.config,
    log,
    metrics,
    cache,
    binder,
    notReady,
    namespaces,
    priorityClasses,
    store,
    queues: store?.queues,
    audit: store?.audit,
    preemptionSinks,
    kubeConfig: liveKc,
    queueManager: queue?.manager ?? null,
    leadership,
    workloads,
    now,
  });
  if (servers.tlsOptions) tlsCert.attach(keepTlsPolicy(servers.api.server as unknown as SecureContextTarget, servers.tlsOptions));
  const apiUrl = await servers.api.listen({ host: config.https.host, port: config.https.port });
  const opsUrl = await servers.ops.listen({ host: config.http.host, port: config.http.port });
  if (!servers.tls) {
    log.warn('no TLS files configured (https.certFile/keyFile): the extender listener speaks plain HTTP');
  }
  log.info({ api: apiUrl, ops: opsUrl, gpuResources: config.gpuResources, policy: config.defaultPolicy }, 'sluice is serving');

  let closed = false;
  return {
    servers,
    cache,
    queue: queue?.manager ?? null,
    cluster,
    metrics,
    log,
    apiUrl,
    opsUrl,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(expiry);
      tlsCert.stop();
      await elector?.stop(); // gives the Lease up: a follower takes over within a retry period
      // The label goes before the client's connections close; bounded, because the patch
      // has no timeout of its own and a stalled apiserver must not hold up the store's
      // audit flush below.
      if (label && !(await settledWithin(label.settled(), LABEL_SHUTDOWN_WAIT_MS))) {
        log.warn(
          { waitedMs: LABEL_SHUTDOWN_WAIT_MS },
          `the ${LABEL_LEADER} label was not removed in time; the pod goes anyway, and a follower refuses extender calls until it leads`,
        );
      }
      await queue?.stop();
      await watcher?.stop();
      await nsWatcher?.stop();
      await pcWatcher?.stop();
      await servers.api.close();
      await servers.ops.close();
      workloadApi?.close();
      await store?.close(); // after the webhooks stop: flushes the audit buffer
    },
  };
}

/** A Postgres URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return '(not a URL)';
  }
}

/** How long a shutdown waits for the leader label's removal. */
const LABEL_SHUTDOWN_WAIT_MS = 3000;

async function probeApiserver(kc: KubeConfig): Promise<string | null> {
  try {
    const api = kc.makeApiClient(VersionApi);
    await Promise.race([api.getCode(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5s')), 5000).unref())]);
    return null;
  } catch (e) {
    const err = e as { message?: string; code?: string; cause?: { code?: string } };
    return err.cause?.code ?? err.code ?? err.message ?? String(e);
  }
}

interface QueueParts {
  cache: ClusterCache;
  store: Store | null;
  kc: KubeConfig | null;
  log: Logger;
  metrics: Metrics;
  leadership: Leadership;
  now: () => number;
}

/**
 * The queue manager with what it needs: with a cluster, bull on Redis carries releases out
 * and a Lease decides which replica acts; from a snapshot, releases go straight into the
 * in-memory copy and this process is the only one.
 */
async function startQueueManager(
  config: SluiceConfig,
  { cache, store, kc, log, metrics, leadership, now }: QueueParts,
): Promise<{ manager: QueueManager; stop(): Promise<void> }> {
  const q = config.queue;
  let manager: QueueManager | null = null;
  const onReleased = (o: { eventAtMs: number }, outcome: string): void => {
    if (outcome === 'removed') manager?.gateRemoved(o.eventAtMs);
  };
  const releaser: ReleaseSink = kc
    ? new BullReleaser({
        redisUrl: q.redisUrl,
        prefix: q.redisPrefix,
        patcher: new KubeGatePatcher(kc),
        ratePerSecond: q.releaseRatePerSecond,
        log,
        metrics,
        onReleased,
      })
    : new InMemoryReleaser((uid) => cache.ungate(uid, GATE_QUEUE), onReleased);
  const records = store ? new JobRecorder({ pool: store.pool, log, metrics }) : null;
  records?.start();
  manager = new QueueManager({
    cache,
    source: store ? { listQueues: () => store.listQueues(), onQueueChanged: (fn) => store.onQueueChanged(fn), notReady: () => store.notReady() } : null,
    releaser,
    records,
    openRecords: store ? openJobRecords(store.pool) : null,
    events: kc ? new KubeQueueEvents(kc, log, q.eventsPerSecond) : null,
    leadership,
    log,
    metrics,
    backfillGuardSeconds: q.backfillGuardSeconds,
    debounceMs: q.debounceMs,
    resyncSeconds: q.resyncSeconds,
    waitEventIntervalSeconds: q.waitEventIntervalSeconds,
    now,
  });
  await manager.start();
  const eta = new EtaService({
    cache,
    manager,
    history: store ? new DurationHistory({ read: (k) => finishedDurations(store.pool, k), log, onLoaded: () => eta.markDirty() }) : null,
    log,
    backfillGuardMs: q.backfillGuardSeconds * 1000,
    intervalMs: (q.etaIntervalSeconds ?? 10) * 1000,
    maxJobs: q.etaMaxJobs ?? 1000,
    budgetMs: q.etaBudgetMs ?? 2000,
    admissionBudgetMs: q.etaAdmissionBudgetMs ?? 20,
    now,
  });
  manager.eta = eta;
  manager.setEtaNote((u, nowMs) => etaPhrase(eta.forJob(u.namespace, u.job), nowMs));
  eta.start();
  const m0 = manager;
  leadership.subscribe((leading) => void (leading ? m0.startLeading() : m0.stopLeading()));
  if (!store) log.warn('no store: the queue manager releases jobs by capacity alone (no quotas known)');
  const m = manager;
  return {
    manager: m,
    async stop() {
      eta.stop();
      await m.stopLeading();
      await m.stop();
      await releaser.close();
      await records?.close();
    },
  };
}
