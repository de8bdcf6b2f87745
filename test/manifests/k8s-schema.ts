// Validation of rendered objects against the Kubernetes API schemas, two ways:
// 1. kubernetes-models 4.4 (the OpenAPI of Kubernetes 1.27, the newest package line before
//    1.29; nothing sluice's manifests use changed in 1.28): types, required fields, enums.
//    Its validators let unknown fields pass, so
// 2. every field name must exist in @kubernetes/client-node's model of that type (a typo
//    like `readinesProbe` or a field in the wrong place is an error).
// Prometheus-operator objects (ServiceMonitor, PrometheusRule) by
// @kubernetes-models/prometheus-operator.
import * as k8s from '@kubernetes/client-node';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

type Model = new (data: unknown) => { validate(): void };

function modelOf(apiVersion: string, kind: string): Model | null {
  const module = apiVersion.startsWith('monitoring.coreos.com/')
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;
  try {
    return (require(module) as Record<string, Model>)[kind] ?? null;
  } catch {
    return null;
  }
}

type AttributeMap = Array<{ baseName: string; type: string }>;
const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>;

/** Field names unknown to client-node's model of `type`, as JSON paths. */
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, arr[1]!, `${path}/${i}`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${path}/${k}`, out);
    return;
  }
  const attrs = models[type]?.getAttributeTypeMap?.();
  if (!attrs || typeof value !== 'object' || Array.isArray(value)) return; // scalars, IntOrString, quantities
  for (const [k, v] of Object.entries(value)) {
    const a = attrs.find((x) => x.baseName === k);
    if (!a) out.push(`${path}/${k}`);
    else unknownFields(v, a.type, `${path}/${k}`, out);
  }
}

/**
 * kustomize wraps long base64 values of Secret data over lines; kube-apiserver's decoder
 * (Go's encoding/base64) skips newlines, the schema's "byte" format does not.
 */
function withoutBase64Newlines(obj: K8sObject): K8sObject {
  if (obj.kind !== 'Secret' || !obj.data) return obj;
  const data = Object.fromEntries(Object.entries(obj.data as Record<string, string>).map(([k, v]) => [k, v.replace(/[\r\n]/g, '')]));
  return { ...obj, data };
}

/** Problems of one object; [] when it is valid. */
export function validateObject(obj: K8sObject): string[] {
  const where = `${obj.kind} ${obj.metadata?.namespace ? obj.metadata.namespace + '/' : ''}${obj.metadata?.name}`;
  const model = modelOf(obj.apiVersion, obj.kind);
  if (!model) return [`${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
  const problems: string[] = [];
  try {
    new model(withoutBase64Newlines(obj)).validate();
  } catch (e) {
    problems.push(`${where}: ${(e as Error).message}`);
  }
  const version = obj.apiVersion.split('/').pop()!;
  const type = `${version[0]!.toUpperCase()}${version.slice(1)}${obj.kind}`;
  if (models[type]?.getAttributeTypeMap) {
    const unknown: string[] = [];
    unknownFields(obj, type, '', unknown);
    for (const u of unknown) problems.push(`${where}: unknown field ${u}`);
  } else if (!obj.apiVersion.startsWith('monitoring.coreos.com/')) {
    problems.push(`${where}: no client-node model ${type} to check field names against`);
  }
  return problems;
}
