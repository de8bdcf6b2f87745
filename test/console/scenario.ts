// The cluster the console's browser test looks at: sluice serve() on the stand-in apiserver
// with Postgres (test/queue-live/harness.ts), two teams, running, waiting and preempted
// jobs, an unhealthy node; and a 5,000-node, 40,000-GPU snapshot for the render time.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { StandInApiserver, type RecordedRequest } from '../../bench/apiserver/standin.js';
import { gpuNode, gpuPod } from '../helpers/k8s.js';
import { waitFor } from '../store/helpers.js';
import { startLive, type Live } from '../queue-live/harness.js';

export const ADMIN_TOKEN = 'test-token';
/** Kubernetes tokens the stand-in's TokenReview accepts, and who they belong to. */
export const KUBE_USERS: Record<string, { username: string; groups: string[] }> = {
  'alice-token': { username: 'alice', groups: ['system:authenticated'] },
  'ops-token': { username: 'olga', groups: ['system:authenticated', 'sluice:admins'] },
};
/** RBAC of the stand-in: who may list pods where. */
const MAY_LIST_PODS: Record<string, string[]> = { alice: ['team-a'] };

/**
 * The apiserver's authentication and authorization endpoints, answered from the tables
 * above: TokenReview (who a token is) and SubjectAccessReview (may they list pods).
 */
function answerReviews(r: RecordedRequest): { status: number; body: unknown } | undefined {
  if (r.method !== 'POST') return undefined;
  const body = r.body as { spec?: { token?: string; user?: string; resourceAttributes?: { namespace?: string; verb?: string; resource?: string } } };
  if (r.path === '/apis/authentication.k8s.io/v1/tokenreviews') {
    const who = KUBE_USERS[body.spec?.token ?? ''];
    return {
      status: 201,
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status: who ? { authenticated: true, user: who } : { authenticated: false } },
    };
  }
  if (r.path === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
    const a = body.spec?.resourceAttributes;
    const allowed = a?.verb === 'list' && a.resource === 'pods' && (MAY_LIST_PODS[body.spec?.user ?? ''] ?? []).includes(a.namespace ?? '');
    return { status: 201, body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', status: { allowed } } };
  }
  return undefined;
}

export const A100 = 'NVIDIA-A100-SXM4-80GB';
export const H100 = 'NVIDIA-H100-80GB-HBM3';
const row = (guaranteed: number, bestEffortCap: number, model = '') => ({
  resource: 'nvidia.com/gpu',
  model,
  guaranteed,
  bestEffortCap,
  perJobMax: 0,
  perUserMax: 0,
});

/**
 * team-a: a guaranteed job and best-effort pods; a guaranteed 8-GPU job "train" preempts
 * three best-effort pods through the extender's preempt verb; "big" then waits for quota.
 * team-b: "b-run" runs on the H100 node on H100 quota borrowed from prod (same cohort)
 * and "b-wait" waits for quota. bad1 is NotReady. Two binds fail before their pods run:
 * g-keep's to a node that is gone (g9), b-run's to bad1.
 */
export async function startScenario(): Promise<Live> {
  const api = await StandInApiserver.start();
  api.onRequest(answerReviews);
  for (const n of [
    gpuNode('g1', { gpus: 8, product: A100 }),
    gpuNode('g2', { gpus: 8, product: A100 }),
    gpuNode('h1', { gpus: 4, product: H100 }),
    gpuNode('bad1', { gpus: 8, product: A100, ready: false }),
  ]) {
    api.create('nodes', n);
  }
  const live = await startLive({
    api,
    queues: {
      lab: { limits: [row(0, 16)] },
      // Quota per GPU model: an any-model row and an H100 row; research's H100 quota borrows
      // from prod's H100 row (cohort rows lend per resource and model).
      prod: { cohort: 'training', weight: 2, limits: [row(10, 0), row(4, 0, H100)] },
      research: { cohort: 'training', limits: [row(1, 0, A100), row(1, 0, H100)] },
    },
    config: { api: { token: ADMIN_TOKEN, tokenReview: true, adminGroups: ['sluice:admins'] } },
  });
  /** Released, then (when `failOn`) a bind kube-scheduler sends that fails there, then bound on `node`. */
  const place = async (name: string, node: string, o: Parameters<Live['submit']>[1], failOn?: string) => {
    live.submit(name, o);
    await waitFor(() => !live.gated(name, o.namespace), 15000);
    if (failOn) await failedBind(live, name, o.namespace ?? 'team-a', failOn);
    live.bind(name, node, o.namespace);
  };
  await place('g-keep', 'g1', { queue: 'prod', gpus: 2 }, 'g9');
  await place('be-a', 'g1', { queue: 'lab', gpus: 2, qos: 'best-effort', user: 'bob' });
  await place('be-d', 'g2', { queue: 'lab', gpus: 4, qos: 'best-effort', user: 'bob' });
  await place('be-e', 'g2', { queue: 'lab', gpus: 2, qos: 'best-effort', user: 'bob' });
  await place('be-f', 'g2', { queue: 'lab', gpus: 2, qos: 'best-effort', user: 'bob' });
  await place('b-run', 'h1', { queue: 'research', gpus: 2, namespace: 'team-b', user: 'carol' }, 'bad1');

  // A guaranteed job over best-effort-filled nodes: released, then kube-scheduler asks the
  // extender which pods to preempt, and deletes them.
  live.submit('train', { queue: 'prod', gpus: 8, priority: 1000 });
  await waitFor(() => !live.gated('train'), 15000);
  const pod = (n: string): V1Pod => live.api.get<V1Pod>('pods', 'team-a', n)!;
  const victims = (names: string[]) => ({ Pods: names.map((n) => ({ UID: pod(n).metadata!.uid! })), NumPDBViolations: 0 });
  const res = await fetch(`${live.running.apiUrl}/scheduler/preempt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      Pod: pod('train'),
      NodeNameToVictims: null,
      NodeNameToMetaVictims: { g1: victims(['g-keep', 'be-a']), g2: victims(['be-d', 'be-e', 'be-f']) },
    }),
  });
  if (res.status !== 200) throw new Error(`preempt answered ${res.status}: ${await res.text()}`);
  const answer = (await res.json()) as { NodeNameToMetaVictims?: Record<string, unknown> };
  if (!answer.NodeNameToMetaVictims?.g2) throw new Error(`the extender chose no victims on g2: ${JSON.stringify(answer)}`);
  for (const v of ['be-d', 'be-e', 'be-f']) live.api.delete('pods', 'team-a', v);
  live.bind('train', 'g2');

  live.submit('big', { queue: 'prod', gpus: 8, user: 'alice' });
  live.submit('b-wait', { queue: 'research', gpus: 4, namespace: 'team-b', user: 'carol' });
  const settled = await waitFor(async () => {
    const rows = await live.store.pool.query(`SELECT (SELECT count(*)::int FROM preemptions) AS n, (SELECT count(*)::int FROM bind_failures) AS f`);
    const s = live.running.queue?.current();
    return rows.rows[0].n > 0 && rows.rows[0].f === 2 && (s?.waiting.get('prod')?.length ?? 0) === 1 && (s?.waiting.get('research')?.length ?? 0) === 1;
  }, 15000);
  if (settled < 0) throw new Error('the scenario did not settle: no preemption or not both failed binds recorded, or big and b-wait not waiting');
  return live;
}

/** kube-scheduler's bind of a released pod to a node that no longer takes it (gone, NotReady): sluice refuses it. */
async function failedBind(live: Live, name: string, namespace: string, node: string): Promise<void> {
  const pod = live.api.get<V1Pod>('pods', namespace, name)!;
  const res = await fetch(`${live.running.apiUrl}/scheduler/bind`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ PodName: name, PodNamespace: namespace, PodUID: pod.metadata!.uid, Node: node }),
  });
  const answer = (await res.json()) as { Error?: string };
  if (!answer.Error) throw new Error(`the bind of ${namespace}/${name} to ${node} was expected to fail, and answered ${res.status} ${JSON.stringify(answer)}`);
}

/**
 * A cluster snapshot of `nodes` 8-GPU nodes (three A100 for two H100) with pods on most of
 * them, for `sluice serve --cluster-snapshot`. Returns the file's path.
 */
export function bigSnapshot(nodes: number): string {
  const items: Array<V1Node | V1Pod> = [];
  for (let i = 0; i < nodes; i++) {
    const name = `node-${String(i).padStart(5, '0')}`;
    items.push({ ...gpuNode(name, { gpus: 8, product: i % 5 < 3 ? A100 : H100, ready: i % 997 !== 0 }), kind: 'Node' } as V1Node);
    // 0-8 GPUs in use per node, in pods of 1, 2 and 4 GPUs.
    let used = 0;
    const want = (i * 7) % 9;
    for (const size of [4, 2, 1, 1]) {
      if (used + size > want) continue;
      used += size;
      items.push({ ...gpuPod(`p-${i}-${used}`, { node: name, gpus: size, labels: { 'sluice.io/queue': 'lab' } }), kind: 'Pod' } as V1Pod);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-console-'));
  const file = join(dir, 'snapshot.json');
  writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  return file;
}
