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

function findForbidden(v: unknown, path: string): string | null {
  if (typeof v === 'string') return v.includes('\u0000') ? `${path} contains the character U+0000, which sluice cannot store; remove it` : null;
  if (typeof v !== 'object' || v === null) return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const bad = findForbidden(v[i], `${path}/${i}`);
      if (bad) return bad;
    }
    return null;
  }
  for (const [k, child] of Object.entries(v)) {
    if (FORBIDDEN_KEYS.has(k)) return `${path} has the key "${k}", which is not allowed (it could change object prototypes); remove it`;
    if (k.includes('\u0000')) return `${path} has a key containing the character U+0000; remove it`;
    const bad = findForbidden(child, `${path}/${k}`);
    if (bad) return bad;
  }
  return null;
}
