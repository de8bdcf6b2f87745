// Rotation decisions through a simulated ten years: the CA is renewed well before its
// expiry with an overlap (bundle holds old and new), the serving cert before its own,
// and no moment has a serving cert that the published bundle does not trust.
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { caBundlePatch } from '../../certs/provision.js';
import {
  applyRotation,
  caBundle,
  checkPolicy,
  MIN_OVERLAP_MS,
  planRotation,
  RotationPolicyError,
  stateFromSecretData,
  stateToSecretData,
  type CertState,
  type Generators,
  type RotationPolicy,
} from '../../certs/rotation.js';
import { certInfo, generateCa, generateServing, signedBy } from '../../certs/generate.js';

const DAY = 86_400_000;
const policy: RotationPolicy = {
  service: 'sluice',
  namespace: 'sluice-system',
  dns: [],
  ips: [],
  servingValidDays: 90,
  servingRenewDays: 30,
  caValidDays: 3650,
  caRenewDays: 365,
};
const empty: CertState = { ca: null, nextCa: null, previousCaPem: null, serving: null };
// The simulations below issue ~70 certificates. What they check is when each step happens
// and that the bundle always trusts the serving cert, which does not depend on the key
// size: 1024-bit keys (~10 ms each to generate instead of ~170 ms) from the same
// generators. The first-run test and the Secret round trip keep the default 2048-bit keys.
const fastKeys: Generators = {
  ca: (o) => generateCa({ ...o, keyBits: 1024 }),
  serving: (o) => generateServing({ ...o, keyBits: 1024 }),
};
const steps = (s: CertState, at: Date): string[] => planRotation(s, policy, at).map((p) => p.step);
const bundleCerts = (s: CertState): X509Certificate[] =>
  caBundle(s)
    .split(/(?<=-----END CERTIFICATE-----\n)/)
    .filter(Boolean)
    .map((p) => new X509Certificate(p));

t.test('first run: CA and serving cert; then nothing to do', async (t) => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  t.same(steps(empty, t0), ['create-ca', 'issue-serving']);
  const s = applyRotation(empty, planRotation(empty, policy, t0), policy, t0);
  t.ok(signedBy(s.serving!.certPem, s.ca!.certPem));
  t.same(steps(s, new Date(t0.getTime() + DAY)), [], 'a day later: nothing');
  t.same(steps(s, new Date(t0.getTime() + 59 * DAY)), [], '59 days: still nothing (31 left)');
  t.same(steps(s, new Date(t0.getTime() + 61 * DAY)), ['issue-serving'], '61 days: under 30 left, renew serving');
  t.same(steps({ ...s, serving: null }, t0), ['issue-serving']);
  t.same(
    planRotation(s, { ...policy, dns: ['extra.example'] }, t0).map((p) => p.step),
    ['issue-serving'],
    'a new SAN re-issues',
  );
});

t.test('eleven simulated years (one CA lifetime and a switch), checked every 10 days: overlap during CA switches, always trusted', async (t) => {
  let now = new Date('2026-01-01T00:00:00Z');
  let s = empty;
  const seen: string[] = [];
  let stagedAt = 0;
  const broken: string[] = [];
  let checks = 0;
  for (let day = 0; day <= 3650 + 400; day += 10) {
    checks++;
    now = new Date(Date.UTC(2026, 0, 1) + day * DAY);
    const plan = planRotation(s, policy, now);
    s = applyRotation(s, plan, policy, now, fastKeys);
    for (const p of plan) {
      seen.push(p.step);
      if (p.step === 'stage-next-ca') {
        stagedAt = now.getTime();
        const left = (certInfo(s.ca!.certPem).notAfter.getTime() - now.getTime()) / DAY;
        t.ok(left <= 365 && left > 354, `next CA staged with ${left.toFixed(0)} days left on the CA`);
        t.equal(bundleCerts(s).length, 2, 'bundle holds the old and the new CA');
      }
      if (p.step === 'promote-next-ca') {
        t.ok(now.getTime() - stagedAt >= 180 * DAY, 'the new CA was trusted for about half a year before the switch');
        t.ok(s.previousCaPem, 'the old CA stays in the bundle');
      }
    }
    // The invariant: the bundle trusts the serving cert, which is valid now.
    const leaf = new X509Certificate(s.serving!.certPem);
    const trusted = bundleCerts(s).some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    const valid = new Date(leaf.validTo).getTime() > now.getTime() && new Date(leaf.validFrom).getTime() <= now.getTime();
    if (!trusted || !valid) broken.push(`day ${day}: serving cert ${trusted ? '' : 'not trusted by the bundle '}${valid ? '' : 'not valid'}`);
  }
  t.same(broken, [], `the bundle trusted a valid serving cert at all ${checks} checks`);
  t.ok(seen.filter((x) => x === 'promote-next-ca').length >= 1, 'the CA was switched at least once');
  t.ok(seen.includes('drop-previous-ca'), 'a retired CA was dropped once expired');
  t.notOk(seen.includes('create-ca') && seen.lastIndexOf('create-ca') > 0, 'never started over with a fresh CA');
  t.ok(seen.filter((x) => x === 'issue-serving').length >= 50, 'serving cert renewed every 60-70 days');
});

t.test('a short-lived policy that checkPolicy accepts does not churn', async (t) => {
  const p: RotationPolicy = { ...policy, servingValidDays: 20, servingRenewDays: 10, caValidDays: 32, caRenewDays: 20 };
  checkPolicy(p);
  let s = empty;
  const count = new Map<string, number>();
  let promotedAt = -Infinity;
  const tooSoon: number[] = [];
  for (let h = 0; h <= 60 * 24; h += 12) {
    const now = new Date(Date.UTC(2026, 0, 1) + h * 3_600_000);
    const plan = planRotation(s, p, now);
    s = applyRotation(s, plan, p, now, fastKeys);
    for (const x of plan) {
      count.set(x.step, (count.get(x.step) ?? 0) + 1);
      if (x.step === 'promote-next-ca') promotedAt = h;
      if (x.step === 'stage-next-ca' && h - promotedAt <= 24) tooSoon.push(h);
    }
  }
  t.ok((count.get('promote-next-ca') ?? 0) >= 2, 'the CA was switched');
  t.same(tooSoon, [], 'a promoted CA is not itself due for renewal at once');
  t.ok((count.get('issue-serving') ?? 0) <= 12, `serving cert issued ${count.get('issue-serving')} times in 60 days (about every 10 days, plus CA switches)`);
});

t.test('a next CA is promoted only after it has been trusted for a while', async (t) => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  let s = applyRotation(empty, planRotation(empty, policy, t0), policy, t0, fastKeys);
  // sluice was off for years: the CA has 100 days left and no next CA is staged.
  const late = new Date(t0.getTime() + 3550 * DAY);
  t.same(steps(s, late), ['stage-next-ca', 'issue-serving'], 'stage first (serving renewal is due too)');
  s = applyRotation(s, planRotation(s, policy, late), policy, late, fastKeys);
  t.same(steps(s, new Date(late.getTime() + MIN_OVERLAP_MS / 2)), [], 'not promoted within the minimum overlap');
  t.same(steps(s, new Date(late.getTime() + MIN_OVERLAP_MS + 6 * 60_000)), ['promote-next-ca', 'issue-serving'], 'promoted after it');
  // An expired CA means starting over.
  t.same(steps(s, new Date(t0.getTime() + 3651 * DAY)), ['create-ca', 'issue-serving']);
});

t.test('policy sanity, Secret round trip, caBundle patch', async (t) => {
  t.throws(() => checkPolicy({ ...policy, caRenewDays: 3650 }), RotationPolicyError);
  t.throws(() => checkPolicy({ ...policy, servingRenewDays: 90 }), RotationPolicyError);
  // Serving renewal longer than half the CA renewal: once the CA has fewer days left than
  // servingRenewDays (the serving cert never outlives its CA), it would be re-issued at every check.
  t.throws(() => checkPolicy({ ...policy, servingValidDays: 365, servingRenewDays: 200 }), {
    name: 'RotationPolicyError',
    message: /certs\.servingRenewDays \(200\).*certs\.caRenewDays \(365\)/,
  });
  // A CA valid for less than 1.5 x caRenewDays is already due for renewal when it is promoted.
  t.throws(() => checkPolicy({ ...policy, caValidDays: 500 }), {
    name: 'RotationPolicyError',
    message: /certs\.caValidDays \(500\).*certs\.caRenewDays \(365\)/,
  });
  t.doesNotThrow(() => checkPolicy({ ...policy, servingValidDays: 365, servingRenewDays: 182, caValidDays: 548 }), 'the limits themselves are fine');
  const t0 = new Date();
  const s1 = applyRotation(empty, planRotation(empty, policy, t0), policy, t0);
  const s = applyRotation(s1, [{ step: 'stage-next-ca', why: 'test' }], policy, t0);
  const data = stateToSecretData(s);
  t.same(Object.keys(data).sort(), ['ca-bundle.crt', 'ca-next.crt', 'ca-next.key', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  t.same(stateFromSecretData(data), s, 'round trip');
  t.same(stateFromSecretData(undefined), empty);
  t.same(stateFromSecretData({ 'ca.crt': data['ca.crt']! }).ca, null, 'a CA without its key counts as absent');

  const b64 = Buffer.from(caBundle(s)).toString('base64');
  const cfg = {
    metadata: { resourceVersion: '42' },
    webhooks: [{ clientConfig: { caBundle: 'old' } }, { clientConfig: { caBundle: b64 } }, { clientConfig: {} }],
  };
  t.same(caBundlePatch(cfg, b64), [
    { op: 'test', path: '/metadata/resourceVersion', value: '42' },
    { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64 },
    { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: b64 },
  ]);
  t.same(caBundlePatch({ webhooks: [{ clientConfig: { caBundle: b64 } }] }, b64), [], 'nothing when all match');
});
