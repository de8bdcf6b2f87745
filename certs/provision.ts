// In-cluster self-provisioning (config certs.selfProvision): the CA and serving cert live
// in a Secret (created if absent), caBundle is patched into sluice's
// Mutating/ValidatingWebhookConfiguration, and rotation follows rotation.ts. This file is
// the thin Kubernetes edge; the decisions (planRotation, caBundle, caBundlePatch) are pure
// and tested without a cluster. Two replicas racing are settled by resourceVersion: the
// loser gets 409, re-reads and adopts what the winner wrote.
import { AdmissionregistrationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { certInfo, type KeyPairPem } from './generate.js';
import { applyRotation, caBundle, checkPolicy, planRotation, stateFromSecretData, stateToSecretData, type CertState, type RotationPolicy } from './rotation.js';
import type { SluiceConfig } from '../config/schema.js';

/** What the provisioner reads of the `certs` configuration section (config/schema.ts). */
export type CertsConfig = Omit<SluiceConfig['certs'], 'selfProvision' | 'extraDns' | 'extraIps'>;

interface WebhookConfigLike {
  metadata?: { resourceVersion?: string };
  webhooks?: Array<{ clientConfig?: { caBundle?: string } }>;
}

/** JSON patch setting every webhook's caBundle (guarded by resourceVersion); [] when all match. */
export function caBundlePatch(cfg: WebhookConfigLike, bundleB64: string): Array<{ op: string; path: string; value?: unknown }> {
  const ops: Array<{ op: string; path: string; value?: unknown }> = [];
  (cfg.webhooks ?? []).forEach((w, i) => {
    if (w.clientConfig?.caBundle !== bundleB64) ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundleB64 });
  });
  if (ops.length > 0 && cfg.metadata?.resourceVersion) ops.unshift({ op: 'test', path: '/metadata/resourceVersion', value: cfg.metadata.resourceVersion });
  return ops;
}

const statusOf = (e: unknown): number | undefined => (e as { code?: number })?.code;

export class CertProvisioner {
  private readonly core: CoreV1Api;
  private readonly admission: AdmissionregistrationV1Api;
  private readonly policy: RotationPolicy;
  private timer: NodeJS.Timeout | null = null;
  private served: string | null = null;
  /** Called with a new serving pair after the first ensure() (reload the listener). */
  onServing: ((pair: KeyPairPem) => void) | null = null;

  constructor(
    kc: KubeConfig,
    private readonly cfg: CertsConfig,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    extra: { dns?: string[]; ips?: string[] } = {},
    private readonly now: () => Date = () => new Date(),
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.admission = kc.makeApiClient(AdmissionregistrationV1Api);
    this.policy = {
      service: cfg.service,
      namespace: cfg.namespace,
      dns: extra.dns ?? [],
      ips: extra.ips ?? [],
      servingValidDays: cfg.servingValidDays,
      servingRenewDays: cfg.servingRenewDays,
      caValidDays: cfg.caValidDays,
      caRenewDays: cfg.caRenewDays,
    };
    checkPolicy(this.policy);
  }

  /** Brings Secret, webhook caBundles and the served certificate up to date; returns the serving pair. */
  async ensure(): Promise<KeyPairPem> {
    const { namespace, secretName: name } = this.cfg;
    for (let attempt = 0; ; attempt++) {
      const secret = await this.core.readNamespacedSecret({ name, namespace }).catch((e: unknown) => {
        if (statusOf(e) === 404) return null;
        throw e;
      });
      let state: CertState = stateFromSecretData(secret?.data);
      const steps = planRotation(state, this.policy, this.now());
      if (steps.length > 0) {
        state = applyRotation(state, steps, this.policy, this.now());
        try {
          await this.write(secret, state);
        } catch (e) {
          if (statusOf(e) === 409 && attempt < 3) continue; // another replica wrote first: adopt its result
          throw e;
        }
        this.log.info({ secret: `${namespace}/${name}`, steps }, `certificates rotated: ${steps.map((s) => `${s.step} (${s.why})`).join('; ')}`);
      }
      const bundle = caBundle(state);
      await this.patchBundles(bundle);
      if (this.served === null) {
        this.log.info(
          { caBundle: Buffer.from(bundle).toString('base64') },
          "webhook certificates ready; caBundle (base64) for the scheduler's extender tlsConfig is in this line",
        );
      }
      const serving = state.serving!;
      this.metrics.certExpirySeconds.set({ kind: 'ca' }, certInfo(state.ca!.certPem).notAfter.getTime() / 1000);
      this.metrics.certExpirySeconds.set({ kind: 'serving' }, certInfo(serving.certPem).notAfter.getTime() / 1000);
      if (this.served !== null && this.served !== serving.certPem) this.onServing?.(serving);
      this.served = serving.certPem;
      return serving;
    }
  }

  private async write(existing: V1Secret | null, state: CertState): Promise<void> {
    const { namespace, secretName: name } = this.cfg;
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { ...(existing?.metadata ?? {}), name, namespace, labels: { ...(existing?.metadata?.labels ?? {}), 'app.kubernetes.io/managed-by': 'sluice' } },
      data: stateToSecretData(state),
    };
    if (existing) await this.core.replaceNamespacedSecret({ name, namespace, body });
    else await this.core.createNamespacedSecret({ namespace, body });
  }

  private async patchBundles(bundlePem: string): Promise<void> {
    const b64 = Buffer.from(bundlePem).toString('base64');
    const name = this.cfg.webhookConfigName;
    const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
    const kinds = [
      {
        kind: 'MutatingWebhookConfiguration',
        read: () => this.admission.readMutatingWebhookConfiguration({ name }),
        patch: (body: object) => this.admission.patchMutatingWebhookConfiguration({ name, body }, jsonPatch),
      },
      {
        kind: 'ValidatingWebhookConfiguration',
        read: () => this.admission.readValidatingWebhookConfiguration({ name }),
        patch: (body: object) => this.admission.patchValidatingWebhookConfiguration({ name, body }, jsonPatch),
      },
    ];
    for (const k of kinds) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const cfg = await k.read().catch((e: unknown) => {
          if (statusOf(e) === 404) return null;
          throw e;
        });
        if (!cfg) {
          this.log.warn(
            { name },
            `${k.kind} ${name} does not exist; apply manifests/base/webhooks.yaml (kubectl apply -k manifests/, or the Helm chart) so kube-apiserver calls sluice`,
          );
          break;
        }
        const ops = caBundlePatch(cfg, b64);
        if (ops.length === 0) break;
        try {
          await k.patch(ops);
          this.log.info({ name, caBundle: b64 }, `caBundle of ${k.kind} ${name} updated (use the same caBundle in the scheduler's extender tlsConfig)`);
          break;
        } catch (e) {
          // 422 from the test op: someone changed it meanwhile; read again.
          if ((statusOf(e) === 422 || statusOf(e) === 409) && attempt < 2) continue;
          throw e;
        }
      }
    }
  }

  /** Re-checks every certs.checkIntervalSeconds; failures are logged and retried next time. */
  start(): void {
    this.timer = setInterval(() => {
      this.ensure().catch((e: unknown) => {
        this.log.warn({ err: (e as Error).message }, `certificate check failed (${(e as Error).message}); retrying in ${this.cfg.checkIntervalSeconds}s`);
      });
    }, this.cfg.checkIntervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
