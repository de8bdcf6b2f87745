// Does a node's label set satisfy a pod's spec.nodeSelector and required node affinity?
// The same rules kube-scheduler's NodeAffinity filter applies to labels: every
// nodeSelector entry must match; of the required terms at least one must match, and a
// term matches when all its matchExpressions do (matchFields on metadata.name too).

export interface SelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface SelectorTerm {
  matchExpressions?: SelectorRequirement[];
  matchFields?: SelectorRequirement[];
}

export function nodeMatches(
  nodeName: string,
  labels: Readonly<Record<string, string>>,
  nodeSelector: Readonly<Record<string, string>>,
  terms: readonly SelectorTerm[] | null,
): boolean {
  for (const k in nodeSelector) if (labels[k] !== nodeSelector[k]) return false;
  if (!terms || terms.length === 0) return true;
  return terms.some((t) => termMatches(nodeName, labels, t));
}

function termMatches(nodeName: string, labels: Readonly<Record<string, string>>, t: SelectorTerm): boolean {
  const exprs = t.matchExpressions ?? [];
  const fields = t.matchFields ?? [];
  // An empty term matches no node (kube-scheduler's rule).
  if (exprs.length === 0 && fields.length === 0) return false;
  for (const r of exprs) if (!requirementHolds(labels[r.key], r)) return false;
  for (const r of fields) if (r.key !== 'metadata.name' || !requirementHolds(nodeName, r)) return false;
  return true;
}

function requirementHolds(value: string | undefined, r: SelectorRequirement): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1) return false;
      const a = Number.parseInt(value, 10);
      const b = Number.parseInt(values[0]!, 10);
      if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}
