// admission.k8s.io/v1 AdmissionReview on the wire: the request fields sluice reads, the
// response it sends, the route schemas, and RFC 6902 patch encoding. See DESIGN.md
// "Admission" and ../shared/fixtures/admission for real bodies.
import type { V1Pod } from '@kubernetes/client-node';

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
}

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation?: string;
  userInfo?: UserInfo;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request: AdmissionRequest;
}

export interface AdmissionStatus {
  code: number;
  message: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** One RFC 6902 operation; sluice only ever adds (add replaces an existing member). */
export interface PatchOp {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

export function reviewResponse(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/**
 * The pod as it will be once sluice's own patch is applied (its 'add' operations, the
 * only kind sluice writes), on a copy: what the submit-time warning reads.
 */
export function patched<T>(obj: T, ops: readonly PatchOp[]): T {
  const out = structuredClone(obj) as unknown;
  for (const op of ops) {
    if (op.op !== 'add') continue;
    const tokens = op.path
      .split('/')
      .slice(1)
      .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    let node = out as Record<string, unknown> | unknown[];
    for (const t of tokens.slice(0, -1)) node = (Array.isArray(node) ? node[Number(t)] : node[t]) as Record<string, unknown> | unknown[];
    const last = tokens[tokens.length - 1]!;
    if (Array.isArray(node)) {
      if (last === '-') node.push(op.value);
      else node.splice(Number(last), 0, op.value);
    } else node[last] = op.value;
  }
  return out as T;
}

export function encodePatch(ops: readonly PatchOp[]): string {
  return Buffer.from(JSON.stringify(ops)).toString('base64');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The pod in request.object (or oldObject) when it has the shape every pod from an
 * apiserver has - metadata and spec objects, a containers array of objects - else a
 * sentence saying what is wrong. Values inside are still checked where they are read.
 */
export function readPod(obj: unknown, field = 'request.object'): V1Pod | string {
  if (!isObject(obj)) return `${field} is not a Pod object`;
  if (obj.metadata !== undefined && !isObject(obj.metadata)) return `${field}.metadata is not an object`;
  const spec = obj.spec;
  if (!isObject(spec)) return `${field}.spec is missing`;
  if (!Array.isArray(spec.containers) || !spec.containers.every(isObject)) return `${field}.spec.containers is not a list of containers`;
  if (spec.initContainers !== undefined && (!Array.isArray(spec.initContainers) || !spec.initContainers.every(isObject))) {
    return `${field}.spec.initContainers is not a list of containers`;
  }
  const md = obj.metadata as Record<string, unknown> | undefined;
  for (const k of ['labels', 'annotations'] as const) {
    const m = md?.[k];
    if (m !== undefined && m !== null && (!isObject(m) || !Object.values(m).every((v) => typeof v === 'string'))) {
      return `${field}.metadata.${k} is not a map of strings`;
    }
  }
  for (const list of [spec.containers, spec.initContainers] as Array<Record<string, unknown>[] | undefined>) {
    for (const c of list ?? []) {
      if (c.resources === undefined || c.resources === null) continue;
      if (!isObject(c.resources)) return `${field} has a container whose resources is not an object`;
      for (const k of ['limits', 'requests'] as const) {
        const m = c.resources[k];
        if (m !== undefined && m !== null && !isObject(m)) return `${field} has a container whose resources.${k} is not a map`;
      }
    }
  }
  for (const k of ['tolerations', 'schedulingGates'] as const) {
    const v = spec[k];
    if (v !== undefined && v !== null && (!Array.isArray(v) || !v.every(isObject))) return `${field}.spec.${k} is not a list of objects`;
  }
  if (spec.affinity !== undefined && spec.affinity !== null) {
    if (!isObject(spec.affinity)) return `${field}.spec.affinity is not an object`;
    const why = nodeAffinityProblem(spec.affinity.nodeAffinity, `${field}.spec.affinity.nodeAffinity`);
    if (why) return why;
  }
  return obj as V1Pod;
}

const isList = (v: unknown): v is unknown[] => Array.isArray(v);
const absent = (v: unknown): boolean => v === undefined || v === null;

/** The required node-selector terms the mutation merges into, down to each requirement's values. */
function nodeAffinityProblem(na: unknown, at: string): string | null {
  if (absent(na)) return null;
  if (!isObject(na)) return `${at} is not an object`;
  const req = na.requiredDuringSchedulingIgnoredDuringExecution;
  const reqAt = `${at}.requiredDuringSchedulingIgnoredDuringExecution`;
  if (absent(req)) return null;
  if (!isObject(req)) return `${reqAt} is not an object`;
  const terms = req.nodeSelectorTerms;
  if (absent(terms)) return null;
  if (!isList(terms) || !terms.every(isObject)) return `${reqAt}.nodeSelectorTerms is not a list of objects`;
  for (const [i, term] of terms.entries()) {
    for (const k of ['matchExpressions', 'matchFields'] as const) {
      const list = term[k];
      if (absent(list)) continue;
      if (!isList(list) || !list.every(isObject)) return `${reqAt}.nodeSelectorTerms[${i}].${k} is not a list of objects`;
      for (const r of list) {
        if (!absent(r.values) && !(isList(r.values) && r.values.every((v) => typeof v === 'string'))) {
          return `${reqAt}.nodeSelectorTerms[${i}].${k} has values that are not a list of strings`;
        }
      }
    }
  }
  return null;
}

// Route schemas. Only the envelope is checked here (a full Pod schema would cost more
// than the decision itself); readPod checks what the decisions read.
export const admissionReviewSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { type: 'string', const: 'admission.k8s.io/v1' },
    kind: { type: 'string', const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid'],
      properties: {
        uid: { type: 'string', minLength: 1, maxLength: 128 },
        namespace: { type: 'string' },
        name: { type: 'string' },
        operation: { type: 'string' },
        dryRun: { type: 'boolean' },
        userInfo: {
          type: 'object',
          properties: { username: { type: 'string' }, groups: { type: 'array', items: { type: 'string' } } },
        },
      },
    },
  },
} as const;

export const admissionReviewResponseSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'response'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    response: {
      type: 'object',
      required: ['uid', 'allowed'],
      properties: {
        uid: { type: 'string' },
        allowed: { type: 'boolean' },
        status: {
          type: 'object',
          properties: { code: { type: 'integer' }, message: { type: 'string' } },
        },
        patchType: { type: 'string' },
        patch: { type: 'string' },
        warnings: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;
