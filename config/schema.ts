// The configuration schema: one JSON schema that validates the YAML file, the
// environment and the flags, fills in defaults, and documents every key (README).
import type { JSONSchemaType } from 'ajv';

export const POLICIES = ['binpack', 'spread', 'fragmentation'] as const;
export type PolicyName = (typeof POLICIES)[number];

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
  https: {
    host: string;
    port: number;
    /** PEM files of the serving certificate; both empty = HTTPS listener off. */
    certFile: string;
    keyFile: string;
  };
  http: {
    host: string;
    port: number;
  };
  /** Largest request body the extender and webhooks accept, in bytes. */
  bodyLimitBytes: number;
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
    https: {
      type: 'object',
      additionalProperties: false,
      default: { host: '0.0.0.0', port: 9443, certFile: '', keyFile: '' },
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 9443 },
        certFile: { type: 'string', default: '' },
        keyFile: { type: 'string', default: '' },
      },
      required: ['host', 'port', 'certFile', 'keyFile'],
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
    bodyLimitBytes: { type: 'integer', minimum: 1024, maximum: 268435456, default: 16777216 },
  },
  required: [
    'kubeconfig',
    'clusterSnapshot',
    'gpuResources',
    'defaultPolicy',
    'assumeTtlSeconds',
    'recentPodWindow',
    'logLevel',
    'https',
    'http',
    'bodyLimitBytes',
  ],
};
