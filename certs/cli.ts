// `sluice certs generate --out DIR --service NAME --namespace NS [--dns NAME]... [--ip IP]...
//  [--days N] [--ca-days N]`: a CA (kept when DIR already holds one valid for longer than
// the new serving certificate, so clients that trust it keep working) and a serving certificate for the Service, as PEM files.
import { join } from 'node:path';
import { certInfo, CertError, DAY_MS, generateCa, generateServing } from './generate.js';
import { FILES, readCa, writePair } from './files.js';
import { FlagError, helpText, parseFlags, type CommandSpec } from '../cli/flags.js';
import { didYouMean } from '../config/closest.js';

export const CERTS_GENERATE: CommandSpec = {
  usage: 'sluice certs generate --out DIR --service NAME --namespace NS [--dns NAME]... [--ip IP]... [--days N] [--ca-days N]',
  about: `Writes DIR/ca.crt, DIR/ca.key, DIR/tls.crt, DIR/tls.key (keys mode 0600). The serving
certificate names NAME, NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local and the extras.
An existing CA in DIR is reused when it outlives the new serving certificate; otherwise a new
CA is written (and the caBundle must be updated). Prints the caBundle (base64) for the webhook
configurations and the scheduler's extender tlsConfig.`,
  flags: [
    { name: 'out', value: 'DIR', help: 'folder for the PEM files (required)' },
    { name: 'service', value: 'NAME', help: 'the Service the webhooks are reached through (required)' },
    { name: 'namespace', value: 'NS', help: "the Service's namespace (required)" },
    { name: 'dns', value: 'NAME[,NAME]', repeat: true, help: 'extra DNS names in the serving certificate; may be repeated' },
    { name: 'ip', value: 'IP[,IP]', repeat: true, help: 'extra IP addresses in the serving certificate; may be repeated' },
    { name: 'days', value: 'N', default: '365', help: 'days the serving certificate is valid' },
    { name: 'ca-days', value: 'N', default: '3650', help: 'days a new CA is valid' },
  ],
};

export const CERTS_USAGE = `usage: sluice certs generate --out DIR --service NAME --namespace NS [flags]

commands:
  generate   a CA and a serving certificate for the webhooks and the extender, as PEM files
             (sluice certs generate --help for its flags)

In a cluster, certs.selfProvision: true keeps them in a Secret and rotates them instead.
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
  const f = parseFlags(argv, CERTS_GENERATE);
  const list = (name: string): string[] => f.all(name).flatMap((v) => v.split(',').filter(Boolean));
  const a: GenerateArgs = {
    out: f.get('out') ?? '',
    service: f.get('service') ?? '',
    namespace: f.get('namespace') ?? '',
    dns: list('dns'),
    ips: list('ip'),
    days: f.has('days') ? positive('--days', f.get('days')!) : 365,
    caDays: f.has('ca-days') ? positive('--ca-days', f.get('ca-days')!) : 3650,
  };
  for (const [k, v] of [
    ['--out', a.out],
    ['--service', a.service],
    ['--namespace', a.namespace],
  ] as const) {
    if (!v) throw new FlagError(`${k} is required; see sluice certs generate --help`);
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
    const help = sub === undefined || sub === 'help' || sub === '--help' || sub === '-h';
    (help ? out : process.stderr).write(help ? CERTS_USAGE : `sluice certs: unknown command "${sub}"${didYouMean(sub, ['generate'])}\n${CERTS_USAGE}`);
    return help ? 0 : 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out.write(helpText(CERTS_GENERATE));
    return 0;
  }
  const r = runGenerate(parseGenerateArgs(rest));
  if (r.caReplaced) {
    out.write(
      `the CA in ${r.files[0]} expires ${r.replacedCaNotAfter?.toISOString() ?? ''} before the new serving certificate would; wrote a new CA: update caBundle in the webhook configurations and the scheduler's extender tlsConfig\n`,
    );
  }
  out.write(
    `${r.caReused ? 'kept the CA in' : 'wrote a new CA to'} ${r.files[0]}; wrote ${r.files.slice(r.caReused ? 2 : 1).join(', ')}\ncaBundle: ${r.caBundle}\n`,
  );
  return 0;
}
