// Rotation decisions for the self-provisioned webhook certificates. Pure: a state (what
// the Secret holds), the policy and the time in, the steps to take out; applying the
// steps only generates certificates. Rules, checked in this order:
//   1. no CA, or the CA has expired      -> create a CA, issue a serving cert
//   2. a retired (previous) CA expired   -> drop it from the bundle
//   3. a staged next CA exists, the CA has under half of caRenewDays left and the next
//      CA has been in the bundle for at least MIN_OVERLAP -> promote it (the old CA
//      stays in the bundle as "previous" until it expires), issue a serving cert
//   4. no next CA and the CA has under caRenewDays left -> stage a next CA: the bundle
//      now trusts old and new, so the later switch breaks no client
//   5. serving cert missing, not signed by the current CA, under servingRenewDays left,
//      or not naming the wanted DNS names/IPs -> issue a serving cert
import { certInfo, DAY_MS, generateCa, generateServing, serviceDnsNames, signedBy, type KeyPairPem } from './generate.js';

/** How long a staged CA is trusted before certificates switch to it, at least. */
export const MIN_OVERLAP_MS = 3_600_000;

export interface CertState {
  ca: KeyPairPem | null;
  nextCa: KeyPairPem | null;
  previousCaPem: string | null;
  serving: KeyPairPem | null;
}

export interface RotationPolicy {
  service: string;
  namespace: string;
  dns: string[];
  ips: string[];
  servingValidDays: number;
  servingRenewDays: number;
  caValidDays: number;
  caRenewDays: number;
}

export type Step = 'create-ca' | 'drop-previous-ca' | 'promote-next-ca' | 'stage-next-ca' | 'issue-serving';

export interface PlannedStep {
  step: Step;
  why: string;
}

export class RotationPolicyError extends Error {
  override name = 'RotationPolicyError';
}

export function checkPolicy(p: RotationPolicy): void {
  if (p.caRenewDays >= p.caValidDays)
    throw new RotationPolicyError(
      `certs.caRenewDays (${p.caRenewDays}) must be less than certs.caValidDays (${p.caValidDays}), or the CA would be renewed forever`,
    );
  if (p.servingRenewDays >= p.servingValidDays)
    throw new RotationPolicyError(`certs.servingRenewDays (${p.servingRenewDays}) must be less than certs.servingValidDays (${p.servingValidDays})`);
  // A serving cert never outlives its CA, and the CA is switched only when it has under
  // caRenewDays/2 left: a longer serving renewal would re-issue the serving cert at every check.
  if (p.servingRenewDays > p.caRenewDays / 2)
    throw new RotationPolicyError(
      `certs.servingRenewDays (${p.servingRenewDays}) must be at most half of certs.caRenewDays (${p.caRenewDays}), or the serving certificate would be re-issued at every check before a CA switch`,
    );
  // A new CA is promoted about caRenewDays/2 after it is staged; it must then have more
  // than caRenewDays left, or the next switch would start at once.
  if (p.caValidDays < 1.5 * p.caRenewDays)
    throw new RotationPolicyError(
      `certs.caValidDays (${p.caValidDays}) must be at least 1.5 x certs.caRenewDays (${p.caRenewDays}), or every CA switch would start the next one at once`,
    );
}

const daysLeft = (pem: string, now: Date): number => (certInfo(pem).notAfter.getTime() - now.getTime()) / DAY_MS;

export function planRotation(s: CertState, p: RotationPolicy, now: Date): PlannedStep[] {
  const steps: PlannedStep[] = [];
  if (!s.ca || daysLeft(s.ca.certPem, now) <= 0) {
    steps.push({ step: 'create-ca', why: s.ca ? 'the CA has expired' : 'no CA yet' });
    steps.push({ step: 'issue-serving', why: 'new CA' });
    return steps;
  }
  if (s.previousCaPem && daysLeft(s.previousCaPem, now) <= 0) steps.push({ step: 'drop-previous-ca', why: 'the retired CA has expired' });
  const caLeft = daysLeft(s.ca.certPem, now);
  if (s.nextCa) {
    const staged = now.getTime() - certInfo(s.nextCa.certPem).notBefore.getTime();
    if (caLeft < p.caRenewDays / 2 && staged >= MIN_OVERLAP_MS) {
      steps.push({
        step: 'promote-next-ca',
        why: `the CA has ${caLeft.toFixed(1)} days left; the next CA has been trusted for ${(staged / DAY_MS).toFixed(1)} days`,
      });
      steps.push({ step: 'issue-serving', why: 'new CA' });
      return steps;
    }
  } else if (caLeft < p.caRenewDays) {
    steps.push({ step: 'stage-next-ca', why: `the CA has ${caLeft.toFixed(1)} days left (renewal starts at ${p.caRenewDays})` });
  }
  const why = servingProblem(s, p, now);
  if (why) steps.push({ step: 'issue-serving', why });
  return steps;
}

function servingProblem(s: CertState, p: RotationPolicy, now: Date): string | null {
  if (!s.serving) return 'no serving certificate yet';
  if (!signedBy(s.serving.certPem, s.ca!.certPem)) return 'the serving certificate is not signed by the current CA';
  const left = daysLeft(s.serving.certPem, now);
  if (left < p.servingRenewDays) return `the serving certificate has ${left.toFixed(1)} days left (renewal at ${p.servingRenewDays})`;
  const info = certInfo(s.serving.certPem);
  const want = [...serviceDnsNames(p.service, p.namespace), ...p.dns];
  if (want.some((d) => !info.dnsNames.includes(d)) || p.ips.some((ip) => !info.ips.includes(ip)))
    return 'the serving certificate does not name every wanted DNS name/IP';
  return null;
}

export interface Generators {
  ca: typeof generateCa;
  serving: typeof generateServing;
}

const DEFAULT_GENERATORS: Generators = { ca: generateCa, serving: generateServing };

/** Carries out the steps; returns the new state (the input is not changed). */
export function applyRotation(s: CertState, steps: readonly PlannedStep[], p: RotationPolicy, now: Date, gen: Generators = DEFAULT_GENERATORS): CertState {
  const next: CertState = { ...s };
  for (const { step } of steps) {
    switch (step) {
      case 'create-ca':
        next.ca = gen.ca({ validDays: p.caValidDays, now });
        next.nextCa = null;
        break;
      case 'drop-previous-ca':
        next.previousCaPem = null;
        break;
      case 'stage-next-ca':
        next.nextCa = gen.ca({ validDays: p.caValidDays, now, commonName: `sluice-ca-${now.toISOString().slice(0, 10)}-next` });
        break;
      case 'promote-next-ca':
        next.previousCaPem = next.ca!.certPem;
        next.ca = next.nextCa;
        next.nextCa = null;
        break;
      case 'issue-serving':
        next.serving = gen.serving({ ca: next.ca!, service: p.service, namespace: p.namespace, dns: p.dns, ips: p.ips, validDays: p.servingValidDays, now });
        break;
    }
  }
  return next;
}

/** PEM bundle clients must trust: the current CA, a staged next CA, a retired CA still valid. */
export function caBundle(s: CertState): string {
  const parts = [s.ca?.certPem, s.nextCa?.certPem, s.previousCaPem].filter((x): x is string => !!x);
  return parts.map((p) => (p.endsWith('\n') ? p : p + '\n')).join('');
}

// ---- Secret layout -------------------------------------------------------------------

const KEYS = { ca: ['ca.crt', 'ca.key'], nextCa: ['ca-next.crt', 'ca-next.key'], serving: ['tls.crt', 'tls.key'] } as const;
const PREVIOUS = 'ca-previous.crt';

const b64d = (v: string | undefined): string | undefined => (v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8'));
const b64e = (v: string): string => Buffer.from(v, 'utf8').toString('base64');

/** Secret .data (base64 values) -> state; pairs with a missing half count as absent. */
export function stateFromSecretData(data: Record<string, string> | undefined): CertState {
  const pair = ([c, k]: readonly [string, string]): KeyPairPem | null => {
    const certPem = b64d(data?.[c]);
    const keyPem = b64d(data?.[k]);
    return certPem && keyPem ? { certPem, keyPem } : null;
  };
  return { ca: pair(KEYS.ca), nextCa: pair(KEYS.nextCa), previousCaPem: b64d(data?.[PREVIOUS]) || null, serving: pair(KEYS.serving) };
}

export function stateToSecretData(s: CertState): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, [c, k]] of Object.entries(KEYS) as Array<[keyof typeof KEYS, readonly [string, string]]>) {
    const v = s[field];
    if (v) {
      out[c] = b64e(v.certPem);
      out[k] = b64e(v.keyPem);
    }
  }
  if (s.previousCaPem) out[PREVIOUS] = b64e(s.previousCaPem);
  out['ca-bundle.crt'] = b64e(caBundle(s));
  return out;
}
