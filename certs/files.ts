// Writing and reading certificate files: keys 0600, certificates 0644, each written to a
// temporary file and renamed into place so a reader never sees half a PEM.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyPairPem } from './generate.js';

export const FILES = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

export function writeSecretFile(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode); // the umask may have narrowed or the file pre-existed
  renameSync(tmp, path);
}

export function writePair(dir: string, certName: string, keyName: string, pair: KeyPairPem): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeSecretFile(join(dir, keyName), pair.keyPem, 0o600);
  writeSecretFile(join(dir, certName), pair.certPem, 0o644);
}

/** The CA in `dir`, if both of its files are there. */
export function readCa(dir: string): KeyPairPem | null {
  const c = join(dir, FILES.caCert);
  const k = join(dir, FILES.caKey);
  if (!existsSync(c) || !existsSync(k)) return null;
  return { certPem: readFileSync(c, 'utf8'), keyPem: readFileSync(k, 'utf8') };
}
