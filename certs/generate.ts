// Certificate generation with node-forge: a self-signed CA and a serving certificate
// for the webhook Service signed by it. forge builds the X.509 structure; the RSA work
// (2048-bit key generation, signing) is done by node:crypto, where forge's pure-JS RSA
// takes seconds per key and a quarter second per signature.
// No file or network I/O here.
import { constants, createPrivateKey, generateKeyPairSync, privateEncrypt, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface CertInfo {
  notBefore: Date;
  notAfter: Date;
  subjectCN: string;
  issuerCN: string;
  dnsNames: string[];
  ips: string[];
  isCa: boolean;
}

export const DAY_MS = 86_400_000;

// forge writes CRLF line ends; PEM files and caBundles conventionally use LF.
const pem = (c: forge.pki.Certificate): string => forge.pki.certificateToPem(c).replace(/\r\n/g, '\n');

export interface Keys {
  publicKey: forge.pki.rsa.PublicKey;
  keyPem: string;
}

/** RSA modulus length of the keys sluice generates. */
export const DEFAULT_KEY_BITS = 2048;

/** A new RSA key pair: the public half for forge's certificate, the private one as PKCS#1 PEM. */
export function newKeys(bits = DEFAULT_KEY_BITS): Keys {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()) as forge.pki.rsa.PublicKey,
    keyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  };
}

// DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256; the digest follows.
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * A signer forge's cert.sign() accepts (it calls key.sign(md) with the finished digest),
 * signing with node:crypto: forge's pure-JS RSA takes a quarter second per signature.
 */
export function nodeSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  const key = createPrivateKey(keyPem);
  const sign = (md: forge.md.MessageDigest): string => {
    const info = Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')]);
    return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, info).toString('binary');
  };
  return { sign } as unknown as forge.pki.rsa.PrivateKey;
}

// Positive 128-bit serial, minimal in DER: the first byte in 0x40..0x7f keeps it positive
// and never 0x00 (a 0x00 before a byte < 0x80 is "illegal padding" to node:crypto/OpenSSL;
// the old '0' + hex form gave that about once in 32 certificates).
export function serialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b.toString('hex');
}
const serial = serialHex;

export interface CaOptions {
  commonName?: string;
  validDays: number;
  now?: Date;
  /** RSA modulus length (default 2048). Tests of rotation decisions use 1024: a 2048-bit key takes ~170 ms of CPU to generate, a 1024-bit one ~10 ms. */
  keyBits?: number;
}

export function generateCa(o: CaOptions): KeyPairPem {
  const now = o.now ?? new Date();
  const keys = newKeys(o.keyBits);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  // Backdated a little so a fresh CA is valid on machines whose clocks lag.
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(now.getTime() + o.validDays * DAY_MS);
  const attrs = [
    { name: 'commonName', value: o.commonName ?? `sluice-ca-${now.toISOString().slice(0, 10)}` },
    { name: 'organizationName', value: 'sluice' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(nodeSigner(keys.keyPem), forge.md.sha256.create());
  return { certPem: pem(cert), keyPem: keys.keyPem };
}

/** The DNS names a Service is reached by, in-cluster. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export interface ServingOptions {
  ca: KeyPairPem;
  service: string;
  namespace: string;
  /** Extra DNS names and IP addresses. */
  dns?: string[];
  ips?: string[];
  validDays: number;
  now?: Date;
  /** RSA modulus length (default 2048), as for generateCa. */
  keyBits?: number;
}

export class CertError extends Error {
  override name = 'CertError';
}

export function generateServing(o: ServingOptions): KeyPairPem {
  const now = o.now ?? new Date();
  for (const ip of o.ips ?? []) if (isIP(ip) === 0) throw new CertError(`--ip ${ip} is not an IP address; give one like 10.0.0.5 or ::1`);
  const caCert = forge.pki.certificateFromPem(o.ca.certPem);
  const keys = newKeys(o.keyBits);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  // Never outlive the CA: a chain is only as valid as its shortest link.
  cert.validity.notAfter = new Date(Math.min(now.getTime() + o.validDays * DAY_MS, caCert.validity.notAfter.getTime()));
  const dns = [...new Set([...serviceDnsNames(o.service, o.namespace), ...(o.dns ?? [])])];
  cert.setSubject([{ name: 'commonName', value: `${o.service}.${o.namespace}.svc` }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [...dns.map((value) => ({ type: 2, value })), ...(o.ips ?? []).map((ip) => ({ type: 7, ip }))] },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(nodeSigner(o.ca.keyPem), forge.md.sha256.create());
  return { certPem: pem(cert), keyPem: keys.keyPem };
}

/** What rotation decisions need from a certificate. */
export function certInfo(certPem: string): CertInfo {
  const c = forge.pki.certificateFromPem(certPem);
  const san = c.getExtension('subjectAltName') as { altNames?: Array<{ type: number; value?: string; ip?: string }> } | null;
  const bc = c.getExtension('basicConstraints') as { cA?: boolean } | null;
  const cn = (attrs: forge.pki.CertificateField[]): string => String(attrs.find((a) => a.name === 'commonName')?.value ?? '');
  return {
    notBefore: c.validity.notBefore,
    notAfter: c.validity.notAfter,
    subjectCN: cn(c.subject.attributes),
    issuerCN: cn(c.issuer.attributes),
    dnsNames: (san?.altNames ?? []).filter((a) => a.type === 2).map((a) => a.value ?? ''),
    ips: (san?.altNames ?? []).filter((a) => a.type === 7).map((a) => a.ip ?? ''),
    isCa: bc?.cA === true,
  };
}

/** True when `certPem` was signed by the CA in `caPem`. */
export function signedBy(certPem: string, caPem: string): boolean {
  try {
    const ca = forge.pki.certificateFromPem(caPem);
    return ca.verify(forge.pki.certificateFromPem(certPem));
  } catch {
    return false;
  }
}
