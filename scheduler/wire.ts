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

// The schemas type every field the extender reads (a label that is a number, a container
// that is null, conditions that are not a list are 400s with the schema error, not 500s);
// everything else passes through untouched.
const stringMap = { type: ['object', 'null'], additionalProperties: { type: 'string' } } as const;
// Quantities are strings on the wire (resource.Quantity marshals as one).
const quantityMap = { type: ['object', 'null'], additionalProperties: { type: 'string' } } as const;
const nullableString = { type: ['string', 'null'] } as const;

const metadataSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    generateName: nullableString,
    namespace: nullableString,
    uid: nullableString,
    resourceVersion: nullableString,
    labels: stringMap,
    annotations: stringMap,
  },
} as const;

const containerSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    restartPolicy: nullableString,
    resources: { type: ['object', 'null'], properties: { requests: quantityMap, limits: quantityMap } },
  },
} as const;

const podSchema = {
  type: 'object',
  required: ['metadata', 'spec'],
  properties: {
    metadata: metadataSchema,
    spec: {
      type: 'object',
      required: ['containers'],
      properties: {
        containers: { type: 'array', items: containerSchema },
        initContainers: { type: ['array', 'null'], items: containerSchema },
      },
    },
  },
} as const;

const nodeSchema = {
  type: 'object',
  properties: {
    metadata: metadataSchema,
    spec: { type: ['object', 'null'], properties: { unschedulable: { type: ['boolean', 'null'] } } },
    status: {
      type: ['object', 'null'],
      properties: {
        allocatable: quantityMap,
        conditions: {
          type: ['array', 'null'],
          items: { type: 'object', properties: { type: { type: 'string' }, status: { type: 'string' }, reason: nullableString } },
        },
      },
    },
  },
} as const;

/** ExtenderArgs, with at most `maxNodes` nodes in either form (limits.extenderMaxNodes). */
export function extenderArgsSchema(maxNodes: number) {
  return {
    type: 'object',
    required: ['Pod'],
    properties: {
      Pod: podSchema,
      // Multi-type, not anyOf: fastify's ajv coerces types, and under anyOf a failed
      // 'null' branch would unwrap a one-element array before the 'array' branch ran.
      Nodes: { type: ['object', 'null'], properties: { items: { type: ['array', 'null'], maxItems: maxNodes, items: nodeSchema } } },
      NodeNames: { type: ['array', 'null'], maxItems: maxNodes, items: { type: 'string' } },
    },
  } as const;
}

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

const victimsMapSchema = (pod: object) =>
  ({
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
