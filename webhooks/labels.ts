// The labels, annotations and names sluice reads and writes on pods (README "Labels and
// annotations" lists them all), and the small string helpers the patches need.

export const LABEL_MANAGED_NS = 'sluice.io/managed';
export const LABEL_DEFAULT_QUEUE_NS = 'sluice.io/default-queue';
export const LABEL_QUEUE = 'sluice.io/queue';
export const LABEL_QOS = 'sluice.io/qos';
export const LABEL_USER = 'sluice.io/user';
export const LABEL_JOB = 'sluice.io/job';
export const LABEL_JOB_TYPE = 'sluice.io/job-type';
export const LABEL_GANG_SIZE = 'sluice.io/gang-size';
/** Kueue's queue label: names the queue when no sluice.io/queue is set (moving from Kueue). */
export const LABEL_KUEUE_QUEUE = 'kueue.x-k8s.io/queue-name';
export const ANN_GPUS = 'sluice.io/gpus';
export const ANN_GPU_CONTAINER = 'sluice.io/gpu-container';
/** The same annotation the extender reads (one definition: scheduler/pod-ask.ts). */
export { ANNOTATION_GPU_MODEL as ANN_GPU_MODEL } from '../scheduler/pod-ask.js';
/** The requesting user's name as given by the apiserver (the label holds a label-safe form). */
export const ANN_USER = 'sluice.io/user';
/**
 * "true": sluice wrote sluice.io/user from the request's userInfo. "false": the pod was made
 * by a controller and keeps the user label of its template, which the webhook cannot check
 * (the requester it sees is the controller, not whoever wrote the template).
 */
export const ANN_USER_VERIFIED = 'sluice.io/user-verified';
export const GATE_QUEUE = 'sluice.io/queue';
export const DEFAULT_QUEUE = 'default';
export const QOS_CLASSES = ['guaranteed', 'best-effort'] as const;
export type QosClass = (typeof QOS_CLASSES)[number];

export const isQos = (v: string | undefined): v is QosClass => v === 'guaranteed' || v === 'best-effort';

/** RFC 6901: '~' -> '~0', '/' -> '~1' (label keys such as sluice.io/queue hold a '/'). */
export function escapePointer(token: string): string {
  if (token.indexOf('~') < 0 && token.indexOf('/') < 0) return token;
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isLabelValue(v: string): boolean {
  return v.length <= 63 && LABEL_VALUE.test(v);
}

// FNV-1a: a short, stable suffix that keeps truncated label values distinct.
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * A label value for any string: characters a label value may not hold become '-',
 * ends are trimmed to alphanumerics, and values over 63 characters keep their first 54
 * plus a hash of the whole ("system:serviceaccount:ml:runner" -> "system-serviceaccount-ml-runner").
 */
export function labelSafe(s: string): string {
  if (isLabelValue(s)) return s;
  let v = s
    .replace(/[^-A-Za-z0-9_.]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[^A-Za-z0-9]+$/, '');
  if (v.length > 63) v = v.slice(0, 54).replace(/[^A-Za-z0-9]+$/, '') + '-' + fnv1a(s);
  if (v === '') v = 'x' + fnv1a(s);
  return v;
}
