// The two listeners. `api` (HTTPS when TLS files are configured) carries the scheduler
// extender - and the webhooks and admin API as they arrive; `ops` (plain HTTP) carries
// /healthz, /readyz and /metrics for kubelet probes and Prometheus.
import { fastify, LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { SluiceConfig } from '../config/schema.js';
import type { ClusterCache } from '../cluster/cache.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { shareNamesOf } from '../cluster/pod-request.js';
import { podRecord } from '../cluster/pod-record.js';
import { HamiNodeLocks, type HamiApi } from '../scheduler/hami-bind.js';
import { Extender } from '../scheduler/extender.js';
import type { PodBinder } from '../scheduler/binder.js';
import { Preempter } from '../scheduler/preempt.js';
import { gateUntilSynced, schedulerRoutes } from '../scheduler/routes.js';
import type { PreemptionSink } from '../store/preemptions.js';
import { NamespaceStore } from '../cluster/namespaces.js';
import type { PriorityClassStore } from '../cluster/priority-classes.js';
import type { AuditSink } from '../store/audit.js';
import type { QueueDirectory } from '../store/queue-directory.js';
import { CacheFacts } from '../webhooks/cluster-facts.js';
import { AdmissionHandler } from '../webhooks/handler.js';
import { policyFromConfig } from '../webhooks/policy.js';
import { webhookRoutes } from '../webhooks/routes.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiAuth, kubeTokenReviewer } from '../api/auth.js';
import { adminApi } from '../api/routes.js';
import { consoleRoutes } from '../console/routes.js';
import type { Store } from '../store/store.js';
import type { QueueManager } from '../queue/manager.js';
import type { Leadership } from '../cluster/leader.js';
import { submitWarning } from '../queue/preview.js';
import type { ObjectReader } from '../workloads/resolve.js';
import { limitPerClient } from './connection-limit.js';
import { apiTlsOptions, checkClientCertConfig, connectionOptions, limitBodies, nodeServerOptions, requireClientCerts, type ApiTls } from './listeners.js';

export interface AppParts {
  config: SluiceConfig;
  log: Logger;
  metrics: Metrics;
  cache: ClusterCache;
  binder: PodBinder;
  /** Why sluice is not ready yet, or null when it is. */
  notReady: () => string | null;
  /** Namespace labels for the webhooks; absent = no namespace is managed (pods opt in by label). */
  namespaces?: NamespaceStore;
  /** The cluster's PriorityClasses for the mutating webhook; absent = the configured values. */
  priorityClasses?: PriorityClassStore;
  /** Queue definitions and the audit for the webhooks; absent = no store (queue reads 'unavailable'). */
  queues?: QueueDirectory;
  audit?: AuditSink;
  /** The Postgres store behind the admin API's queue routes; absent/null = those answer 503. */
  store?: Store | null;
  /** Where preemptions are recorded besides the log (Postgres, Events); absent = nowhere. */
  preemptionSinks?: readonly PreemptionSink[];
  /** A live cluster, for TokenReview on the admin API (api.tokenReview). */
  kubeConfig?: KubeConfig | null;
  /** Which replica serves the extender (absent: this one). */
  leadership?: Leadership;
  /** The queue manager (admin API job routes, submit-time warnings); null when off. */
  queueManager?: QueueManager | null;
  /** Reads the workloads that own pods (jobFrameworks); absent/null = off. */
  workloads?: ObjectReader | null;
  /** The clock of the submit-time warning (serve()'s; default Date.now). */
  now?: () => number;
}

export interface Servers {
  api: FastifyInstance;
  ops: FastifyInstance;
  extender: Extender;
  tls: boolean;
  /** The API listener's TLS options (null when plain HTTP): rotations must keep them. */
  tlsOptions: ApiTls | null;
}

export async function buildServers(parts: AppParts): Promise<Servers> {
  const { config, log, metrics, cache } = parts;
  const tls = config.https.certFile !== '' && config.https.keyFile !== '';
  const logger = log as FastifyBaseLogger;
  // Per-request access logs are off: the hot path logs its decisions itself.
  const quiet = (): InstanceType<typeof LogController> => new LogController({ disableRequestLogging: true });
  // No type coercion: on these wire protocols "x" where a list belongs is an error, not ["x"].
  const ajv = { customOptions: { coerceTypes: false as const, removeAdditional: false as const } };
  const connections = connectionOptions(config);
  const nodeOptions = nodeServerOptions(config);
  // maxParamLength up to Node's header limit: a long queue name gets the name rule (400)
  // from the route schema, not fastify's 414 FST_ERR_MAX_PARAM_LENGTH.
  const common = {
    loggerInstance: logger,
    logController: quiet(),
    bodyLimit: config.limits.apiBodyBytes,
    routerOptions: { maxParamLength: 16384 },
    ajv,
    ...connections,
  };
  const tlsOptions = tls ? apiTlsOptions(config) : null;
  checkClientCertConfig(config, tls, log);
  // Typed as a plain FastifyInstance: the HTTPS one differs only in its raw server type.
  const api: FastifyInstance = tlsOptions
    ? (fastify({ ...common, https: { ...tlsOptions, ...nodeOptions } }) as unknown as FastifyInstance)
    : fastify({ ...common, http: nodeOptions });
  api.server.maxConnections = config.connections.maxConnections;
  const refused = (listener: 'api' | 'ops'): void => metrics.connectionsRefused.inc({ listener });
  limitPerClient(api.server, { listener: 'api', perClient: config.connections.maxConnectionsPerClient, log, onRefused: refused });
  requireClientCerts(api, config);
  limitBodies(api, config);

  const noStore: QueueDirectory = { lookup: async () => ({ status: 'unavailable', reason: 'no store configured (store.url is empty)' }) };
  // GPU shares speak HAMi's protocol to the apiserver; without one (snapshot mode) share
  // pods are bound into the in-memory copy like whole-GPU pods.
  const hamiApi = config.sharing.enabled && isHamiApi(parts.binder) ? parts.binder : null;
  const shares = hamiApi
    ? {
        api: hamiApi,
        locks: new HamiNodeLocks({
          api: hamiApi,
          lockExpireMs: config.sharing.nodeLockExpireSeconds * 1000,
          lockWaitMs: config.sharing.lockWaitSeconds * 1000,
          peekLock: (node) => cache.hamiLock(node),
        }),
      }
    : undefined;
  // A node update may be a released lock: binds waiting for it look again at once.
  if (shares) cache.onChange((c) => c.kind === 'node' && shares.locks.nodeChanged(c.name));
  const extender = new Extender({
    cache,
    binder: parts.binder,
    defaultPolicy: config.defaultPolicy,
    filterBest: config.scheduler.filterBest,
    log,
    metrics,
    ...(shares ? { shares } : {}),
    ...(parts.store ? { bindFailures: parts.store.bindFailures } : {}),
  });
  const preempter = new Preempter({
    cache,
    readPod: (ns, name) => parts.binder.readPod(ns, name),
    queues: parts.queues ?? noStore,
    sinks: parts.preemptionSinks ?? [],
    log,
    metrics,
  });
  // Snapshot mode fills the cache in one replaceAll, which counts as synced.
  // Followers never decide: the assume ledger that keeps binds from overcommitting is the
  // leader's alone.
  const extenderNotReady = (): string | null => {
    if (!cache.synced) return 'the cluster cache has not synced yet (the node and pod informers have not both listed the cluster)';
    if (parts.leadership && !parts.leadership.isLeader())
      return `this replica is not the leader (Lease ${config.queue.leaseNamespace}/${config.queue.leaseName}); the extender Service routes to the leader`;
    return null;
  };
  gateUntilSynced(api, { metrics, log, notReady: extenderNotReady });
  await api.register(schedulerRoutes, { extender, preempter, metrics, maxNodes: config.limits.extenderMaxNodes });

  const admission = new AdmissionHandler({
    policy: policyFromConfig(config.webhooks, config.gpuResources, shareNamesOf(config.sharing)),
    facts: new CacheFacts(cache, parts.namespaces ?? new NamespaceStore(), Date.now, parts.priorityClasses ?? null),
    queues: parts.queues ?? noStore,
    audit: parts.audit ?? { recordAdmission: () => undefined },
    log,
    metrics,
    queuePreview: parts.queueManager
      ? (pod) =>
          submitWarning(parts.queueManager!.current(), pod, config.gpuResources, (parts.now ?? Date.now)(), parts.queueManager!.eta, (p) =>
            cache.gpuEquivalents(podRecord(p, '', config.gpuResources, 0, shareNamesOf(config.sharing) ?? undefined)),
          )
      : undefined,
    workloads: parts.workloads ?? null,
  });
  await api.register(webhookRoutes, { handler: admission, metrics });

  const reviewer = config.api.tokenReview && parts.kubeConfig ? kubeTokenReviewer(parts.kubeConfig) : null;
  const auth = new ApiAuth({ token: config.api.token, reviewer, adminGroups: config.api.adminGroups, log });
  await api.register(adminApi, {
    store: parts.store ?? null,
    cache,
    auth,
    gpuResources: config.gpuResources,
    metrics,
    log,
    queueManager: parts.queueManager ?? null,
  });
  await api.register(consoleRoutes, {
    cache,
    store: parts.store ?? null,
    manager: parts.queueManager ?? null,
    auth,
    kubeConfig: reviewer ? (parts.kubeConfig ?? null) : null,
    log,
  });

  const ops: FastifyInstance = fastify({ loggerInstance: logger, logController: quiet(), ...connections, http: nodeOptions });
  ops.server.maxConnections = config.connections.opsMaxConnections;
  limitPerClient(ops.server, { listener: 'ops', perClient: config.connections.opsMaxConnectionsPerClient, log, onRefused: refused });
  ops.get('/healthz', async () => ({ status: 'ok' }));
  ops.get('/readyz', async (_req, reply) => {
    const why = parts.notReady();
    if (why) return reply.code(503).send({ status: 'not ready', reason: why });
    // Leadership does not decide readiness (followers serve the webhooks and the API), but a
    // replica that cannot reach the Lease says so here: when every replica does, none leads.
    const leader = parts.leadership ? parts.leadership.isLeader() : true;
    const lease = parts.leadership?.leaseProblem?.() ?? null;
    return lease ? { status: 'ready', leader, lease } : { status: 'ready', leader };
  });
  ops.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  metrics.gpuInventory = () => cache.inventory();

  return { api, ops, extender, tls, tlsOptions };
}

const isHamiApi = (b: unknown): b is HamiApi & AppParts['binder'] =>
  typeof (b as Partial<HamiApi>).patchNodeAnnotations === 'function' && typeof (b as Partial<HamiApi>).readNode === 'function';
