// JSON schemas of the admin API. Fastify validates requests and serialises responses
// with them, and @fastify/swagger turns them into the OpenAPI document.

export const QUEUE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

export const errorSchema = {
  $id: 'ApiError',
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string', description: 'What was wrong and what to do.' },
  },
  required: ['statusCode', 'error', 'message'],
} as const;

const limit = {
  type: 'object',
  additionalProperties: false,
  properties: {
    resource: { type: 'string', pattern: '^([a-z0-9.-]+/)?[A-Za-z0-9._-]+$', maxLength: 253, description: 'GPU resource, e.g. nvidia.com/gpu.' },
    model: { type: 'string', maxLength: 253, default: '', description: "GPU model (alias like a100 or a GFD product); '' = any model." },
    guaranteed: { type: 'integer', minimum: 0, maximum: 1000000, default: 0, description: 'GPUs guaranteed to the queue.' },
    bestEffortCap: { type: 'integer', minimum: 0, maximum: 1000000, default: 0, description: 'Most GPUs held by best-effort pods.' },
    perJobMax: { type: 'integer', minimum: 0, maximum: 1000000, default: 0, description: 'Most GPUs one job may ask; 0 = no limit.' },
    perUserMax: { type: 'integer', minimum: 0, maximum: 1000000, default: 0, description: 'Most GPUs one user may hold in the queue (both QoS); 0 = no cap.' },
  },
  required: ['resource', 'model', 'guaranteed', 'bestEffortCap', 'perJobMax', 'perUserMax'],
} as const;

/** In a PUT body only the resource is required; the rest take the defaults above. */
const limitIn = { ...limit, required: ['resource'] } as const;

const queueOut = {
  $id: 'Queue',
  type: 'object',
  properties: {
    name: { type: 'string' },
    parent: { type: ['string', 'null'] },
    cohort: { type: ['string', 'null'] },
    open: { type: 'boolean' },
    weight: { type: 'number' },
    maxDurationSeconds: { type: ['integer', 'null'], description: 'Longest sluice.io/expected-duration a job may declare (seconds); null = no cap.' },
    limits: { type: 'array', items: limit },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
  required: ['name', 'parent', 'cohort', 'open', 'weight', 'limits', 'createdAt', 'updatedAt'],
} as const;

export const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: QUEUE_NAME_PATTERN, maxLength: 63, description: 'Queue name (DNS label).' } },
  required: ['name'],
} as const;

export const queueInput = {
  type: 'object',
  additionalProperties: false,
  properties: {
    parent: { type: ['string', 'null'], pattern: QUEUE_NAME_PATTERN, maxLength: 63, default: null },
    cohort: { type: ['string', 'null'], maxLength: 253, default: null },
    open: { type: 'boolean', default: true },
    weight: { type: 'number', exclusiveMinimum: 0, maximum: 1000000, default: 1 },
    maxDurationSeconds: {
      type: ['integer', 'null'],
      minimum: 1,
      maximum: 31536000,
      default: null,
      description:
        'Longest sluice.io/expected-duration a job may declare, in seconds (admission denies longer); null = no cap. A best-effort job running past it is reclaimed first.',
    },
    limits: { type: 'array', items: limitIn, maxItems: 256, default: [] },
  },
} as const;

export const queueSchemas = { queueOut, limit };

export const usageOut = {
  type: 'object',
  properties: {
    queue: { type: 'string' },
    pods: { type: 'integer', description: 'Bound, non-terminal pods labelled sluice.io/queue with this queue.' },
    totals: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          resource: { type: 'string' },
          guaranteed: { type: 'number', description: 'GPUs; GPU shares as fractions (four 0.25 pods: 1)' },
          bestEffort: { type: 'number' },
        },
        required: ['resource', 'guaranteed', 'bestEffort'],
      },
    },
    byModel: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          resource: { type: 'string' },
          model: { type: 'string' },
          guaranteed: { type: 'number' },
          bestEffort: { type: 'number' },
        },
        required: ['resource', 'model', 'guaranteed', 'bestEffort'],
      },
    },
    limits: { type: 'array', items: limit, description: "The queue's quota rows, to compare with." },
  },
  required: ['queue', 'pods', 'totals', 'byModel', 'limits'],
} as const;

export const nodesOut = {
  type: 'object',
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          resource: { type: 'string' },
          model: { type: 'string', description: 'nvidia.com/gpu.product of the node.' },
          memoryMiB: { type: 'integer' },
          total: { type: 'integer', description: 'Allocatable GPUs.' },
          used: { type: 'integer', description: 'GPUs of bound, non-terminal pods.' },
          assumed: { type: 'integer', description: 'GPUs of pods just bound by sluice, not yet seen by the watch.' },
          free: { type: 'integer' },
          health: { type: 'string', enum: ['healthy', 'unusable'] },
          reason: { type: 'string', description: "Why the node's GPUs cannot be used ('' when healthy)." },
          gpus: {
            type: 'array',
            description:
              "GPUs HAMi's device plugin registered (docs/gpu-sharing.md), with what pods and binds in flight use of each; absent on nodes without the registration.",
            items: {
              type: 'object',
              properties: {
                index: { type: 'integer' },
                uuid: { type: 'string' },
                type: { type: 'string' },
                memoryMiB: { type: 'integer' },
                usedMemoryMiB: { type: 'integer' },
                cores: { type: 'integer' },
                usedCores: { type: 'integer' },
                slots: { type: 'integer', description: 'Split count: tasks the GPU may run at once.' },
                usedSlots: { type: 'integer' },
              },
              required: ['index', 'uuid', 'type', 'memoryMiB', 'usedMemoryMiB', 'cores', 'usedCores', 'slots', 'usedSlots'],
            },
          },
          excluded: { type: 'array', items: { type: 'string' }, description: 'Registered GPUs left out, each with why (unhealthy, stale handshake).' },
        },
        required: ['name', 'resource', 'model', 'memoryMiB', 'total', 'used', 'assumed', 'free', 'health', 'reason'],
      },
    },
  },
  required: ['items'],
} as const;
