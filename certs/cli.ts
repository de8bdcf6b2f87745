// `sluice certs generate --out DIR --service NAME --namespace NS [--dns NAME]... [--ip IP]...
//  [--days N] [--ca-days N]`: a CA (kept when DIR already holds one valid for longer than
// the new serving certificate, so clients that trust it keep working) and a serving certificate for the Service, as PEM files.
import { join } from 'node:path';
import { certInfo, CertError, DAY_MS, generateCa, generateServing } from './generate.js';
import { FILES, readCa, writePair } from './files.js';

export const CERTS_USAGE = `usage: sluice certs generate --out DIR --service NAME --namespace NS [--dns NAME]... [--ip IP]... [--days 365] [--ca-days 3650]

Writes DIR/ca.crt, DIR/ca.key, DIR/tls.crt, DIR/tls.key (keys mode 0600). The serving
certificate names NAME, NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local and the extras.
An existing CA in DIR is reused when it outlives the new serving certificate;
otherwise a new CA is written (and the caBundle must be updated). Prints the caBundle (base64) for the webhook
configurations and the scheduler's extender tlsConfig.
`;

export interface GenerateArgs {
  out: string;
  service: string;
  namespace: string;
  dns: string[];
  ips: string[];
  days: number;
  caDays: number;
}

export function parseGenerateArgs(argv: readonly string[]): GenerateArgs {
  const a: GenerateArgs = { out: '', service: '', namespace: '', dns: [], ips: [], days: 365, caDays: 3650 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) throw new CertError(`flag ${flag} needs a value\n${CERTS_USAGE}`);
    i++;
    switch (flag) {
      case '--out': a.out = value; break;
      case '--service': a.service = value; break;
      case '--namespace': a.namespace = value; break;
      case '--dns': a.dns.push(...value.split(',').filter(Boolean)); break;
      case '--ip': a.ips.push(...value.split(',').filter(Boolean)); break;
      case '--days': a.days = positive(flag, value); break;
      case '--ca-days': a.caDays = positive(flag, value); break;
      default: throw new CertError(`unknown flag ${flag}\n${CERTS_USAGE}`);
    }
  }
  for (const [k, v] of [['--out', a.out], ['--service', a.service], ['--namespace', a.namespace]] as const) {
    if (!v) throw new CertError(`${k} is required\n${CERTS_USAGE}`);
  }
  return a;
}

function positive(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CertError(`${flag} ${v} is not a whole number of days (at least 1)`);
  return n;
}

export interface GenerateResult {
  caReused: boolean;
  /** DIR held a CA that expires before the new serving certificate would: a new CA was made. */
  caReplaced: boolean;
  /** Expiry of the replaced CA. */
  replacedCaNotAfter?: Date;
  caBundle: string;
  files: string[];
}

export function runGenerate(a: GenerateArgs, now = new Date()): GenerateResult {
  let ca = readCa(a.out);
  // Reuse the CA only when it outlives the serving certificate asked for (a serving
  // certificate is never valid past its CA, so it would silently get less).
  const oldNotAfter = ca ? certInfo(ca.certPem).notAfter : undefined;
  const caReused = oldNotAfter !== undefined && oldNotAfter.getTime() >= now.getTime() + a.days * DAY_MS;
  if (!ca || !caReused) {
    ca = generateCa({ validDays: a.caDays, now });
    writePair(a.out, FILES.caCert, FILES.caKey, ca);
  }
  const serving = generateServing({ ca, service: a.service, namespace: a.namespace, dns: a.dns, ips: a.ips, validDays: a.days, now });
  writePair(a.out, FILES.cert, FILES.key, serving);
  return {
    caReused,
    caReplaced: oldNotAfter !== undefined && !caReused,
    ...(oldNotAfter !== undefined && !caReused ? { replacedCaNotAfter: oldNotAfter } : {}),
    caBundle: Buffer.from(ca.certPem).toString('base64'),
    files: [FILES.caCert, FILES.caKey, FILES.cert, FILES.key].map((f) => join(a.out, f)),
  };
}

/** Entry for bin/sluice.ts; returns the exit code. */
export function certsCommand(argv: readonly string[], out: NodeJS.WritableStream = process.stdout): number {
  const [sub, ...rest] = argv;
  if (sub !== 'generate') {
    out.write(CERTS_USAGE);
    return sub === undefined || sub === 'help' || sub === '--help' ? 0 : 2;
  }
  const r = runGenerate(parseGenerateArgs(rest));
  if (r.caReplaced) {
    out.write(`the CA in ${r.files[0]} expires ${r.replacedCaNotAfter?.toISOString() ?? ''} before the new serving certificate would; wrote a new CA: update caBundle in the webhook configurations and the scheduler's extender tlsConfig\n`);
  }
  out.write(`${r.caReused ? 'kept the CA in' : 'wrote a new CA to'} ${r.files[0]}; wrote ${r.files.slice(r.caReused ? 2 : 1).join(', ')}\ncaBundle: ${r.caBundle}\n`);
  return 0;
}
