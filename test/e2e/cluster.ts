// Shared by the end-to-end files: the cluster in KUBECONFIG when it is there and answers
// (else the reason the file reports itself skipped), and sluice's admin API and metrics.
import { existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { KubeConfig, PatchStrategy, VersionApi, setHeaderOptions, type CoreV1Api, type V1Node, type V1Pod } from '@kubernetes/client-node';

export async function reachableCluster(needs: string): Promise<{ kc: KubeConfig } | { skip: string }> {
  const path = process.env.KUBECONFIG;
  if (!path) return { skip: `KUBECONFIG is not set: end-to-end tests need a real cluster with ${needs}` };
  if (!path.split(':').some((p) => existsSync(p))) return { skip: `KUBECONFIG=${path} names no existing file` };
  const kc = new KubeConfig();
  kc.loadFromDefault();
  try {
    await Promise.race([kc.makeApiClient(VersionApi).getCode(), new Promise((_, rej) => setTimeout(() => rej(new Error('no answer in 5s')), 5000).unref())]);
  } catch (e) {
    return { skip: `the cluster in KUBECONFIG is not reachable (${(e as Error).message})` };
  }
  return { kc };
}

/**
 * What an end-to-end file that talks to sluice's admin API needs, from the environment: the
 * cluster (reachableCluster), SLUICE_E2E_API_URL, SLUICE_API_TOKEN, SLUICE_E2E_CA_FILE when
 * sluice's certificate needs its CA, and kubectl on PATH when `kubectlFor` says why. `skip`
 * is null when all are there, else the first thing missing, in words naming `test`.
 */
export async function sluiceTarget(o: { test: string; cluster: string; kubectlFor?: string }): Promise<{
  found: { kc: KubeConfig } | { skip: string };
  apiUrl: string | undefined;
  token: string | undefined;
  caFile: string | undefined;
  skip: string | null;
}> {
  const found = await reachableCluster(o.cluster);
  const apiUrl = process.env.SLUICE_E2E_API_URL;
  const token = process.env.SLUICE_API_TOKEN;
  const caFile = process.env.SLUICE_E2E_CA_FILE;
  const skip =
    'skip' in found
      ? found.skip
      : !apiUrl
        ? `SLUICE_E2E_API_URL is not set: ${o.test} needs the sluice admin API (e.g. https://127.0.0.1:9443)`
        : !token
          ? `SLUICE_API_TOKEN is not set: ${o.test} needs the sluice admin API token`
          : caFile && !existsSync(caFile)
            ? `SLUICE_E2E_CA_FILE=${caFile} does not exist`
            : o.kubectlFor && spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status !== 0
              ? `kubectl is not on PATH: ${o.kubectlFor}`
              : null;
  return { found, apiUrl, token, caFile, skip };
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** The sluice admin API (HTTPS with an optional CA file, or plain HTTP). */
export function sluiceApi(base: string, token: string, ca: Buffer | undefined) {
  return (method: string, path: string, body?: unknown): Promise<ApiAnswer> =>
    new Promise((resolve, reject) => {
      const url = new URL(path, base);
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (payload !== undefined) headers['content-type'] = 'application/json';
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { method, headers, ca, timeout: 5000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`sluice API ${method} ${path}: no answer in 5 s`)));
      req.on('error', reject);
      req.end(payload);
    });
}

export function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `kubectl create -f -`: kubectl prints the AdmissionReview warnings on stderr ("Warning: ..."). */
export function kubectlCreate(pod: V1Pod, extra: readonly string[] = []): Promise<{ code: number; warnings: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('kubectl', ['create', ...extra, '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.stdout.resume();
    p.on('error', reject);
    p.on('close', (code) => {
      const warnings = stderr
        .split('\n')
        .filter((l) => l.startsWith('Warning: '))
        .map((l) => l.slice('Warning: '.length));
      resolve({ code: code ?? 1, warnings, stderr });
    });
    p.stdin.end(JSON.stringify(pod));
  });
}

/**
 * A GPU node without a kubelet: a Node object labelled `sluice.io/e2e: run`, untainted,
 * with `gpus` A100s and a Ready condition in its status.
 */
export async function makeGpuNode(core: CoreV1Api, name: string, gpus: number, run: string, message: string): Promise<void> {
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  await core.createNode({
    body: {
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB',
          'nvidia.com/gpu.count': String(gpus),
          'sluice.io/e2e': run,
        },
      },
    } as V1Node,
  });
  // TaintNodesByCondition put node.kubernetes.io/not-ready on it; no node controller lifts it here.
  await core.patchNode({ name, body: { spec: { taints: null } } }, merge);
  const alloc = { cpu: '64', memory: '256Gi', pods: '110', 'nvidia.com/gpu': String(gpus) };
  const now = new Date();
  await core.patchNodeStatus(
    {
      name,
      body: {
        status: {
          capacity: alloc,
          allocatable: alloc,
          conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message, lastHeartbeatTime: now, lastTransitionTime: now }],
        },
      },
    },
    merge,
  );
}

/** Teardown shared by the e2e files: the test namespace's pods (no grace), the namespace
 * itself and the test's nodes; each step goes on when the object is already gone. */
export async function removeTestObjects(core: CoreV1Api, namespace: string, nodeNames: readonly string[]): Promise<void> {
  const pods = await core.listNamespacedPod({ namespace }).catch(() => ({ items: [] as V1Pod[] }));
  for (const p of pods.items) await core.deleteNamespacedPod({ name: p.metadata!.name!, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  for (const n of nodeNames) await core.deleteNode({ name: n }).catch(() => undefined);
}
