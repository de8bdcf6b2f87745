// The configuration schema: one JSON schema that validates the YAML file, the
// environment and the flags, fills in defaults, and documents every key (README).
import type { JSONSchemaType } from 'ajv';
import { POLICIES, type PolicyName } from '../placement/types.js';

export { POLICIES, type PolicyName };

export interface SluiceConfig {
  /** Path to a kubeconfig; empty = $KUBECONFIG, then in-cluster, then ~/.kube/config. */
  kubeconfig: string;
  /** A `kubectl get nodes,pods -A -o json` file to serve from instead of a live cluster
   * (binds then change only sluice's in-memory copy). Empty = live cluster. */
  clusterSnapshot: string;
  /** Extended resources that sluice manages as GPUs. */
  gpuResources: string[];
  /** Node scoring policy when a pod does not name one (annotation sluice.io/policy). */
  defaultPolicy: PolicyName;
  /** Seconds an assumed (bound but not yet watched) pod counts as placed. */
  assumeTtlSeconds: number;
  /** How many recent GPU pod sizes the fragmentation policy learns from. */
  recentPodWindow: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** The scheduler extender's answers. */
  scheduler: {
    /** k > 0: filter answers only the k nodes the pod's policy places a GPU pod best on
     * (full-precision scores, equal scores to the smallest node name); the others fail
     * as resolvable. 0 = every node that fits passes (README "Scheduler configuration"). */
    filterBest: number;
  };
  /** GPU shares through HAMi's device plugin (docs/gpu-sharing.md). */
  sharing: {
    /** Read HAMi's registration on nodes and place shares; false = GPUs are whole only. */
    enabled: boolean;
    /** The GPU count resource whose GPUs HAMi's plugin splits (one of gpuResources). */
    resource: string;
    /** Memory per GPU in MiB. */
    memoryResource: string;
    /** Memory per GPU as a percentage of the GPU. */
    memoryPercentResource: string;
    /** Compute per GPU in percent (100 = the GPU alone). */
    coresResource: string;
    /** A handshake left "Requesting_" this long (and no GPUs advertised) drops the node's GPUs (HAMi: 60). */
    handshakeTimeoutSeconds: number;
    /** A node lock (hami.io/mutex.lock) older than this is stale and taken over (HAMi: HAMI_NODELOCK_EXPIRE, 5m). */
    nodeLockExpireSeconds: number;
    /** How long a bind waits for another pod's node lock on the same node before it fails
     * (keep below the extender's httpTimeout in the scheduler configuration, 5s). */
    lockWaitSeconds: number;
  };
  https: {
    host: string;
    port: number;
    /** PEM files of the serving certificate; both empty = HTTPS listener off. */
    certFile: string;
    keyFile: string;
    /** PEM bundle of the CAs whose client certificates are accepted; '' = client certificates not checked. */
    clientCaFile: string;
    /** Route groups that require a verified client certificate: extender (/scheduler), webhooks, api (/api/v1). */
    requireClientCert: Array<'extender' | 'webhooks' | 'api'>;
  };
  http: {
    host: string;
    port: number;
  };
  /** Work one request may cause, per route (413 above a body limit). */
  limits: {
    /** filter, prioritize, preempt: sized for the NodeNames form at 10,000 nodes (README). */
    extenderBodyBytes: number;
    /** Most nodes one filter/prioritize/preempt request may name (400 above). */
    extenderMaxNodes: number;
    bindBodyBytes: number;
    /** AdmissionReview: kube-apiserver sends object and oldObject, each up to ~1.5 MiB. */
    webhookBodyBytes: number;
    /** Admin API request bodies (queue definitions). */
    apiBodyBytes: number;
  };
  /** Connection handling of both listeners (Node's http server options). */
  connections: {
    /** Whole request (headers and body) must arrive within this; 0 = no limit. */
    requestTimeoutSeconds: number;
    /** Request headers must arrive within this (and the TLS handshake finish). */
    headersTimeoutSeconds: number;
    /** An idle keep-alive connection is closed after this. */
    keepAliveTimeoutSeconds: number;
    /** A connection with no traffic at all is closed after this. */
    idleTimeoutSeconds: number;
    /** Open connections per listener; more are closed at once (keep below the file-descriptor limit). */
    maxConnections: number;
    opsMaxConnections: number;
    /** Open connections per client address on each listener, so one client cannot fill the cap; 0 = no per-address cap. */
    maxConnectionsPerClient: number;
    opsMaxConnectionsPerClient: number;
    /** Requests served per keep-alive connection before it is closed; 0 = no limit. */
    maxRequestsPerSocket: number;
  };
  /** Postgres: queues, quotas, job records, admission audit (store/). */
  store: {
    /** postgres:// URL; env DATABASE_URL is honoured too; '' = no store (admin API and quota reads off). */
    url: string;
    /** Postgres schema holding every sluice table (tests use a random one). */
    schema: string;
    /** Queue definitions kept in memory (entries; kept fresh by LISTEN/NOTIFY). */
    queueCacheSize: number;
    /** Seconds a "no such queue" answer is cached. */
    missingTtlSeconds: number;
    /** Admission audit records held in memory while Postgres is slow or down; the oldest are dropped past this. */
    auditBufferSize: number;
  };
  /** Admin REST API (/api/v1) on the api listener. */
  api: {
    /** Bearer token for /api/v1 (env SLUICE_API_TOKEN); '' = only Kubernetes TokenReview (when a cluster is configured). */
    token: string;
    /** Also accept Kubernetes service-account/user tokens checked with a TokenReview (needs a cluster). */
    tokenReview: boolean;
    /** With TokenReview: users in one of these groups may use the admin API. */
    adminGroups: string[];
  };
  /** Admission webhooks /webhooks/{mutate,validate} on the api listener (webhooks/). */
  webhooks: {
    /** Taint on GPU nodes that GPU pods get a toleration for, as key[=value]:Effect; '' = none. */
    gpuTaint: string;
    /** Put the scheduling gate sluice.io/queue on GPU pods (the queue manager releases them). */
    queueing: boolean;
    /** The only user allowed to remove the gate or change sluice.io/queue, qos, user labels. */
    serviceAccount: string;
    /** sluice.io/job-type value -> node labels its pods must land on (YAML only). */
    jobTypes: Record<string, Record<string, string>>;
    guaranteedPriorityClass: string;
    /** Must equal the value of that PriorityClass object. */
    guaranteedPriority: number;
    bestEffortPriorityClass: string;
    bestEffortPriority: number;
    /** preemptionPolicy of each class (PreemptLowerPriority | Never), also set on the pod. */
    guaranteedPreemptionPolicy: 'PreemptLowerPriority' | 'Never';
    bestEffortPreemptionPolicy: 'PreemptLowerPriority' | 'Never';
    /** Queue store unreadable (Postgres down, nothing cached): admit without quota checks, or deny. */
    onStoreDown: 'allow' | 'deny';
  };
  /** Job frameworks (workloads/): a pod's job and gang from the workload that owns it
   * (Job, JobSet, PyTorchJob, TFJob, MPIJob, RayCluster, RayJob, LeaderWorkerSet). */
  jobFrameworks: {
    /** Read owning workloads (needs get on their kinds); false: a job is the pod's controller, a gang only by sluice.io/gang-size. */
    enabled: boolean;
    /** How long a workload object read from the apiserver is used before it is read again. */
    cacheSeconds: number;
    /** Give up reading a workload after this long; its pods are then their own jobs (with a warning). */
    readTimeoutMs: number;
  };
  /** Elect one leader among replicas with a Lease (queue.lease*): only the leader serves the
   * extender and runs the queue manager. false: this process acts alone (one replica only). */
  leaderElection: boolean;
  /** The queue manager (queue/): releases gated jobs when quota and capacity allow. */
  queue: {
    /** Run the queue manager (every replica evaluates; only the Lease holder releases). */
    enabled: boolean;
    /** A job waiting longer than this reserves what it waits for: later jobs may no longer backfill past it. */
    backfillGuardSeconds: number;
    /** Delay between a cluster or quota event and the evaluation it triggers (events arriving meanwhile share it). */
    debounceMs: number;
    /** Evaluate at least this often even without events (backfill guard, retries). */
    resyncSeconds: number;
    /** Redis for the durable release queue (bull); env REDIS_URL is honoured too. */
    redisUrl: string;
    /** Redis key prefix of the release queue. */
    redisPrefix: string;
    /** Most gate removals per second sent to the apiserver. */
    releaseRatePerSecond: number;
    /** Lease for leader election (coordination.k8s.io/v1), in this namespace. */
    leaseNamespace: string;
    leaseName: string;
    leaseDurationSeconds: number;
    renewDeadlineSeconds: number;
    retryPeriodSeconds: number;
    /** Finished job records are deleted after this many days. */
    historyDays: number;
    /** A waiting job gets a "Queued" Event at most this often. */
    waitEventIntervalSeconds: number;
    /** Estimated start times (docs/eta.md): at most one forecast this often (s). */
    etaIntervalSeconds?: number;
    /** Waiting jobs the forecast follows, nearest to starting first (the rest: not known). */
    etaMaxJobs?: number;
    /** Wall-clock budget of one forecast (ms). */
    etaBudgetMs?: number;
    /** Budget of the what-if behind the submit-time warning's ETA (ms); 0 = no ETA in the warning. */
    etaAdmissionBudgetMs?: number;
    /** Most pod Events per second the queue manager sends. */
    eventsPerSecond: number;
  };
  /** Webhook serving certificate (certs/). */
  certs: {
    /** Keep CA + serving cert in a Secret, patch caBundle into the webhook configurations, rotate. */
    selfProvision: boolean;
    /** Namespace and Service the webhooks are reached through (certificate SANs). */
    namespace: string;
    service: string;
    secretName: string;
    /** Name of both the MutatingWebhookConfiguration and the ValidatingWebhookConfiguration. */
    webhookConfigName: string;
    servingValidDays: number;
    /** Renew the serving certificate when fewer days than this are left. */
    servingRenewDays: number;
    caValidDays: number;
    /** Start the CA switch (old and new CA both trusted) when fewer days than this are left. */
    caRenewDays: number;
    checkIntervalSeconds: number;
    /** Extra SANs of the self-provisioned serving certificate (e.g. the Service's ClusterIP for kube-scheduler on the host network). */
    extraDns: string[];
    extraIps: string[];
  };
}

export const configSchema: JSONSchemaType<SluiceConfig> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kubeconfig: { type: 'string', default: '' },
    clusterSnapshot: { type: 'string', default: '' },
    gpuResources: {
      type: 'array',
      items: { type: 'string', pattern: '^([a-z0-9.-]+/)?[A-Za-z0-9._-]+$' },
      minItems: 1,
      default: ['nvidia.com/gpu'],
    },
    defaultPolicy: { type: 'string', enum: [...POLICIES], default: 'binpack' },
    assumeTtlSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 30 },
    recentPodWindow: { type: 'integer', minimum: 1, maximum: 100000, default: 2000 },
    logLevel: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
    },
    scheduler: {
      type: 'object',
      additionalProperties: false,
      default: { filterBest: 0 },
      properties: {
        filterBest: { type: 'integer', minimum: 0, maximum: 100000, default: 0 },
      },
      required: ['filterBest'],
    },
    sharing: {
      type: 'object',
      additionalProperties: false,
      default: {
        enabled: true,
        resource: 'nvidia.com/gpu',
        memoryResource: 'nvidia.com/gpumem',
        memoryPercentResource: 'nvidia.com/gpumem-percentage',
        coresResource: 'nvidia.com/gpucores',
        handshakeTimeoutSeconds: 60,
        nodeLockExpireSeconds: 300,
        lockWaitSeconds: 4,
      },
      properties: {
        enabled: { type: 'boolean', default: true },
        resource: { type: 'string', minLength: 1, default: 'nvidia.com/gpu' },
        memoryResource: { type: 'string', minLength: 1, default: 'nvidia.com/gpumem' },
        memoryPercentResource: { type: 'string', minLength: 1, default: 'nvidia.com/gpumem-percentage' },
        coresResource: { type: 'string', minLength: 1, default: 'nvidia.com/gpucores' },
        handshakeTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
        nodeLockExpireSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 300 },
        lockWaitSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 4 },
      },
      required: [
        'enabled',
        'resource',
        'memoryResource',
        'memoryPercentResource',
        'coresResource',
        'handshakeTimeoutSeconds',
        'nodeLockExpireSeconds',
        'lockWaitSeconds',
      ],
    },
    https: {
      type: 'object',
      additionalProperties: false,
      default: { host: '0.0.0.0', port: 9443, certFile: '', keyFile: '', clientCaFile: '', requireClientCert: [] },
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 9443 },
        certFile: { type: 'string', default: '' },
        keyFile: { type: 'string', default: '' },
        clientCaFile: { type: 'string', default: '' },
        requireClientCert: {
          type: 'array',
          items: { type: 'string', enum: ['extender', 'webhooks', 'api'] },
          uniqueItems: true,
          default: [],
        },
      },
      required: ['host', 'port', 'certFile', 'keyFile', 'clientCaFile', 'requireClientCert'],
    },
    http: {
      type: 'object',
      additionalProperties: false,
      default: { host: '0.0.0.0', port: 8080 },
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
      },
      required: ['host', 'port'],
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: { extenderBodyBytes: 2097152, extenderMaxNodes: 15000, bindBodyBytes: 16384, webhookBodyBytes: 4194304, apiBodyBytes: 262144 },
      properties: {
        extenderBodyBytes: { type: 'integer', minimum: 1024, maximum: 268435456, default: 2097152 },
        extenderMaxNodes: { type: 'integer', minimum: 1, maximum: 1000000, default: 15000 },
        bindBodyBytes: { type: 'integer', minimum: 1024, maximum: 1048576, default: 16384 },
        webhookBodyBytes: { type: 'integer', minimum: 1024, maximum: 268435456, default: 4194304 },
        apiBodyBytes: { type: 'integer', minimum: 1024, maximum: 16777216, default: 262144 },
      },
      required: ['extenderBodyBytes', 'extenderMaxNodes', 'bindBodyBytes', 'webhookBodyBytes', 'apiBodyBytes'],
    },
    connections: {
      type: 'object',
      additionalProperties: false,
      default: {
        requestTimeoutSeconds: 10,
        headersTimeoutSeconds: 5,
        keepAliveTimeoutSeconds: 65,
        idleTimeoutSeconds: 120,
        maxConnections: 512,
        opsMaxConnections: 64,
        maxConnectionsPerClient: 256,
        opsMaxConnectionsPerClient: 16,
        maxRequestsPerSocket: 0,
      },
      properties: {
        requestTimeoutSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 10 },
        headersTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 5 },
        keepAliveTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 65 },
        idleTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 120 },
        maxConnections: { type: 'integer', minimum: 1, maximum: 1000000, default: 512 },
        opsMaxConnections: { type: 'integer', minimum: 1, maximum: 1000000, default: 64 },
        maxConnectionsPerClient: { type: 'integer', minimum: 0, maximum: 1000000, default: 256 },
        opsMaxConnectionsPerClient: { type: 'integer', minimum: 0, maximum: 1000000, default: 16 },
        maxRequestsPerSocket: { type: 'integer', minimum: 0, maximum: 100000000, default: 0 },
      },
      required: [
        'requestTimeoutSeconds',
        'headersTimeoutSeconds',
        'keepAliveTimeoutSeconds',
        'idleTimeoutSeconds',
        'maxConnections',
        'opsMaxConnections',
        'maxConnectionsPerClient',
        'opsMaxConnectionsPerClient',
        'maxRequestsPerSocket',
      ],
    },
    store: {
      type: 'object',
      additionalProperties: false,
      default: {
        url: 'postgres://postgres@127.0.0.1:5432/test',
        schema: 'sluice',
        queueCacheSize: 10000,
        missingTtlSeconds: 5,
        auditBufferSize: 10000,
      },
      properties: {
        url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
        schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,39}$', default: 'sluice' },
        queueCacheSize: { type: 'integer', minimum: 1, maximum: 10000000, default: 10000 },
        missingTtlSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 5 },
        auditBufferSize: { type: 'integer', minimum: 1, maximum: 10000000, default: 10000 },
      },
      required: ['url', 'schema', 'queueCacheSize', 'missingTtlSeconds', 'auditBufferSize'],
    },
    api: {
      type: 'object',
      additionalProperties: false,
      default: { token: '', tokenReview: true, adminGroups: ['system:masters', 'sluice:admins'] },
      properties: {
        token: { type: 'string', default: '' },
        tokenReview: { type: 'boolean', default: true },
        adminGroups: { type: 'array', items: { type: 'string' }, default: ['system:masters', 'sluice:admins'] },
      },
      required: ['token', 'tokenReview', 'adminGroups'],
    },
    webhooks: {
      type: 'object',
      additionalProperties: false,
      default: {
        gpuTaint: 'nvidia.com/gpu:NoSchedule',
        queueing: true,
        serviceAccount: 'system:serviceaccount:sluice-system:sluice',
        jobTypes: {},
        guaranteedPriorityClass: 'sluice-guaranteed',
        guaranteedPriority: 1000,
        bestEffortPriorityClass: 'sluice-best-effort',
        bestEffortPriority: 100,
        guaranteedPreemptionPolicy: 'PreemptLowerPriority',
        bestEffortPreemptionPolicy: 'Never',
        onStoreDown: 'allow',
      },
      properties: {
        gpuTaint: { type: 'string', default: 'nvidia.com/gpu:NoSchedule' },
        queueing: { type: 'boolean', default: true },
        serviceAccount: { type: 'string', default: 'system:serviceaccount:sluice-system:sluice' },
        jobTypes: {
          type: 'object',
          required: [],
          additionalProperties: { type: 'object', required: [], additionalProperties: { type: 'string' } },
          default: {},
        },
        guaranteedPriorityClass: { type: 'string', default: 'sluice-guaranteed' },
        guaranteedPriority: { type: 'integer', minimum: -2147483648, maximum: 1000000000, default: 1000 },
        bestEffortPriorityClass: { type: 'string', default: 'sluice-best-effort' },
        bestEffortPriority: { type: 'integer', minimum: -2147483648, maximum: 1000000000, default: 100 },
        guaranteedPreemptionPolicy: { type: 'string', enum: ['PreemptLowerPriority', 'Never'], default: 'PreemptLowerPriority' },
        bestEffortPreemptionPolicy: { type: 'string', enum: ['PreemptLowerPriority', 'Never'], default: 'Never' },
        onStoreDown: { type: 'string', enum: ['allow', 'deny'], default: 'allow' },
      },
      required: [
        'gpuTaint',
        'queueing',
        'serviceAccount',
        'jobTypes',
        'guaranteedPriorityClass',
        'guaranteedPriority',
        'bestEffortPriorityClass',
        'bestEffortPriority',
        'guaranteedPreemptionPolicy',
        'bestEffortPreemptionPolicy',
        'onStoreDown',
      ],
    },
    jobFrameworks: {
      type: 'object',
      additionalProperties: false,
      default: { enabled: true, cacheSeconds: 30, readTimeoutMs: 1000 },
      properties: {
        enabled: { type: 'boolean', default: true },
        cacheSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 30 },
        readTimeoutMs: { type: 'integer', minimum: 50, maximum: 4000, default: 1000 },
      },
      required: ['enabled', 'cacheSeconds', 'readTimeoutMs'],
    },
    leaderElection: { type: 'boolean', default: true },
    queue: {
      type: 'object',
      additionalProperties: false,
      default: {
        enabled: true,
        backfillGuardSeconds: 600,
        debounceMs: 5,
        resyncSeconds: 10,
        redisUrl: 'redis://127.0.0.1:6379',
        redisPrefix: 'sluice',
        releaseRatePerSecond: 50,
        leaseNamespace: 'sluice-system',
        leaseName: 'sluice',
        leaseDurationSeconds: 15,
        renewDeadlineSeconds: 10,
        retryPeriodSeconds: 2,
        historyDays: 30,
        waitEventIntervalSeconds: 60,
        eventsPerSecond: 20,
      },
      properties: {
        enabled: { type: 'boolean', default: true },
        backfillGuardSeconds: { type: 'integer', minimum: 0, maximum: 604800, default: 600 },
        debounceMs: { type: 'integer', minimum: 0, maximum: 10000, default: 5 },
        resyncSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 10 },
        redisUrl: { type: 'string', default: 'redis://127.0.0.1:6379' },
        redisPrefix: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$', default: 'sluice' },
        releaseRatePerSecond: { type: 'integer', minimum: 1, maximum: 10000, default: 50 },
        leaseNamespace: { type: 'string', default: 'sluice-system' },
        leaseName: { type: 'string', default: 'sluice' },
        leaseDurationSeconds: { type: 'integer', minimum: 2, maximum: 600, default: 15 },
        renewDeadlineSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 10 },
        retryPeriodSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 2 },
        historyDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
        waitEventIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
        eventsPerSecond: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
        etaIntervalSeconds: {
          type: 'integer',
          nullable: true,
          minimum: 1,
          maximum: 3600,
          default: 10,
          description: 'Estimated start times: at most one forecast this often (docs/eta.md).',
        },
        etaMaxJobs: {
          type: 'integer',
          nullable: true,
          minimum: 1,
          maximum: 100000,
          default: 1000,
          description: 'Waiting jobs the ETA forecast follows, nearest to starting first; the rest get "not known".',
        },
        etaBudgetMs: {
          type: 'integer',
          nullable: true,
          minimum: 10,
          maximum: 60000,
          default: 2000,
          description: 'Wall-clock budget of one ETA forecast (off the admission path).',
        },
        etaAdmissionBudgetMs: {
          type: 'integer',
          nullable: true,
          minimum: 0,
          maximum: 1000,
          default: 20,
          description: 'Budget of the what-if forecast behind the submit-time warning; 0 = the warning gives no ETA.',
        },
      },
      required: [
        'enabled',
        'backfillGuardSeconds',
        'debounceMs',
        'resyncSeconds',
        'redisUrl',
        'redisPrefix',
        'releaseRatePerSecond',
        'leaseNamespace',
        'leaseName',
        'leaseDurationSeconds',
        'renewDeadlineSeconds',
        'retryPeriodSeconds',
        'historyDays',
        'waitEventIntervalSeconds',
        'eventsPerSecond',
      ],
    },
    certs: {
      type: 'object',
      additionalProperties: false,
      default: {
        selfProvision: false,
        namespace: 'sluice-system',
        service: 'sluice',
        secretName: 'sluice-webhook-tls',
        webhookConfigName: 'sluice',
        servingValidDays: 90,
        servingRenewDays: 30,
        caValidDays: 3650,
        caRenewDays: 365,
        checkIntervalSeconds: 3600,
        extraDns: [],
        extraIps: [],
      },
      properties: {
        selfProvision: { type: 'boolean', default: false },
        namespace: { type: 'string', default: 'sluice-system' },
        service: { type: 'string', default: 'sluice' },
        secretName: { type: 'string', default: 'sluice-webhook-tls' },
        webhookConfigName: { type: 'string', default: 'sluice' },
        servingValidDays: { type: 'integer', minimum: 2, maximum: 3650, default: 90 },
        servingRenewDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
        caValidDays: { type: 'integer', minimum: 2, maximum: 36500, default: 3650 },
        caRenewDays: { type: 'integer', minimum: 1, maximum: 36500, default: 365 },
        checkIntervalSeconds: { type: 'integer', minimum: 10, maximum: 86400, default: 3600 },
        extraDns: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
        extraIps: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
      },
      required: [
        'selfProvision',
        'namespace',
        'service',
        'secretName',
        'webhookConfigName',
        'servingValidDays',
        'servingRenewDays',
        'caValidDays',
        'caRenewDays',
        'checkIntervalSeconds',
        'extraDns',
        'extraIps',
      ],
    },
  },
  required: [
    'kubeconfig',
    'clusterSnapshot',
    'gpuResources',
    'defaultPolicy',
    'assumeTtlSeconds',
    'recentPodWindow',
    'logLevel',
    'scheduler',
    'sharing',
    'https',
    'http',
    'limits',
    'connections',
    'store',
    'api',
    'webhooks',
    'jobFrameworks',
    'leaderElection',
    'queue',
    'certs',
  ],
};
