// The HTTPS listener takes a new certificate without a restart (setSecureContext): handed
// over in memory (self-provisioning) or picked up from changed files; a client trusting
// the old and the new CA sees the switch on its next connection. TLS 1.2 stays the floor.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { fastify } from 'fastify';
import t from 'tap';
import { generateCa, generateServing, type KeyPairPem } from '../../certs/generate.js';
import { reloadCertificate, watchCertFiles, type SecureContextTarget } from '../../certs/reload.js';

const ca1 = generateCa({ validDays: 10 });
const ca2 = generateCa({ validDays: 10 });
const leaf = (ca: KeyPairPem): KeyPairPem => generateServing({ ca, service: 'sluice', namespace: 'sluice-system', ips: ['127.0.0.1'], validDays: 5 });
const a = leaf(ca1);

// The same HTTPS options server/app.ts uses.
const app = fastify({ https: { cert: a.certPem, key: a.keyPem, minVersion: 'TLSv1.2' as const } });
app.get('/ping', async () => ({ ok: true }));
const url = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
t.teardown(() => app.close());
const server = app.server as unknown as SecureContextTarget;

/** The serving certificate a fresh connection is shown, verified against `cas`. */
function peer(cas: string[], extra: Record<string, unknown> = {}): Promise<{ fingerprint: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: Number(url.port), ca: cas, servername: undefined, ...extra }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      const protocol = s.getProtocol();
      s.end();
      resolve({ fingerprint: fp, protocol });
    });
    s.on('error', reject);
  });
}
const fp = (p: KeyPairPem): string => new X509Certificate(p.certPem).fingerprint256;

t.test('setSecureContext swaps the certificate for new connections', async (t) => {
  const both = [ca1.certPem, ca2.certPem];
  t.equal((await peer(both)).fingerprint, fp(a), 'first certificate');
  const b = leaf(ca2);
  reloadCertificate(server, b);
  t.equal((await peer(both)).fingerprint, fp(b), 'new certificate after reload, same process');
  await t.rejects(peer([ca1.certPem]), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'a client trusting only the old CA no longer verifies it');
  t.equal((await peer([ca2.certPem])).fingerprint, fp(b));
  await t.rejects(
    peer(both, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' },
    'TLS 1.1 is refused after the reload too',
  );
});

t.test('changed certificate files are reloaded; a broken pair keeps the old certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-reload-'));
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const c = leaf(ca1);
  writeFileSync(certFile, c.certPem);
  writeFileSync(keyFile, c.keyPem);
  const events: Array<Error | null> = [];
  const stop = watchCertFiles(certFile, keyFile, server, (e) => events.push(e), 20);
  t.teardown(stop);
  const waitFor = async (check: () => Promise<boolean>): Promise<boolean> => {
    for (let i = 0; i < 200; i++) {
      if (await check()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };
  const d = leaf(ca2);
  await new Promise((r) => setTimeout(r, 50)); // let the watcher take its first stat
  writeFileSync(certFile, d.certPem);
  writeFileSync(keyFile, d.keyPem);
  t.ok(await waitFor(async () => (await peer([ca1.certPem, ca2.certPem])).fingerprint === fp(d)), 'the new files are served within a few polls');
  const before = events.length;
  writeFileSync(keyFile, 'not a key');
  t.ok(await waitFor(async () => events.slice(before).some((e) => e !== null)), 'a broken key is reported');
  t.equal((await peer([ca1.certPem, ca2.certPem])).fingerprint, fp(d), 'and the previous certificate is still served');
});
