// The admin API's JSON body parser: JSON.parse plus the checks fastify's default parser
// would only report as "not valid JSON" (issue 12): a key that could change object
// prototypes, and a U+0000 that Postgres text cannot store. Each refusal names the key.

export class BodyError extends Error {
  readonly statusCode = 400;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Parses a request body, or throws BodyError saying what is wrong and where. */
export function parseAdminBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new BodyError(`the body is not valid JSON (${(e as Error).message}); send a JSON object`);
  }
  const bad = findForbidden(value, 'body');
  if (bad) throw new BodyError(bad);
  return value;
}

interface Spot {
  v: unknown;
  key: string;
  parent: Spot | null;
}

const pathOf = (s: Spot): string => {
  const keys: string[] = [];
  for (let at: Spot | null = s; at; at = at.parent) keys.push(at.key);
  return keys.reverse().join('/');
};

/**
 * The first forbidden key or U+0000, depth first in document order. Iterative: JSON.parse
 * takes bodies nested far deeper than the call stack goes (10,000 levels overflowed it).
 */
function findForbidden(root: unknown, rootName: string): string | null {
  const stack: Spot[] = [{ v: root, key: rootName, parent: null }];
  while (stack.length > 0) {
    const at = stack.pop()!;
    const v = at.v;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return `${pathOf(at)} contains the character U+0000, which sluice cannot store; remove it`;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    const isArray = Array.isArray(v);
    const entries: Array<[string, unknown]> = isArray ? v.map((c, i) => [String(i), c]) : Object.entries(v);
    for (const [k] of isArray ? [] : entries) {
      if (FORBIDDEN_KEYS.has(k)) return `${pathOf(at)} has the key "${k}", which is not allowed (it could change object prototypes); remove it`;
      if (k.includes('\u0000')) return `${pathOf(at)} has a key containing the character U+0000; remove it`;
    }
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ v: entries[i]![1], key: entries[i]![0], parent: at });
  }
  return null;
}
