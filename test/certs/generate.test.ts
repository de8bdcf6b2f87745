// certs/: the generated chain verifies with node:crypto, SANs are right, key files are
// 0600, the CLI keeps a valid CA, and bad arguments are refused with a clear message.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { certsCommand, parseGenerateArgs, runGenerate } from '../../certs/cli.js';
import { certInfo, CertError, generateCa, generateServing, serialHex, signedBy } from '../../certs/generate.js';

t.test('sluice certs generate writes a CA and a serving certificate that verify', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-certs-'));
  const args = parseGenerateArgs([
    '--out',
    dir,
    '--service',
    'sluice',
    '--namespace',
    'sluice-system',
    '--dns',
    'sluice.example.com',
    '--ip',
    '10.0.0.7',
    '--ip',
    '::1',
  ]);
  const res = runGenerate(args);
  t.equal(res.caReused, false);
  const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
  const leaf = new X509Certificate(readFileSync(join(dir, 'tls.crt')));
  t.ok(ca.ca, 'CA has basicConstraints CA:TRUE');
  t.notOk(leaf.ca, 'serving cert is not a CA');
  t.ok(leaf.checkIssued(ca), 'issued by the CA');
  t.ok(leaf.verify(ca.publicKey), 'signature verifies with the CA key');
  t.ok(ca.verify(ca.publicKey), 'CA is self-signed');
  t.equal(
    leaf.subjectAltName,
    'DNS:sluice, DNS:sluice.sluice-system, DNS:sluice.sluice-system.svc, DNS:sluice.sluice-system.svc.cluster.local, DNS:sluice.example.com, IP Address:10.0.0.7, IP Address:0:0:0:0:0:0:0:1',
  );
  t.ok(leaf.checkHost('sluice.sluice-system.svc'), 'hostname check passes for the service name');
  t.ok(leaf.checkIP('10.0.0.7'));
  t.match(leaf.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1'], 'extended key usage serverAuth');
  for (const f of ['ca.key', 'tls.key']) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`);
  for (const f of ['ca.crt', 'tls.crt']) t.equal(statSync(join(dir, f)).mode & 0o777, 0o644, `${f} is 0644`);
  t.equal(Buffer.from(res.caBundle, 'base64').toString(), readFileSync(join(dir, 'ca.crt'), 'utf8'), 'caBundle is the CA PEM in base64');
  t.notMatch(readFileSync(join(dir, 'tls.crt'), 'utf8'), /\r/, 'LF line ends');

  // Again: the CA is kept, so clients that trust it keep working; a key made world-readable is fixed.
  writeFileSync(join(dir, 'tls.key'), 'x', { mode: 0o644 });
  const again = runGenerate(args);
  t.equal(again.caReused, true);
  t.equal(new X509Certificate(readFileSync(join(dir, 'ca.crt'))).fingerprint256, ca.fingerprint256, 'same CA');
  const leaf2 = new X509Certificate(readFileSync(join(dir, 'tls.crt')));
  t.not(leaf2.serialNumber, leaf.serialNumber, 'new serving cert');
  t.ok(leaf2.verify(ca.publicKey));
  t.equal(statSync(join(dir, 'tls.key')).mode & 0o777, 0o600, 'key mode restored to 0600');
});

t.test('the CLI entry and its errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-certs-'));
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  t.equal(certsCommand(['generate', '--out', dir, '--service', 's', '--namespace', 'n'], sink), 0);
  t.match(out, /^wrote a new CA to .*ca\.crt; wrote .*tls\.key\ncaBundle: [A-Za-z0-9+/=]+\n$/);
  t.throws(() => parseGenerateArgs(['--out', dir, '--service', 's']), { message: /^--namespace is required/ });
  t.throws(() => parseGenerateArgs(['--out']), { message: /^flag --out needs a value/ });
  t.throws(() => parseGenerateArgs(['--bogus', 'x']), { message: /^unknown flag --bogus/ });
  t.throws(() => parseGenerateArgs(['--days', '0']), { message: /--days 0 is not a whole number of days/ });
  t.throws(() => runGenerate({ out: dir, service: 's', namespace: 'n', dns: [], ips: ['300.1.1.1'], days: 1, caDays: 2 }), CertError);
  t.equal(certsCommand(['frobnicate'], sink), 2, 'unknown subcommand: usage, exit 2');
});

t.test('a CA that expires before the new serving certificate would is replaced, and the CLI says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-certs-'));
  const now = new Date();
  runGenerate({ out: dir, service: 's', namespace: 'n', dns: [], ips: [], days: 30, caDays: 40 }, now);
  const old = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
  // 365 days asked, the CA has 40 left: reusing it would cut the serving cert to 40 days.
  const r = runGenerate({ out: dir, service: 's', namespace: 'n', dns: [], ips: [], days: 365, caDays: 3650 }, now);
  t.equal(r.caReused, false, 'not reused');
  t.equal(r.caReplaced, true, 'an existing CA was replaced');
  t.not(new X509Certificate(readFileSync(join(dir, 'ca.crt'))).fingerprint256, old.fingerprint256, 'a new CA');
  const days = (certInfo(readFileSync(join(dir, 'tls.crt'), 'utf8')).notAfter.getTime() - now.getTime()) / 86_400_000;
  t.ok(days > 364, `the serving cert gets its ${days.toFixed(0)} days`);
  // A CA that outlives the new serving cert is kept.
  t.equal(runGenerate({ out: dir, service: 's', namespace: 'n', dns: [], ips: [], days: 365, caDays: 3650 }, now).caReused, true);

  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  const short = mkdtempSync(join(tmpdir(), 'sluice-certs-'));
  runGenerate({ out: short, service: 's', namespace: 'n', dns: [], ips: [], days: 5, caDays: 10 });
  t.equal(certsCommand(['generate', '--out', short, '--service', 's', '--namespace', 'n'], sink), 0);
  t.match(out, /the CA in .*ca\.crt expires .* before the new serving certificate would; wrote a new CA.*update caBundle/);
});

t.test('a serving certificate never outlives its CA', async (t) => {
  const ca = generateCa({ validDays: 10 });
  const leaf = generateServing({ ca, service: 's', namespace: 'n', validDays: 365 });
  t.equal(certInfo(leaf.certPem).notAfter.getTime(), certInfo(ca.certPem).notAfter.getTime());
  t.ok(signedBy(leaf.certPem, ca.certPem));
  t.notOk(signedBy(leaf.certPem, generateCa({ validDays: 10 }).certPem), 'not signed by another CA');
  t.match(certInfo(leaf.certPem), { isCa: false, dnsNames: ['s', 's.n', 's.n.svc', 's.n.svc.cluster.local'], subjectCN: 's.n.svc' });
});

t.test('keys are 2048-bit RSA unless a caller asks for another size', async (t) => {
  const bits = (keyPem: string): number | undefined => createPrivateKey(keyPem).asymmetricKeyDetails?.modulusLength;
  const ca = generateCa({ validDays: 10 });
  const leaf = generateServing({ ca, service: 's', namespace: 'n', validDays: 5 });
  t.same([bits(ca.keyPem), bits(leaf.keyPem)], [2048, 2048], 'the default');
  const small = generateCa({ validDays: 10, keyBits: 1024 });
  const smallLeaf = generateServing({ ca: small, service: 's', namespace: 'n', validDays: 5, keyBits: 1024 });
  t.same([bits(small.keyPem), bits(smallLeaf.keyPem)], [1024, 1024], 'keyBits');
  t.ok(signedBy(smallLeaf.certPem, small.certPem), 'and the chain still verifies');
});

t.test('serial numbers are positive, minimal DER integers (a leading 0x00 before a byte < 0x80 is illegal padding)', async (t) => {
  let bad = 0;
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.from(serialHex(), 'hex');
    if (b.length !== 16 || b[0]! >= 0x80 || (b[0] === 0 && b[1]! < 0x80)) bad++;
  }
  t.equal(bad, 0, 'no serial that node:crypto would refuse to parse');
});
