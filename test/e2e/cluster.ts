// Shared by the end-to-end files: the cluster in KUBECONFIG when it is there and answers,
// else the reason the file reports itself skipped.
import { existsSync } from 'node:fs';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';

export async function reachableCluster(needs: string): Promise<{ kc: KubeConfig } | { skip: string }> {
  const path = process.env.KUBECONFIG;
  if (!path) return { skip: `KUBECONFIG is not set: end-to-end tests need a real cluster with ${needs}` };
  if (!path.split(':').some((p) => existsSync(p))) return { skip: `KUBECONFIG=${path} names no existing file` };
  const kc = new KubeConfig();
  kc.loadFromDefault();
  try {
    await Promise.race([
      kc.makeApiClient(VersionApi).getCode(),
      new Promise((_, rej) => setTimeout(() => rej(new Error('no answer in 5s')), 5000).unref()),
    ]);
  } catch (e) {
    return { skip: `the cluster in KUBECONFIG is not reachable (${(e as Error).message})` };
  }
  return { kc };
}
