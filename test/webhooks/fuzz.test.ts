// Malformed and random AdmissionReview bodies: never a crash or a 5xx, always either a
// well-formed AdmissionReview answer or a 4xx with a reason. Bounded loop, seeded PRNG
// (SLUICE_FUZZ_SEED to replay a failure).
import t from 'tap';
import { applyPatch, fixtureNames, loadReview, QUEUE_TEAM_A, startSluice } from './helpers.js';
import { seededRandom } from '../../bench/simulate/engine.js';

const sluice = await startSluice();
t.teardown(() => sluice.close());
await sluice.store.putQueue('team-a', QUEUE_TEAM_A);

const seed = Number(process.env.SLUICE_FUZZ_SEED ?? 20261122);
const rnd = seededRandom(seed); // mulberry32, the simulator's
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const STRINGS = [
  '',
  'a',
  'sluice.io/queue',
  '2',
  '-1',
  '1.5',
  '500m',
  '1e3',
  'NaN',
  'nvidia.com/gpu',
  'CREATE',
  'UPDATE',
  'true',
  '💥',
  'x'.repeat(300),
  '__proto__',
  'constructor',
];
function randomValue(depth = 0): unknown {
  const k = rnd();
  if (depth > 3 || k < 0.3) return pick<unknown>([null, true, false, 0, -1, 2.5, 1e308, ...STRINGS]);
  if (k < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rnd() * 4); i > 0; i--)
    o[pick(['metadata', 'spec', 'labels', 'containers', 'resources', 'limits', 'requests', 'name', ...STRINGS])] = randomValue(depth + 1);
  return o;
}

/** Every path of objects/arrays inside `v`, to pick a spot to break. */
function paths(v: unknown, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, child] of Object.entries(v)) {
    const p = [...prefix, Array.isArray(v) ? Number(k) : k];
    out.push(p);
    if (out.length < 4000) paths(child, p, out);
  }
  return out;
}

function breakFixture(): unknown {
  const review = loadReview(pick(fixtureNames())) as unknown as Record<string, any>;
  if (rnd() < 0.3) review.request.operation = pick(['CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'x']);
  const all = paths(review.request);
  for (let n = 1 + Math.floor(rnd() * 4); n > 0; n--) {
    const p = pick(all);
    let parent: any = review.request;
    for (const k of p.slice(0, -1)) parent = parent?.[k];
    if (typeof parent !== 'object' || parent === null) continue;
    const last = p[p.length - 1]!;
    if (rnd() < 0.3) delete parent[last];
    else parent[last] = randomValue();
  }
  return review;
}

/** Values where a list of objects belongs: null, scalars, lists holding null or scalars. */
const oddList = (): unknown => pick<unknown>([null, [null], [1], ['x'], [[]], [{}], 'x', 7, {}, [null, {}]]);

/**
 * A GPU pod from the fixtures with a gpu-model annotation (so the affinity code runs) and a
 * node affinity broken somewhere: the shapes readPod must catch before the decision code.
 */
function oddAffinity(): unknown {
  const review = loadReview(pick(['gpu-pod.json', 'gpu-pod-validate.json', 'job-pod.json'])) as unknown as Record<string, any>;
  const pod = review.request.object;
  pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), 'sluice.io/gpu-model': pick(['a100', 'h100', 'v100,a100']) };
  const expr = pick<unknown>([null, 'x', { key: 'zone', operator: 'In', values: pick<unknown>([null, 'a', ['a'], [null], 3]) }, { key: null }, {}]);
  const term = pick<unknown>([null, 'x', 3, [], {}, { matchExpressions: oddList() }, { matchExpressions: [expr] }, { matchFields: oddList() }]);
  const required = pick<unknown>([null, 'x', [], {}, { nodeSelectorTerms: oddList() }, { nodeSelectorTerms: [term] }, { nodeSelectorTerms: [{}, term] }]);
  const nodeAffinity = pick<unknown>([null, 'x', [], { requiredDuringSchedulingIgnoredDuringExecution: required }]);
  pod.spec.affinity = rnd() < 0.1 ? pick<unknown>(['x', [], 3]) : { nodeAffinity };
  if (rnd() < 0.3) review.request.operation = 'UPDATE';
  return review;
}

function randomBody(): unknown {
  const k = rnd();
  if (k < 0.15) return oddAffinity();
  if (k < 0.55) return breakFixture();
  if (k < 0.7) return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: pick(STRINGS) || 'u', ...(randomValue() as object) } };
  if (k < 0.8)
    return { apiVersion: pick(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1', 1]), kind: pick(['AdmissionReview', 'Pod', null]), request: randomValue() };
  if (k < 0.9) return randomValue();
  // Raw text: truncated or invalid JSON.
  const text = JSON.stringify(loadReview(pick(fixtureNames())));
  return { raw: rnd() < 0.5 ? text.slice(0, Math.floor(rnd() * text.length)) : pick(['', '{', 'null', '[]', '"x"', 'AdmissionReview', '{"request":']) };
}

function checkAnswer(status: number, body: any, sent: any): boolean {
  if (status >= 400 && status < 500) return typeof body?.error === 'string' && body.error.length > 0;
  if (status !== 200) return false;
  const r = body?.response;
  if (body?.apiVersion !== 'admission.k8s.io/v1' || body?.kind !== 'AdmissionReview' || typeof r?.allowed !== 'boolean') return false;
  if (r.uid !== sent?.request?.uid) return false;
  if (r.allowed === false && !(Number.isInteger(r.status?.code) && typeof r.status?.message === 'string' && r.status.message.length > 0)) return false;
  if (r.patch !== undefined) {
    const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8'));
    if (!Array.isArray(ops) || !ops.every((o: any) => typeof o.op === 'string' && typeof o.path === 'string' && o.path.startsWith('/'))) return false;
    if (r.patchType !== 'JSONPatch') return false;
    // The patch must apply to the object that was sent (RFC 6902: every path exists).
    try {
      applyPatch(sent.request.object, ops);
    } catch {
      return false;
    }
  }
  return true;
}

t.test(`random and broken AdmissionReviews (seed ${seed})`, async (t) => {
  const N = 3000;
  let bad = 0;
  const statuses = new Map<number, number>();
  for (let i = 0; i < N; i++) {
    const body = randomBody();
    const raw = typeof body === 'object' && body !== null && 'raw' in body ? String((body as { raw: unknown }).raw) : JSON.stringify(body);
    const url = rnd() < 0.5 ? '/webhooks/mutate' : '/webhooks/validate';
    // Most go through inject (the same fastify routes, schemas and handlers, without
    // sockets); every 10th over the real HTTPS listener.
    let status: number;
    let parsed: unknown;
    if (i % 10 === 0) {
      const res = await sluice.post(url, raw);
      status = res.status;
      parsed = res.body;
    } else {
      const res = await sluice.servers.api.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: raw });
      status = res.statusCode;
      try {
        parsed = res.json();
      } catch {
        parsed = res.body;
      }
    }
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    let sent: unknown = null;
    try {
      sent = JSON.parse(raw);
    } catch {
      /* invalid JSON was the point */
    }
    if (!checkAnswer(status, parsed, sent)) {
      bad++;
      if (bad <= 5) t.fail(`body #${i} got HTTP ${status}: ${JSON.stringify(parsed).slice(0, 300)}; sent ${raw.slice(0, 300)}`);
    }
  }
  t.equal(bad, 0, `all ${N} answers well-formed (statuses ${JSON.stringify(Object.fromEntries(statuses))})`);
  t.ok((statuses.get(200) ?? 0) > N / 3, 'a good share reached the decision code');
  t.ok(
    [...statuses.keys()].some((s) => s >= 400 && s < 500),
    'some were refused as malformed',
  );
  t.notOk(
    [...statuses.keys()].some((s) => s >= 500),
    'no 5xx',
  );
  const health = await sluice.post('/webhooks/mutate', loadReview('gpu-pod.json'));
  t.equal(health.body.response.patchType, 'JSONPatch', 'still serving afterwards');
});

t.test('null or scalar node-selector terms and expressions: a well-formed answer, never a 500', async (t) => {
  const shapes: Array<[string, unknown]> = [
    ['nodeSelectorTerms: [null]', { nodeSelectorTerms: [null] }],
    ['matchExpressions: [null]', { nodeSelectorTerms: [{ matchExpressions: [null] }] }],
    ['matchExpressions: "x"', { nodeSelectorTerms: [{ matchExpressions: 'x' }] }],
    ['values: "a"', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'nvidia.com/gpu.product', operator: 'In', values: 'a' }] }] }],
  ];
  for (const [name, required] of shapes) {
    for (const [path, file] of [
      ['/webhooks/mutate', 'gpu-pod.json'],
      ['/webhooks/validate', 'gpu-pod-validate.json'],
    ] as const) {
      const r = loadReview(file);
      r.request.object!.metadata.annotations['sluice.io/gpu-model'] = 'a100';
      r.request.object!.spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: required } };
      const res = await sluice.post(path, r);
      t.equal(res.status, 200, `${name} ${path}: HTTP 200`);
      t.ok(checkAnswer(res.status, res.body, r), `${name} ${path}: well-formed`);
      if (path === '/webhooks/validate')
        t.match(res.body.response?.status, { code: 400, message: /nodeSelectorTerms|matchExpressions|values/ }, `${name}: says which field`);
    }
  }
});

t.test('malformed AdmissionReviews get a 400 that says what is wrong', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    [
      'no request',
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      /body is not an AdmissionReview .*request.*; send an admission.k8s.io\/v1 AdmissionReview with request.uid/,
    ],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }, /uid/],
    ['v1beta1', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }, /apiVersion/],
    ['not JSON', '{"apiVersion":', /JSON/i],
  ];
  for (const [name, body, message] of cases) {
    const res = await sluice.post('/webhooks/validate', typeof body === 'string' ? body : body);
    t.equal(res.status, 400, `${name}: 400`);
    t.match(res.body.error, message, `${name}: message`);
  }
  const unreadable = loadReview('gpu-pod-validate.json');
  (unreadable.request.object as any).spec.containers = 'trainer';
  const res = await sluice.post('/webhooks/validate', unreadable);
  t.equal(res.status, 200, 'a review whose pod cannot be read still gets an AdmissionReview answer');
  t.match(res.body.response, {
    uid: unreadable.request.uid,
    allowed: false,
    status: { code: 400, message: /request.object.spec.containers is not a list of containers/ },
  });
  const m = await sluice.post('/webhooks/mutate', unreadable);
  t.match(m.body.response, { uid: unreadable.request.uid, allowed: true }, 'mutate leaves an unreadable pod alone');
});
