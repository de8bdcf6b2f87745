// The leader marks its own pod sluice.io/leader=true, so that the extender's Service
// (manifests: selector sluice.io/leader: "true") sends kube-scheduler only to the replica
// whose assume ledger counts the binds; the label goes when leadership goes. The pod is
// named by the downward API (POD_NAME, POD_NAMESPACE); outside a pod there is nothing to
// label. A failed patch is retried on the next change and logged; followers also refuse
// extender calls themselves, so a stale label costs retries, never an overcommit.
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';

export const LABEL_LEADER = 'sluice.io/leader';

export class LeaderLabel {
  private readonly core: CoreV1Api;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    kc: KubeConfig,
    private readonly pod: { namespace: string; name: string },
    private readonly log: Logger,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Sets or removes the label; changes are applied in order. */
  set(leading: boolean): Promise<void> {
    this.chain = this.chain.then(() => this.patch(leading));
    return this.chain;
  }

  /** Resolves when every change asked for so far has been tried. */
  settled(): Promise<void> {
    return this.chain;
  }

  private async patch(leading: boolean): Promise<void> {
    const { namespace, name } = this.pod;
    try {
      await this.core.patchNamespacedPod(
        { name, namespace, body: { metadata: { labels: { [LABEL_LEADER]: leading ? 'true' : null } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      this.log.info({ pod: `${namespace}/${name}`, leader: leading }, leading ? 'labelled this pod as the leader' : 'removed the leader label from this pod');
    } catch (e) {
      this.log.warn(
        { pod: `${namespace}/${name}`, err: (e as Error).message },
        `cannot ${leading ? 'set' : 'remove'} label ${LABEL_LEADER} on this pod; the extender Service may route to the wrong replica, which answers with a retryable error`,
      );
    }
  }
}
