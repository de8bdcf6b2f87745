// Wire types of the scheduler extender protocol (k8s.io/kube-scheduler/extender/v1;
// JSON names are the Go field names) and the JSON schemas fastify validates them with.
import type { V1Node, V1Pod } from '@kubernetes/client-node';

export interface ExtenderArgs {
  Pod: V1Pod;
  Nodes?: { items?: V1Node[] | null } | null;
  NodeNames?: string[] | null;
}

export interface ExtenderFilterResult {
  Nodes: { items: V1Node[] } | null;
  NodeNames: string[] | null;
  FailedNodes: Record<string, string>;
  FailedAndUnresolvableNodes: Record<string, string>;
  Error: string;
}

export interface HostPriority {
  Host: string;
  Score: number;
}

export interface ExtenderBindingArgs {
  PodName: string;
  PodNamespace: string;
  PodUID: string;
  Node: string;
}

export interface ExtenderBindingResult {
  Error: string;
}

export interface MetaVictims {
  Pods: Array<{ UID: string }>;
  NumPDBViolations: number;
}

export interface ExtenderPreemptionArgs {
  Pod: V1Pod;
  NodeNameToVictims?: Record<string, { Pods: V1Pod[]; NumPDBViolations: number }> | null;
  NodeNameToMetaVictims?: Record<string, MetaVictims> | null;
}

export interface ExtenderPreemptionResult {
  NodeNameToMetaVictims: Record<string, MetaVictims>;
}

// ---- JSON schemas (input validation, response serialization, OpenAPI) ---------------

const podSchema = {
  type: 'object',
  required: ['metadata', 'spec'],
  properties: {
    metadata: { type: 'object' },
    spec: { type: 'object', required: ['containers'], properties: { containers: { type: 'array' } } },
  },
} as const;

export const extenderArgsSchema = {
  type: 'object',
  required: ['Pod'],
  properties: {
    Pod: podSchema,
    // Multi-type, not anyOf: fastify's ajv coerces types, and under anyOf a failed
    // 'null' branch would unwrap a one-element array before the 'array' branch ran.
    Nodes: { type: ['object', 'null'], properties: { items: { type: ['array', 'null'], items: { type: 'object' } } } },
    NodeNames: { type: ['array', 'null'], items: { type: 'string' } },
  },
} as const;

export const filterResultSchema = {
  type: 'object',
  properties: {
    Nodes: { type: ['object', 'null'], additionalProperties: true },
    NodeNames: { type: ['array', 'null'], items: { type: 'string' } },
    FailedNodes: { type: 'object', additionalProperties: { type: 'string' } },
    FailedAndUnresolvableNodes: { type: 'object', additionalProperties: { type: 'string' } },
    Error: { type: 'string' },
  },
} as const;

export const hostPriorityListSchema = {
  type: 'array',
  items: { type: 'object', properties: { Host: { type: 'string' }, Score: { type: 'integer' } } },
} as const;

export const bindingArgsSchema = {
  type: 'object',
  required: ['PodName', 'PodNamespace', 'PodUID', 'Node'],
  properties: {
    PodName: { type: 'string', minLength: 1 },
    PodNamespace: { type: 'string', minLength: 1 },
    PodUID: { type: 'string', minLength: 1 },
    Node: { type: 'string', minLength: 1 },
  },
} as const;

export const bindingResultSchema = {
  type: 'object',
  properties: { Error: { type: 'string' } },
} as const;

const victimsMapSchema = (pod: object) => ({
  type: ['object', 'null'],
  additionalProperties: {
    type: ['object', 'null'],
    properties: {
      Pods: { type: ['array', 'null'], items: pod },
      NumPDBViolations: { type: 'integer' },
    },
  },
}) as const;

const metaPodSchema = { type: 'object', required: ['UID'], properties: { UID: { type: 'string' } } } as const;

export const preemptionArgsSchema = {
  type: 'object',
  required: ['Pod'],
  properties: {
    Pod: podSchema,
    // Full victim pods (nodeCacheCapable false): sluice reads only their UIDs.
    NodeNameToVictims: victimsMapSchema({ type: 'object', properties: { metadata: { type: 'object' } } }),
    NodeNameToMetaVictims: victimsMapSchema(metaPodSchema),
  },
} as const;

export const preemptionResultSchema = {
  type: 'object',
  properties: {
    NodeNameToMetaVictims: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { Pods: { type: 'array', items: metaPodSchema }, NumPDBViolations: { type: 'integer' } },
      },
    },
  },
} as const;
