// An in-memory stand-in kube-apiserver for tests and benchmarks: plain HTTP on 127.0.0.1, speaking the
// real wire format well enough that @kubernetes/client-node 1.4 (makeInformer/ListWatch,
// CoreV1Api, CoordinationV1Api, EventsV1Api) works against it unchanged.
//
// Sending each PATCH type with client-node 1.4 (the generated client always picks
// application/json-patch+json; a header middleware overrides it per call):
//   import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
//   // RFC 6902 JSON patch (the default, no options needed; the body is the op array):
//   await core.patchNamespacedPod({ name, namespace, body: [
//     { op: 'test', path: '/spec/schedulingGates/0/name', value: 'sluice.io/queue' },
//     { op: 'remove', path: '/spec/schedulingGates/0' } ] });
//   // RFC 7386 merge patch / strategic merge patch:
//   await core.patchNamespacedPod({ name, namespace, body: { metadata: { labels: { a: 'b' } } } },
//     setHeaderOptions('Content-Type', PatchStrategy.MergePatch));        // or .StrategicMergePatch
//
// Faithful to kube-apiserver 1.28: Status bodies and codes (404 NotFound, 409 AlreadyExists /
// Conflict, 422 Invalid, 410 Expired), a global resourceVersion, optimistic concurrency on
// PUT/PATCH, list pagination with consistent snapshots, label/field selectors (field
// selectors only on the fields the real apiserver indexes, else 400), watch replay from
// resourceVersion with ADDED/DELETED when an object moves in/out of a selector, pod update
// rules (spec immutable except images/tolerations/activeDeadlineSeconds; schedulingGates may
// only be removed), pods/binding, status subresources, core <-> events.k8s.io event
// conversion (stored in core v1 form, like the real storage version).
// Deliberate simplifications: no grace period or finalizers (DELETE removes at once, also
// namespaces without cascading), strategic merge patch is applied as a JSON merge patch
// (lists replaced, not merged by key), no server-side apply (415), no admission/defaulting
// beyond a pod's initial status. Binding a still-gated pod answers 422 (kube-apiserver 1.28
// itself answers 500 with "pod x has non-empty .spec.schedulingGates").
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID, randomInt } from 'node:crypto';
import { KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';

export type Resource = 'pods' | 'nodes' | 'namespaces' | 'leases' | 'events' | 'priorityclasses';

/** Anything with Kubernetes object metadata (V1Pod, V1Lease, ... or a plain literal). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  contentType?: string;
  /** Username mapped from the bearer token (StandInOptions.users). */
  user?: string;
  at: number;
}

/** What an onRequest hook answers instead of the stand-in: a status and body, or a reset
 * connection (a network failure). A hook may also return a Promise that settles late (a
 * slow apiserver) or never (a hung one; close() still ends it). */
export type InjectedResponse = { status: number; body?: unknown } | { destroySocket: true };
export type RequestHook = (req: RecordedRequest) => InjectedResponse | undefined | Promise<InjectedResponse | undefined>;

export interface StandInOptions {
  /** Delay before answering a LIST of that resource (a slow initial list). */
  listDelayMs?: (resource: Resource) => number;
  /** Bearer token -> username. When given, a request with an unknown token gets 401. */
  users?: Record<string, string>;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };
interface Obj extends JsonObject {
  metadata: JsonObject;
}

interface Kind {
  group: string;
  kind: string;
  namespaced: boolean;
  statusSub: boolean;
  fields: string[];
}
const META_FIELDS = ['metadata.name', 'metadata.namespace'];
const KINDS: Record<Resource, Kind> = {
  pods: {
    group: '',
    kind: 'Pod',
    namespaced: true,
    statusSub: true,
    fields: [
      ...META_FIELDS,
      'spec.nodeName',
      'spec.restartPolicy',
      'spec.schedulerName',
      'spec.serviceAccountName',
      'spec.hostNetwork',
      'status.phase',
      'status.podIP',
      'status.nominatedNodeName',
    ],
  },
  nodes: { group: '', kind: 'Node', namespaced: false, statusSub: true, fields: [...META_FIELDS, 'spec.unschedulable'] },
  namespaces: { group: '', kind: 'Namespace', namespaced: false, statusSub: true, fields: [...META_FIELDS, 'status.phase'] },
  events: {
    group: '',
    kind: 'Event',
    namespaced: true,
    statusSub: false,
    fields: [
      ...META_FIELDS,
      ...['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map((f) => `involvedObject.${f}`),
      'reason',
      'reportingComponent',
      'source',
      'type',
    ],
  },
  leases: { group: 'coordination.k8s.io', kind: 'Lease', namespaced: true, statusSub: false, fields: META_FIELDS },
  priorityclasses: { group: 'scheduling.k8s.io', kind: 'PriorityClass', namespaced: false, statusSub: false, fields: META_FIELDS },
};
const BOOLEAN_FIELDS = new Set(['spec.hostNetwork', 'spec.unschedulable']);
/** URL group/resource -> stored resource ('events' is served by two groups). */
const ROUTES: Record<string, Resource> = {
  '/pods': 'pods',
  '/nodes': 'nodes',
  '/namespaces': 'namespaces',
  '/events': 'events',
  'events.k8s.io/events': 'events',
  'coordination.k8s.io/leases': 'leases',
  'scheduling.k8s.io/priorityclasses': 'priorityclasses',
};

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonObject,
  ) {
    super(message);
  }
  status(): JsonObject {
    const s: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = this.details;
    return s;
  }
}

const clone = <T>(v: T): T => structuredClone(v);
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    isObject(x)
      ? Object.fromEntries(
          Object.keys(x)
            .sort()
            .map((k) => [k, x[k]]),
        )
      : x,
  );
const str = (v: Json | undefined): string => (typeof v === 'string' ? v : '');
const qualified = (r: Resource) => (KINDS[r].group ? `${r}.${KINDS[r].group}` : r);
const notFound = (r: Resource, name: string) =>
  new HttpError(404, 'NotFound', `${qualified(r)} "${name}" not found`, { name, kind: r, ...(KINDS[r].group ? { group: KINDS[r].group } : {}) });
const conflict = (r: Resource, name: string, why: string) =>
  new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, { name, kind: r });
const invalid = (r: Resource, name: string, field: string, msg: string) =>
  new HttpError(422, 'Invalid', `${KINDS[r].kind} "${name}" is invalid: ${field}: ${msg}`, {
    name,
    kind: KINDS[r].kind,
    causes: [{ reason: 'FieldValueInvalid', message: msg, field }],
  });
const badRequest = (msg: string) => new HttpError(400, 'BadRequest', msg);
const STALE = 'the object has been modified; please apply your changes to the latest version and try again';

// ---- selectors ----
type Matcher = (o: Obj) => boolean;

function labelMatcher(sel: string | undefined): Matcher {
  if (!sel) return () => true;
  const terms = sel
    .split(/,(?![^(]*\))/)
    .map((s) => s.trim())
    .filter(Boolean);
  const tests = terms.map((term): ((l: JsonObject) => boolean) => {
    let m = /^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const [, key = '', op, list = ''] = m;
      const values = list.split(',').map((s) => s.trim());
      return op === 'in' ? (l) => key in l && values.includes(str(l[key])) : (l) => !(key in l) || !values.includes(str(l[key]));
    }
    if ((m = /^!\s*([^\s!=()]+)$/.exec(term))) {
      const key = m[1] ?? '';
      return (l) => !(key in l);
    }
    if ((m = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$/.exec(term))) {
      const [, key = '', op, v = ''] = m;
      return op === '!=' ? (l) => str(l[key]) !== v || !(key in l) : (l) => key in l && str(l[key]) === v;
    }
    if ((m = /^([^\s!=()]+)$/.exec(term))) {
      const key = m[1] ?? '';
      return (l) => key in l;
    }
    throw badRequest(`unable to parse requirement: invalid label selector term "${term}"`);
  });
  return (o) => {
    const l = isObject(o.metadata.labels) ? o.metadata.labels : {};
    return tests.every((t) => t(l));
  };
}

export function fieldValue(o: JsonObject, path: string): string {
  let v: Json | undefined = o;
  for (const seg of path.split('.')) v = isObject(v) ? v[seg] : undefined;
  if (v === undefined || v === null) return BOOLEAN_FIELDS.has(path) ? 'false' : '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function fieldMatcher(resource: Resource, sel: string | undefined, eventsV1: boolean): Matcher {
  if (!sel) return () => true;
  const tests = sel
    .split(',')
    .filter(Boolean)
    .map((term): Matcher => {
      const m = /^([^!=]+)(==|=|!=)(.*)$/.exec(term.trim());
      if (!m) throw badRequest(`invalid field selector term "${term}"`);
      const [, rawField = '', op, value = ''] = m;
      // events.k8s.io names the indexed core fields differently.
      const field = eventsV1 ? rawField.replace(/^regarding\./, 'involvedObject.').replace(/^reportingController$/, 'reportingComponent') : rawField;
      if (!KINDS[resource].fields.includes(field)) throw badRequest(`field label not supported: ${rawField}`);
      return op === '!=' ? (o) => fieldValue(o, field) !== value : (o) => fieldValue(o, field) === value;
    });
  return (o) => tests.every((t) => t(o));
}

// ---- patches ----
class PatchError extends Error {}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function resolveParent(doc: Json, segs: string[], path: string): { parent: Json[] | JsonObject; key: string } {
  let cur: Json = doc;
  for (const seg of segs.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(seg)] : isObject(cur) ? cur[seg] : undefined;
    if (next === undefined || (!Array.isArray(next) && !isObject(next))) throw new PatchError(`path ${path} does not exist: missing value`);
    cur = next;
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw new PatchError(`path ${path} does not exist`);
  return { parent: cur, key: segs[segs.length - 1] ?? '' };
}

function arrayIndex(arr: Json[], key: string, path: string, forAdd: boolean): number {
  if (forAdd && key === '-') return arr.length;
  const i = /^(0|[1-9][0-9]*)$/.test(key) ? Number(key) : NaN;
  if (!(i >= 0 && i < arr.length + (forAdd ? 1 : 0))) throw new PatchError(`unable to access invalid index ${key} of ${path}: index out of bounds`);
  return i;
}

function getAt(doc: Json, path: string): Json {
  const segs = pointer(path);
  if (segs.length === 0) return doc;
  const { parent, key } = resolveParent(doc, segs, path);
  const v = Array.isArray(parent) ? parent[arrayIndex(parent, key, path, false)] : parent[key];
  if (v === undefined) throw new PatchError(`path ${path} does not exist: missing value`);
  return v;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, key } = resolveParent(doc, pointer(path), path);
  const old = getAt(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, path, false), 1);
  else delete parent[key];
  return old;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const segs = pointer(path);
  if (segs.length === 0) return value;
  const { parent, key } = resolveParent(doc, segs, path);
  if (replace) getAt(doc, path); // must exist
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, path, !replace), replace ? 1 : 0, value);
  else parent[key] = value;
  return doc;
}

/** RFC 6902. Errors are PatchErrors, answered 422 like kube-apiserver does. */
export function applyJsonPatch(doc: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let out = clone(doc);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.path !== 'string') throw new PatchError(`invalid patch operation ${JSON.stringify(raw)}`);
    const { op, path } = raw;
    const from = typeof raw.from === 'string' ? raw.from : undefined;
    const value = raw.value as Json;
    switch (op) {
      case 'add':
        out = addAt(out, path, clone(value), false);
        break;
      case 'replace':
        out = addAt(out, path, clone(value), true);
        break;
      case 'remove':
        removeAt(out, path);
        break;
      case 'test':
        if (canonical(getAt(out, path)) !== canonical(value)) throw new PatchError(`testing value ${path} failed: test failed`);
        break;
      case 'move':
        if (from === undefined) throw new PatchError('move needs from');
        out = addAt(out, path, removeAt(out, from), false);
        break;
      case 'copy':
        if (from === undefined) throw new PatchError('copy needs from');
        out = addAt(out, path, clone(getAt(out, from)), false);
        break;
      default:
        throw new PatchError(`unexpected patch operation "${String(op)}"`);
    }
  }
  return out;
}

/** RFC 7386. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

// ---- events: stored as core v1, served also as events.k8s.io/v1 ----
const EVENT_FIELD_MAP: Array<[core: string, v1: string]> = [
  ['involvedObject', 'regarding'],
  ['message', 'note'],
  ['reportingComponent', 'reportingController'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
];
function convertEvent(e: Obj, toV1: boolean): Obj {
  const out: Obj = { ...e, metadata: e.metadata };
  for (const [core, v1] of EVENT_FIELD_MAP) {
    const [src, dst] = toV1 ? [core, v1] : [v1, core];
    delete out[src];
    if (e[src] !== undefined) out[dst] = e[src];
  }
  return out;
}
function validateEventsV1(e: Obj, name: string): void {
  for (const f of ['eventTime', 'reportingController', 'reportingInstance', 'action', 'reason']) {
    if (!e[f]) throw invalid('events', name, f, 'Required value');
  }
  if (e.type !== 'Normal' && e.type !== 'Warning') throw invalid('events', name, 'type', 'Unsupported value: must be Normal or Warning');
}

// ---- pods ----
const POD_MUTABLE_MSG =
  'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';
const gateNames = (p: Obj): string[] => {
  const spec = isObject(p.spec) ? p.spec : {};
  return Array.isArray(spec.schedulingGates) ? spec.schedulingGates.map((g) => (isObject(g) ? str(g.name) : '')) : [];
};
/** The immutable part of a pod spec, as ValidatePodUpdate compares it. */
function frozenPodSpec(p: Obj, gated: boolean): string {
  const spec: JsonObject = isObject(p.spec) ? clone(p.spec) : {};
  for (const f of ['tolerations', 'activeDeadlineSeconds', 'schedulingGates', 'terminationGracePeriodSeconds', ...(gated ? ['nodeSelector', 'affinity'] : [])])
    delete spec[f];
  for (const list of ['containers', 'initContainers']) {
    const cs = spec[list];
    if (Array.isArray(cs)) for (const c of cs) if (isObject(c)) delete c.image;
  }
  return canonical(spec);
}
function validatePodUpdate(old: Obj, next: Obj, name: string): void {
  const before = new Set(gateNames(old));
  const added = gateNames(next).find((g) => !before.has(g));
  if (added !== undefined) throw invalid('pods', name, 'spec.schedulingGates', `Forbidden: only deletion is allowed, but found new scheduling gate '${added}'`);
  if (frozenPodSpec(old, before.size > 0) !== frozenPodSpec(next, before.size > 0)) throw invalid('pods', name, 'spec', POD_MUTABLE_MSG);
}

// ---- the server ----
interface HistoryEntry {
  rv: number;
  resource: Resource;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  prev?: Obj;
  next: Obj;
}
interface Watcher {
  resource: Resource;
  namespace?: string;
  match: Matcher;
  eventsV1: boolean;
  bookmarks: boolean;
  res: ServerResponse;
  timer?: NodeJS.Timeout;
}
interface Route {
  resource: Resource;
  namespace?: string;
  name?: string;
  sub?: string;
  eventsV1: boolean;
}

export class StandInApiserver {
  readonly requests: RecordedRequest[] = [];
  private readonly store = new Map<Resource, Map<string, Obj>>();
  private history: HistoryEntry[] = [];
  private compactedRv = 0;
  private rv = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly hooks: RequestHook[] = [];
  private readonly snapshots = new Map<string, { rv: number; items: Obj[] }>();

  /** TCP connections accepted so far (a client that reuses connections opens few). */
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly opts: StandInOptions,
  ) {
    server.on('connection', () => this.connections++);
  }

  static async start(opts: StandInOptions = {}): Promise<StandInApiserver> {
    let self: StandInApiserver | undefined;
    const server = createServer((req, res) => void self?.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new StandInApiserver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, opts);
    return self;
  }

  /** A kubeconfig for this stand-in; with a token, requests carry it as a bearer token. */
  kubeConfig(token?: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'standin', server: this.url, skipTLSVerify: true }],
      users: [token === undefined ? { name: 'u' } : { name: 'u', token }],
      contexts: [{ name: 'standin', cluster: 'standin', user: 'u' }],
      currentContext: 'standin',
    });
    return kc;
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  // -- direct manipulation (what kubelets, controllers or kubectl would do) --

  create<T extends KubeObject>(resource: Resource, obj: T): T {
    return this.render(resource, this.doCreate(resource, clone(obj) as unknown as Obj, undefined, false)) as unknown as T;
  }

  /** Replaces the whole object (status included). With metadata.resourceVersion set, a
   * stale one throws a Conflict like a PUT would; without, it is unconditional. */
  update<T extends KubeObject>(resource: Resource, obj: T): T {
    const o = clone(obj) as unknown as Obj;
    return this.render(resource, this.doUpdate(resource, str(o.metadata?.namespace) || undefined, str(o.metadata?.name), o, { raw: true })) as unknown as T;
  }

  delete(resource: Resource, namespace: string | undefined, name: string): void {
    this.doDelete(resource, namespace, name, undefined);
  }

  get<T extends KubeObject = KubeObject>(resource: Resource, namespace: string | undefined, name: string): T | undefined {
    const o = this.bucket(resource).get(this.key(resource, namespace, name));
    return o ? (this.render(resource, o) as unknown as T) : undefined;
  }

  list<T extends KubeObject = KubeObject>(resource: Resource, namespace?: string): T[] {
    return this.sorted(resource, namespace).map((o) => this.render(resource, o) as unknown as T);
  }

  // -- observation and faults --

  /** Hooks run in order on every request (after it is recorded); the first answer wins.
   * Returns a function that removes the hook. */
  onRequest(fn: RequestHook): () => void {
    this.hooks.push(fn);
    return () => {
      const i = this.hooks.indexOf(fn);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** Ends every open watch (like a watch timeout or an apiserver restart). With gone, each
   * watch first gets an ERROR 410 Expired event, so an informer must relist. */
  expireWatches(opts: { gone?: boolean } = {}): void {
    for (const w of [...this.watchers]) {
      if (opts.gone) this.send(w, { type: 'ERROR', object: this.expired(`too old resource version: ${this.rv}`) });
      this.endWatch(w);
    }
  }

  /** Forgets the event history (like etcd compaction): watches from an older
   * resourceVersion get 410 Expired and must relist. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
    this.snapshots.clear();
  }

  /** Sends a BOOKMARK at the current resourceVersion to watches that allowed bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watchers) if (w.bookmarks) this.sendBookmark(w);
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  async close(): Promise<void> {
    for (const w of [...this.watchers]) this.endWatch(w);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  // -- storage core --

  private bucket(r: Resource): Map<string, Obj> {
    let b = this.store.get(r);
    if (!b) this.store.set(r, (b = new Map()));
    return b;
  }
  private key(r: Resource, ns: string | undefined, name: string): string {
    return KINDS[r].namespaced ? `${ns ?? ''}/${name}` : name;
  }
  private sorted(r: Resource, ns?: string): Obj[] {
    return [...this.bucket(r).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o)
      .filter((o) => ns === undefined || o.metadata.namespace === ns);
  }
  private render(r: Resource, o: Obj, eventsV1 = false): Obj {
    const k = KINDS[r];
    const out = clone(eventsV1 ? convertEvent(o, true) : o);
    return { kind: k.kind, apiVersion: eventsV1 ? 'events.k8s.io/v1' : k.group ? `${k.group}/v1` : 'v1', ...out };
  }

  private commit(resource: Resource, type: HistoryEntry['type'], prev: Obj | undefined, next: Obj): Obj {
    this.rv++;
    next.metadata.resourceVersion = String(this.rv);
    const key = this.key(resource, str(next.metadata.namespace) || undefined, str(next.metadata.name));
    if (type === 'DELETED') this.bucket(resource).delete(key);
    else this.bucket(resource).set(key, next);
    const entry: HistoryEntry = { rv: this.rv, resource, type, next: clone(next), ...(prev ? { prev } : {}) };
    this.history.push(entry);
    for (const w of this.watchers) this.deliver(w, entry);
    return next;
  }

  private doCreate(resource: Resource, o: Obj, pathNs: string | undefined, viaApi: boolean): Obj {
    const k = KINDS[resource];
    if (!isObject(o)) throw badRequest('the request body must be a JSON object');
    o.metadata = isObject(o.metadata) ? o.metadata : {};
    const meta = o.metadata;
    if (k.namespaced) {
      if (pathNs !== undefined && meta.namespace && meta.namespace !== pathNs)
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = pathNs ?? (str(meta.namespace) || 'default');
    } else delete meta.namespace;
    if (!meta.name && meta.generateName)
      meta.name = str(meta.generateName) + Array.from({ length: 5 }, () => 'bcdfghjklmnpqrstvwxz2456789'[randomInt(27)]).join('');
    const name = str(meta.name);
    if (!name) throw invalid(resource, '', 'metadata.name', 'Required value: name or generateName is required');
    if (this.bucket(resource).has(this.key(resource, str(meta.namespace), name)))
      throw new HttpError(409, 'AlreadyExists', `${qualified(resource)} "${name}" already exists`, { name, kind: resource });
    if (viaApi && resource === 'pods') this.preparePodCreate(o, name);
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    delete o.apiVersion;
    delete o.kind;
    return this.commit(resource, 'ADDED', undefined, o);
  }

  private preparePodCreate(o: Obj, name: string): void {
    const spec = isObject(o.spec) ? o.spec : {};
    if (!Array.isArray(spec.containers) || spec.containers.length === 0) throw invalid('pods', name, 'spec.containers', 'Required value');
    const gated = gateNames(o).length > 0;
    o.status = {
      phase: 'Pending',
      ...(gated
        ? {
            conditions: [
              {
                type: 'PodScheduled',
                status: 'False',
                reason: 'SchedulingGated',
                message: 'Scheduling is blocked due to non-empty scheduling gates',
                lastProbeTime: null,
                lastTransitionTime: null,
              },
            ],
          }
        : {}),
    };
  }

  /** raw: a direct update (whole object); otherwise an API update of the main resource
   * (status kept, pod rules enforced) or of the status subresource (only status taken). */
  private doUpdate(resource: Resource, ns: string | undefined, name: string, candidate: Obj, how: { raw?: boolean; sub?: string }): Obj {
    if (!isObject(candidate)) throw badRequest('the request body must be a JSON object');
    const old = this.bucket(resource).get(this.key(resource, ns, name));
    if (!old) throw notFound(resource, name);
    const meta = isObject(candidate.metadata) ? candidate.metadata : {};
    if (meta.name !== undefined && meta.name !== name)
      throw badRequest(`the name of the object (${str(meta.name)}) does not match the name on the URL (${name})`);
    if (meta.resourceVersion && meta.resourceVersion !== old.metadata.resourceVersion) throw conflict(resource, name, STALE);
    let next: Obj;
    if (how.sub === 'status') next = { ...clone(old), status: clone(candidate.status ?? null) };
    else {
      next = { ...clone(candidate), metadata: { ...clone(meta) } };
      if (!how.raw && KINDS[resource].statusSub) next.status = clone(old.status ?? null);
    }
    if (next.status === null) delete next.status;
    delete next.apiVersion;
    delete next.kind;
    for (const f of ['name', 'namespace', 'uid', 'creationTimestamp']) {
      if (old.metadata[f] !== undefined) next.metadata[f] = old.metadata[f] as Json;
      else delete next.metadata[f];
    }
    if (!how.raw && !how.sub && resource === 'pods') validatePodUpdate(old, next, name);
    next.metadata.resourceVersion = old.metadata.resourceVersion ?? null;
    if (canonical(next) === canonical(old)) return old; // a no-op update writes nothing
    return this.commit(resource, 'MODIFIED', clone(old), next);
  }

  private doDelete(resource: Resource, ns: string | undefined, name: string, options: unknown): Obj {
    const old = this.bucket(resource).get(this.key(resource, ns, name));
    if (!old) throw notFound(resource, name);
    const pre = isObject(options) && isObject(options.preconditions) ? options.preconditions : {};
    if (pre.uid && pre.uid !== old.metadata.uid)
      throw conflict(resource, name, `Precondition failed: UID in precondition: ${str(pre.uid)}, UID in object meta: ${str(old.metadata.uid)}`);
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(
        resource,
        name,
        `Precondition failed: ResourceVersion in precondition: ${str(pre.resourceVersion)}, ResourceVersion in object meta: ${str(old.metadata.resourceVersion)}`,
      );
    return this.commit(resource, 'DELETED', clone(old), clone(old));
  }

  private bind(ns: string, name: string, body: unknown): void {
    const pod = this.bucket('pods').get(this.key('pods', ns, name));
    if (!isObject(body) || !isObject(body.target)) throw badRequest('a Binding needs a target');
    const meta = isObject(body.metadata) ? body.metadata : {};
    if (meta.name !== undefined && meta.name !== name) throw badRequest('name in URL does not match name in Binding object');
    if (!pod) throw notFound('pods', name);
    const node = str(body.target.name);
    if (!node) throw invalid('pods', name, 'target.name', 'Required value');
    if (meta.uid && meta.uid !== pod.metadata.uid)
      throw conflict('pods', name, `Precondition failed: UID in precondition: ${str(meta.uid)}, UID in object meta: ${str(pod.metadata.uid)}`);
    const spec = isObject(pod.spec) ? pod.spec : {};
    if (spec.nodeName) throw conflict('pods', name, `pod ${name} is already assigned to node "${str(spec.nodeName)}"`);
    if (gateNames(pod).length > 0) throw invalid('pods', name, 'spec.schedulingGates', `pod ${name} has non-empty .spec.schedulingGates`);
    const next = clone(pod);
    next.spec = { ...spec, nodeName: node };
    if (isObject(meta.annotations))
      next.metadata.annotations = { ...(isObject(next.metadata.annotations) ? next.metadata.annotations : {}), ...meta.annotations };
    const status = isObject(next.status) ? next.status : {};
    const conds = (Array.isArray(status.conditions) ? status.conditions : []).filter((c) => !(isObject(c) && c.type === 'PodScheduled'));
    next.status = {
      ...status,
      conditions: [
        ...conds,
        { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      ],
    };
    this.commit('pods', 'MODIFIED', clone(pod), next);
  }

  // -- HTTP --

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), at: Date.now() };
    const contentType = req.headers['content-type']?.split(';')[0]?.trim();
    if (contentType) record.contentType = contentType;
    let body: unknown;
    try {
      if (raw) record.body = body = JSON.parse(raw);
    } catch {
      record.body = raw;
    }
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (token && this.opts.users?.[token]) record.user = this.opts.users[token];
    this.requests.push(record);
    try {
      for (const hook of [...this.hooks]) {
        const answer = await hook(record);
        if (!answer) continue;
        if ('destroySocket' in answer) {
          req.socket.destroy();
          return;
        }
        return this.reply(res, answer.status, answer.body ?? {});
      }
      if (this.opts.users && !record.user) throw new HttpError(401, 'Unauthorized', 'Unauthorized');
      if (raw && body === undefined) throw badRequest('the request body is not valid JSON');
      await this.serve(req, res, url, record, body);
    } catch (err) {
      if (err instanceof HttpError) return this.reply(res, err.code, err.status());
      const msg = err instanceof Error ? err.message : String(err);
      this.reply(res, 500, new HttpError(500, 'InternalError', `stand-in apiserver: ${msg}`).status());
    }
  }

  private reply(res: ServerResponse, code: number, body: unknown): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private route(pathname: string): Route {
    const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
    let group: string;
    let rest: string[];
    if (parts[0] === 'api' && parts[1] === 'v1') {
      group = '';
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts[2] === 'v1' && parts[1]) {
      group = parts[1];
      rest = parts.slice(3);
    } else throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    const lookup = (r: string | undefined) => (r === undefined ? undefined : ROUTES[`${group}/${r}`]);
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && lookup(rest[2]) && KINDS[lookup(rest[2]) as Resource].namespaced) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const resource = lookup(rest[0]);
    if (!resource || rest.length > 3 || (ns === undefined && rest.length > 1 && KINDS[resource].namespaced))
      throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    return {
      resource,
      eventsV1: group === 'events.k8s.io',
      ...(ns !== undefined ? { namespace: ns } : {}),
      ...(rest[1] ? { name: rest[1] } : {}),
      ...(rest[2] ? { sub: rest[2] } : {}),
    };
  }

  private async serve(req: IncomingMessage, res: ServerResponse, url: URL, record: RecordedRequest, body: unknown): Promise<void> {
    const r = this.route(url.pathname);
    const q = record.query;
    const method = record.method;
    const out = (code: number, o: Obj) => this.reply(res, code, this.render(r.resource, o, r.eventsV1));
    const allowedSub = r.sub === undefined || (r.sub === 'status' && KINDS[r.resource].statusSub) || (r.sub === 'binding' && r.resource === 'pods');
    if (!allowedSub) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    const notAllowed = () => new HttpError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    const incoming = (): Obj => {
      if (!isObject(body)) throw badRequest('the request body must be a JSON object');
      return (r.eventsV1 ? convertEvent(body as Obj, false) : body) as Obj;
    };

    if (r.name === undefined) {
      if (method === 'GET') {
        const match = (
          (l, f) => (o: Obj) =>
            l(o) && f(o)
        )(labelMatcher(q.labelSelector), fieldMatcher(r.resource, q.fieldSelector, r.eventsV1));
        if (q.watch === 'true' || q.watch === '1') return this.watch(req, res, r, match, q);
        return this.listResponse(res, r, match, q);
      }
      if (method !== 'POST') throw notAllowed();
      const o = incoming();
      if (r.eventsV1) validateEventsV1(convertEvent(o, true), str(isObject(o.metadata) ? o.metadata.name : undefined));
      return out(201, this.doCreate(r.resource, clone(o), r.namespace, true));
    }
    const name = r.name;
    if (r.sub === 'binding') {
      if (method !== 'POST') throw notAllowed();
      this.bind(r.namespace ?? '', name, body);
      return this.reply(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
    }
    const current = () => {
      const o = this.bucket(r.resource).get(this.key(r.resource, r.namespace, name));
      if (!o) throw notFound(r.resource, name);
      return o;
    };
    switch (method) {
      case 'GET':
        return out(200, current());
      case 'PUT':
        return out(200, this.doUpdate(r.resource, r.namespace, name, incoming(), r.sub ? { sub: r.sub } : {}));
      case 'DELETE':
        if (r.sub) throw notAllowed();
        return out(200, this.doDelete(r.resource, r.namespace, name, body));
      case 'PATCH': {
        const base = this.render(r.resource, current(), r.eventsV1) as Json;
        let patched: Json;
        try {
          if (record.contentType === 'application/json-patch+json') {
            if (!Array.isArray(body)) throw badRequest('a JSON patch must be an array of operations');
            patched = applyJsonPatch(base, body);
          } else if (record.contentType === 'application/merge-patch+json' || record.contentType === 'application/strategic-merge-patch+json') {
            if (!isObject(body)) throw badRequest('a merge patch must be a JSON object');
            patched = applyMergePatch(base, body);
          } else
            throw new HttpError(
              415,
              'UnsupportedMediaType',
              `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
            );
        } catch (err) {
          if (err instanceof PatchError) throw new HttpError(422, 'Invalid', err.message);
          throw err;
        }
        if (!isObject(patched)) throw new HttpError(422, 'Invalid', 'the patched object is not a JSON object');
        const candidate = (r.eventsV1 ? convertEvent(patched as Obj, false) : patched) as Obj;
        return out(200, this.doUpdate(r.resource, r.namespace, name, candidate, r.sub ? { sub: r.sub } : {}));
      }
      default:
        throw notAllowed();
    }
  }

  private async listResponse(res: ServerResponse, r: Route, match: Matcher, q: Record<string, string>): Promise<void> {
    const delay = this.opts.listDelayMs?.(r.resource) ?? 0;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    let snap: { rv: number; items: Obj[] };
    let start = 0;
    if (q.continue) {
      const [id, offset] = Buffer.from(q.continue, 'base64url').toString('utf8').split(':');
      const found = this.snapshots.get(id ?? '');
      if (!found)
        throw new HttpError(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      snap = found;
      start = Number(offset);
    } else
      snap = {
        rv: this.rv,
        items: this.sorted(r.resource, r.namespace)
          .filter(match)
          .map((o) => this.render(r.resource, o, r.eventsV1)),
      };
    const limit = Number(q.limit ?? 0);
    const end = limit > 0 ? Math.min(start + limit, snap.items.length) : snap.items.length;
    const metadata: JsonObject = { resourceVersion: String(snap.rv) };
    if (end < snap.items.length) {
      const id = q.continue ? (Buffer.from(q.continue, 'base64url').toString('utf8').split(':')[0] ?? '') : randomUUID();
      this.snapshots.set(id, snap);
      metadata.continue = Buffer.from(`${id}:${end}`).toString('base64url');
      metadata.remainingItemCount = snap.items.length - end;
    } else if (q.continue) {
      // Last page served: forget the snapshot (a 100,000-pod list is kept whole meanwhile).
      this.snapshots.delete(Buffer.from(q.continue, 'base64url').toString('utf8').split(':')[0] ?? '');
    }
    const k = KINDS[r.resource];
    this.reply(res, 200, {
      kind: `${k.kind}List`,
      apiVersion: r.eventsV1 ? 'events.k8s.io/v1' : k.group ? `${k.group}/v1` : 'v1',
      metadata,
      items: snap.items.slice(start, end),
    });
  }

  private watch(req: IncomingMessage, res: ServerResponse, r: Route, match: Matcher, q: Record<string, string>): void {
    const w: Watcher = {
      resource: r.resource,
      match,
      eventsV1: r.eventsV1,
      bookmarks: q.allowWatchBookmarks === 'true',
      res,
      ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
    };
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const from = q.resourceVersion && q.resourceVersion !== '0' ? Number(q.resourceVersion) : undefined;
    if (from !== undefined && (!Number.isInteger(from) || from < this.compactedRv)) {
      this.send(w, { type: 'ERROR', object: this.expired(`too old resource version: ${q.resourceVersion} (${this.compactedRv})`) });
      res.end();
      return;
    }
    this.watchers.add(w);
    res.on('close', () => this.endWatch(w));
    if (from === undefined) {
      // No resourceVersion: the current state as synthetic ADDED events, then changes.
      for (const o of this.sorted(r.resource, r.namespace)) if (match(o)) this.send(w, { type: 'ADDED', object: this.render(r.resource, o, r.eventsV1) });
    } else for (const e of this.history) if (e.rv > from) this.deliver(w, e);
    const timeout = Number(q.timeoutSeconds ?? 0);
    if (timeout > 0) w.timer = setTimeout(() => this.endWatch(w), timeout * 1000);
  }

  private deliver(w: Watcher, e: HistoryEntry): void {
    if (e.resource !== w.resource || (w.namespace !== undefined && e.next.metadata.namespace !== w.namespace)) return;
    const now = w.match(e.next);
    const before = e.prev !== undefined && w.match(e.prev);
    // An object moving into or out of the selector is ADDED / DELETED for this watch.
    const type =
      e.type === 'MODIFIED'
        ? now && before
          ? 'MODIFIED'
          : now
            ? 'ADDED'
            : before
              ? 'DELETED'
              : undefined
        : e.type === 'DELETED'
          ? before
            ? 'DELETED'
            : undefined
          : now
            ? 'ADDED'
            : undefined;
    if (type)
      this.send(w, { type, object: this.render(w.resource, { ...e.next, metadata: { ...e.next.metadata, resourceVersion: String(e.rv) } }, w.eventsV1) });
  }

  private sendBookmark(w: Watcher): void {
    const k = KINDS[w.resource];
    this.send(w, {
      type: 'BOOKMARK',
      object: { kind: k.kind, apiVersion: w.eventsV1 ? 'events.k8s.io/v1' : k.group ? `${k.group}/v1` : 'v1', metadata: { resourceVersion: String(this.rv) } },
    });
  }

  private send(w: Watcher, event: { type: string; object: unknown }): void {
    if (!w.res.destroyed && !w.res.writableEnded) w.res.write(JSON.stringify(event) + '\n');
  }

  private endWatch(w: Watcher): void {
    if (!this.watchers.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    if (!w.res.writableEnded) w.res.end();
  }

  private expired(message: string): JsonObject {
    return new HttpError(410, 'Expired', message).status();
  }
}
