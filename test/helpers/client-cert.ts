// A client certificate (extKeyUsage clientAuth) signed by a CA, as kube-scheduler or
// kube-apiserver would present to sluice. The RSA work is node:crypto's, as in certs/generate
// (forge's pure-JS key generation took seconds of CPU per certificate).
import forge from 'node-forge';
import { newKeys, nodeSigner, serialHex, type KeyPairPem } from '../../certs/generate.js';

export function clientCert(ca: KeyPairPem, cn: string): KeyPairPem {
  const keys = newKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialHex();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  cert.setIssuer(forge.pki.certificateFromPem(ca.certPem).subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(nodeSigner(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}
