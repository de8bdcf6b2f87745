// The Kubernetes API calls sluice's code makes, read from the source at test time, as RBAC
// (apiGroup, resource, verb) triples. A call is one of:
// - a method of a @kubernetes/client-node API class (createNamespacedPodBinding, ...): its
//   HTTP method and path come from the library's generated code, not from a table here;
// - makeInformer(kc, '/api/v1/pods', ...): list and watch of that path;
// - a Watch on a path (.watch('/api/v1/...')): watch;
// - a call made without client-node (the keep-alive bind), declared where it is made by a
//   comment `// api-call: POST /api/v1/namespaces/{namespace}/pods/{name}/binding`.
// A method counts when its receiver is known as a client in that file: assigned from
// makeApiClient(X) or declared with the type X (a client-node API class).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';

export interface ApiCall {
  group: string;
  /** RBAC resource, with its subresource: pods, pods/binding. */
  resource: string;
  verb: string;
  /** Where the code makes it (repo-relative file), or the branch that announced it. */
  from: string;
  /** Method or path as written in the code. */
  via: string;
}

interface Endpoint {
  method: string;
  path: string;
}

const require = createRequire(import.meta.url);

/** method name -> endpoint, per client-node API class, from its generated request factory. */
export function clientNodeEndpoints(): Map<string, Map<string, Endpoint>> {
  const apisDir = join(dirname(require.resolve('@kubernetes/client-node')), 'gen', 'apis');
  const byClass = new Map<string, Map<string, Endpoint>>();
  for (const f of readdirSync(apisDir)) {
    if (!f.endsWith('Api.js')) continue;
    const src = readFileSync(join(apisDir, f), 'utf8');
    // The RequestFactory part: "async name(...) { ... localVarPath = '...' ... HttpMethod.X".
    const methods = new Map<string, Endpoint>();
    const re = /async (\w+)\([^)]*\) \{[\s\S]*?const localVarPath = '([^']+)'[\s\S]*?HttpMethod\.(\w+)/g;
    for (const m of src.matchAll(re)) if (!methods.has(m[1]!)) methods.set(m[1]!, { path: m[2]!, method: m[3]! });
    byClass.set(f.slice(0, -3), methods);
  }
  return byClass;
}

/** RBAC attributes of a request: POST /api/v1/namespaces/{namespace}/pods/{name}/binding -> pods/binding create. */
export function rbacOf(method: string, path: string): { group: string; resource: string; verb: string } | null {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  let rest: string[];
  let group: string;
  if (parts[0] === 'api') {
    group = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis') {
    group = parts[1]!;
    rest = parts.slice(3);
  } else return null; // non-resource URLs (/version, /healthz): granted to every user
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [resource, name, sub] = rest;
  if (!resource) return null;
  const named = name !== undefined;
  const verbs: Record<string, string> = {
    GET: named ? 'get' : 'list',
    POST: 'create',
    PUT: 'update',
    PATCH: 'patch',
    DELETE: named ? 'delete' : 'deletecollection',
  };
  const verb = verbs[method.toUpperCase()];
  if (!verb) return null;
  return { group, resource: sub ? `${resource}/${sub}` : resource, verb };
}

/** Folders of the running program (not test/, bench/ or tools). */
const SOURCE_DIRS = [
  'api',
  'bin',
  'certs',
  'cli',
  'cluster',
  'config',
  'console',
  'observability',
  'placement',
  'queue',
  'scheduler',
  'server',
  'store',
  'webhooks',
  'workloads',
];

function* sourceFiles(root: string): Generator<string> {
  for (const d of SOURCE_DIRS) {
    let entries: string[];
    try {
      entries = readdirSync(join(root, d), { recursive: true }) as string[];
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = join(root, d, e);
      if (p.endsWith('.ts') && !p.endsWith('.d.ts') && statSync(p).isFile()) yield p;
    }
  }
}

/** ${...} in a template literal path is a name or a namespace. */
const normalisePath = (p: string): string => p.replace(/\$\{[^}]*\}/g, '{x}');

export function apiCallsInCode(root: string): ApiCall[] {
  const endpoints = clientNodeEndpoints();
  const calls: ApiCall[] = [];
  for (const path of sourceFiles(root)) {
    const file = relative(root, path);
    const src = readFileSync(path, 'utf8');
    // Receivers that are API clients: `x = kc.makeApiClient(CoreV1Api)`, `x: CoreV1Api`.
    const clients = new Map<string, string>();
    for (const m of src.matchAll(/(\w+)\s*=\s*[^;\n]*?makeApiClient\((\w+)\)/g)) clients.set(m[1]!, m[2]!);
    for (const m of src.matchAll(/(\w+)\??\s*:\s*(\w+Api)\b/g)) if (endpoints.has(m[2]!)) clients.set(m[1]!, m[2]!);
    // `core.listNode(`, `this.core.readNamespacedPod(`; not `servers.api.listen(`.
    for (const m of src.matchAll(/(?<![\w.])(?:this\.)?(\w+)\??\.(\w+)\(/g)) {
      const cls = clients.get(m[1]!);
      const ep = cls ? endpoints.get(cls)?.get(m[2]!) : undefined;
      if (!cls || !ep) continue;
      const r = rbacOf(ep.method, ep.path);
      if (r) calls.push({ ...r, from: file, via: `${cls}.${m[2]}` });
    }
    for (const m of src.matchAll(/(?:makeInformer|listWatch)\s*(?:<[^>]*>)?\(\s*[\w.]+\s*,\s*['"`]([^'"`]+)['"`]/g)) {
      const r = rbacOf('GET', normalisePath(m[1]!));
      if (r) for (const verb of ['list', 'watch']) calls.push({ ...r, verb, from: file, via: `makeInformer ${m[1]}` });
    }
    for (const m of src.matchAll(/\/\/ api-call: (GET|POST|PUT|PATCH|DELETE) (\/\S+)/g)) {
      const r = rbacOf(m[1]!, m[2]!);
      if (r) calls.push({ ...r, from: file, via: `${m[1]} ${m[2]}` });
    }
    for (const m of src.matchAll(/\.watch\(\s*['"`](\/[^'"`]+)['"`]/g)) {
      const r = rbacOf('GET', normalisePath(m[1]!));
      if (r) calls.push({ ...r, verb: 'watch', from: file, via: `watch ${m[1]}` });
    }
  }
  return calls;
}
