// Swapping the HTTPS listener's certificate without a restart (tls.Server.setSecureContext):
// from PEMs handed over by the self-provisioner, or from the https.certFile/keyFile files
// when they change on disk (a mounted Secret updated by cert-manager or by hand).
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import type { KeyPairPem } from './generate.js';

/**
 * The TLS 1.2 suites accepted: ECDHE key exchange (forward secrecy) with AEAD ciphers
 * only, as Mozilla's "intermediate" profile; no static-RSA suites such as AES128-SHA.
 * TLS 1.3 suites are not affected by this list (all of them have forward secrecy).
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** What setSecureContext needs; TLS 1.2 is the floor and the suites are those above, as at start. */
export function secureContextOptions(pair: KeyPairPem): SecureContextOptions {
  return { cert: pair.certPem, key: pair.keyPem, minVersion: 'TLSv1.2', ciphers: TLS12_CIPHERS };
}

/** The part of tls.Server (and https.Server) that takes a new certificate. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

export function reloadCertificate(server: SecureContextTarget, pair: KeyPairPem): void {
  server.setSecureContext(secureContextOptions(pair));
}

/**
 * Polls the two files (polling, because Secret volumes swap a symlink, which inotify on
 * the file misses) and reloads when either changes. A half-written or mismatched pair
 * is reported and the old certificate stays. Returns a stop function.
 */
export function watchCertFiles(
  certFile: string,
  keyFile: string,
  server: SecureContextTarget,
  onEvent: (err: Error | null) => void,
  intervalMs = 10_000,
): () => void {
  const reload = (): void => {
    try {
      reloadCertificate(server, { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') });
      onEvent(null);
    } catch (e) {
      onEvent(e as Error);
    }
  };
  const opts = { interval: intervalMs, persistent: false };
  watchFile(certFile, opts, reload);
  watchFile(keyFile, opts, reload);
  return () => {
    unwatchFile(certFile, reload);
    unwatchFile(keyFile, reload);
  };
}
