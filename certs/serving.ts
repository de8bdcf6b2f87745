// How `sluice serve` gets and refreshes the HTTPS listener's certificate:
// - certs.selfProvision: from the Secret kept by CertProvisioner (written to a private
//   temporary directory for the listener's start, then swapped in memory on rotation);
// - https.certFile/keyFile: from those files, reloaded when they change on disk;
// - neither: plain HTTP (the extender alone can run so; kube-apiserver needs HTTPS).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { SluiceConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { CertError } from './generate.js';
import { FILES, writePair } from './files.js';
import { CertProvisioner } from './provision.js';
import { reloadCertificate, watchCertFiles, type SecureContextTarget } from './reload.js';

export interface ServingCert {
  /** The config to start the listener with (https.certFile/keyFile filled in when provisioned). */
  config: SluiceConfig;
  /** Starts reloading into the running HTTPS server. */
  attach(server: SecureContextTarget): void;
  stop(): void;
}

export async function prepareServingCert(config: SluiceConfig, kc: KubeConfig | null, log: Logger, metrics: Metrics): Promise<ServingCert> {
  if (config.certs.selfProvision) {
    if (!kc)
      throw new CertError(
        'certs.selfProvision needs a Kubernetes cluster to keep its Secret in; turn it off with a snapshot, or use `sluice certs generate` and https.certFile/keyFile',
      );
    const provisioner = new CertProvisioner(kc, config.certs, log, metrics, { dns: config.certs.extraDns, ips: config.certs.extraIps });
    const pair = await provisioner.ensure();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-')); // mode 0700
    writePair(dir, FILES.cert, FILES.key, pair);
    return {
      config: { ...config, https: { ...config.https, certFile: join(dir, FILES.cert), keyFile: join(dir, FILES.key) } },
      attach(server) {
        provisioner.onServing = (next) => {
          reloadCertificate(server, next);
          log.info('serving certificate rotated and reloaded without a restart');
        };
        provisioner.start();
      },
      stop: () => provisioner.stop(),
    };
  }
  const { certFile, keyFile } = config.https;
  if (certFile === '' || keyFile === '') return { config, attach: () => undefined, stop: () => undefined };
  let unwatch: (() => void) | null = null;
  return {
    config,
    attach(server) {
      unwatch = watchCertFiles(certFile, keyFile, server, (err) => {
        if (err)
          log.warn({ certFile, keyFile, err: err.message }, `new certificate files cannot be loaded (${err.message}); still serving the previous certificate`);
        else log.info({ certFile }, 'certificate files changed: reloaded without a restart');
      });
    },
    stop: () => unwatch?.(),
  };
}
