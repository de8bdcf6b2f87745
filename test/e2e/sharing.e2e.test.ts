// GPU shares end to end: a real kube-scheduler with sluice as extender, nodes registered as
// HAMi's device plugin registers them (hami.io/node-nvidia-register, allocatable
// nvidia.com/gpu = GPUs x split), and a node agent in this file's process doing what HAMi's
// plugin does on Allocate (test/helpers/hami-agent.ts: finds the pending pod by the node
// lock or bind phase, decodes hami.io/vgpu-devices-to-allocate as the plugin's source
// does, sets the bind phase, releases the lock). Runs only when KUBECONFIG points at a
// reachable cluster; otherwise it reports itself skipped. The queue case also needs the
// sluice admin API (SLUICE_E2E_API_URL, SLUICE_API_TOKEN, SLUICE_E2E_CA_FILE) and sluice's
// queue manager; without them it reports itself skipped. Everything it creates is removed.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { reachableCluster, removeTestObjects, sluiceApi } from './cluster.js';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { HamiAgent, hamiNode, sharePod } from '../helpers/hami-agent.js';

const NS = 'sluice-e2e-shares';
const RUN = Date.now().toString(36);
const GPU_MIB = 16384;

const found = await reachableCluster('sluice as scheduler extender with the share resources in managedResources (manifests/scheduler/local.yaml)');
if ('skip' in found) {
  t.comment(`end-to-end tests skipped: ${found.skip}`);
  t.pass('skipped: no cluster', { skip: found.skip });
} else {
  const core = found.kc.makeApiClient(CoreV1Api);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const nodes = [0, 1, 2, 3].map((i) => `sluice-e2e-hami-${i}-${RUN}`);
  const created = new Set<string>();
  const failing = new Set<string>();
  const agent = new HamiAgent(found.kc, (pod) => (failing.has(pod.metadata!.name!) ? 'failed' : 'success'));
  let stopAgent: (() => Promise<void>) | null = null;

  const makeNode = async (name: string): Promise<void> => {
    const n = hamiNode(name, { gpus: 2, memMiB: GPU_MIB, split: 10 });
    n.metadata!.labels = { ...n.metadata!.labels, 'sluice.io/e2e': RUN };
    const status = n.status!;
    delete n.status;
    await core.createNode({ body: n });
    await core.patchNodeStatus(
      {
        name,
        body: {
          status: {
            ...status,
            conditions: [
              { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'sluice e2e', lastHeartbeatTime: new Date(), lastTransitionTime: new Date() },
            ],
          },
        },
      },
      merge,
    );
  };

  const create = async (name: string, memMiB: number, cores: number, onNode?: string): Promise<void> => {
    const p = sharePod(name, { memMiB, cores, namespace: NS });
    p.spec!.nodeSelector = onNode ? { 'kubernetes.io/hostname': onNode } : { 'sluice.io/e2e': RUN };
    p.spec!.tolerations = [{ operator: 'Exists' }];
    await core.createNamespacedPod({ namespace: NS, body: p });
    created.add(name);
  };

  const read = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: NS });
  const waitFor = async (what: string, ok: () => Promise<boolean>, seconds = 60): Promise<boolean> => {
    for (let i = 0; i < seconds * 4; i++) {
      if (await ok()) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    t.comment(`timed out waiting for ${what}`);
    return false;
  };
  const phaseOf = async (name: string): Promise<string> => (await read(name)).metadata?.annotations?.['hami.io/bind-phase'] ?? '';
  const gpuOf = async (name: string): Promise<{ uuid: string; mem: number }> => {
    const list = (await read(name)).metadata?.annotations?.['hami.io/vgpu-devices-allocated'] ?? '';
    const [uuid, , mem] = list.split(',');
    return { uuid: uuid ?? '', mem: Number(mem) };
  };
  const deleteAll = async (): Promise<void> => {
    for (const name of created) await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 }).catch(() => undefined);
    created.clear();
    await waitFor('pods gone', async () => (await core.listNamespacedPod({ namespace: NS })).items.length === 0, 30);
  };

  t.before(async () => {
    await core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => undefined);
    for (const n of nodes) await makeNode(n);
    stopAgent = agent.run(nodes, 50);
  });
  t.teardown(async () => {
    await stopAgent?.();
    await deleteAll();
    for (const n of nodes) await core.deleteNode({ name: n }).catch(() => undefined);
  });

  t.test('four 0.25 pods share one GPU; a fifth goes to the next GPU', async (t) => {
    const node = nodes[0]!;
    for (let i = 0; i < 5; i++) {
      const name = `quarter-${i}-${RUN}`;
      await create(name, GPU_MIB / 4, 25, node);
      t.ok(await waitFor(`${name} allocated`, async () => (await phaseOf(name)) === 'success'), `${name} allocated by the plugin`);
    }
    const gpus = await Promise.all([0, 1, 2, 3, 4].map((i) => gpuOf(`quarter-${i}-${RUN}`)));
    t.same(
      gpus.slice(0, 4).map((g) => g.uuid),
      Array(4).fill(`GPU-${node}-0`),
      'the first four on GPU 0',
    );
    t.equal(gpus[4]!.uuid, `GPU-${node}-1`, 'the fifth on GPU 1');
    t.equal((await read(`quarter-0-${RUN}`)).spec?.nodeName, node);
    await deleteAll();
  });

  t.test('40 pods at once across 4 nodes never overcommit GPU memory', async (t) => {
    const names = Array.from({ length: 40 }, (_, i) => `burst-${i}-${RUN}`);
    await Promise.all(names.map((n) => create(n, 6000, 10)));
    // 4 nodes x 2 GPUs x 2 pods of 6000 MiB on 16384 MiB GPUs.
    t.ok(
      await waitFor('16 allocated', async () => (await Promise.all(names.map(phaseOf))).filter((p) => p === 'success').length >= 16, 120),
      '16 pods allocated',
    );
    await new Promise((r) => setTimeout(r, 3000));
    const perGpu = new Map<string, number>();
    let placed = 0;
    for (const n of names) {
      const g = await gpuOf(n);
      if (!g.uuid) continue;
      placed++;
      perGpu.set(g.uuid, (perGpu.get(g.uuid) ?? 0) + g.mem);
    }
    t.equal(placed, 16, 'exactly 16 placed');
    t.ok(
      [...perGpu.values()].every((m) => m <= GPU_MIB),
      `no GPU over ${GPU_MIB} MiB: ${JSON.stringify([...perGpu.entries()])}`,
    );
    t.equal(perGpu.size, 8, 'all 8 GPUs used');
    const pending = (await Promise.all(names.map(read))).filter((p) => !p.spec?.nodeName).length;
    t.equal(pending, 24, 'the other 24 wait unscheduled');
    await deleteAll();
  });

  t.test('a failed allocation is released and reported', async (t) => {
    const node = nodes[1]!;
    const bad = `fails-${RUN}`;
    failing.add(bad);
    await create(bad, 12000, 0, node);
    t.ok(await waitFor('failed', async () => (await phaseOf(bad)) === 'failed'), 'the plugin failed the allocation');
    const events = async () =>
      (await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${bad}` })).items.filter((e) => e.reason === 'GPUAllocationFailed');
    t.ok(await waitFor('event', async () => (await events()).length > 0, 20), 'a GPUAllocationFailed Event on the pod');
    // Both GPUs of the node can take 12000 MiB again: two such pods fit.
    for (const name of [`after-a-${RUN}`, `after-b-${RUN}`]) {
      await create(name, 12000, 0, node);
      t.ok(await waitFor(`${name} allocated`, async () => (await phaseOf(name)) === 'success'), `${name} placed on the released GPUs`);
    }
    const uuids = new Set([(await gpuOf(`after-a-${RUN}`)).uuid, (await gpuOf(`after-b-${RUN}`)).uuid]);
    t.equal(uuids.size, 2, 'one per GPU');
  });

  t.test('share pods in a queue with 1 GPU of quota: four of 0.25 go, the fifth waits until one finishes', async (t) => {
    const apiUrl = process.env.SLUICE_E2E_API_URL;
    const token = process.env.SLUICE_API_TOKEN;
    const caFile = process.env.SLUICE_E2E_CA_FILE;
    if (!apiUrl || !token || (caFile && !existsSync(caFile))) {
      t.pass('skipped: no sluice admin API', {
        skip: 'SLUICE_E2E_API_URL and SLUICE_API_TOKEN (and SLUICE_E2E_CA_FILE when set) are needed to make the queue',
      });
      return;
    }
    const api = sluiceApi(apiUrl, token, caFile ? readFileSync(caFile) : undefined);
    const queue = `e2e-shares-${RUN}`;
    const qns = `sluice-e2e-shareq-${RUN}`;
    const node = nodes[3]!;
    t.teardown(async () => {
      await removeTestObjects(core, qns, []);
      await api('DELETE', `/api/v1/queues/${queue}`).catch(() => undefined);
    });
    const put = await api('PUT', `/api/v1/queues/${queue}`, { limits: [{ resource: 'nvidia.com/gpu', guaranteed: 1, bestEffortCap: 0 }] });
    t.ok(put.status === 201 || put.status === 200, `queue ${queue} with 1 guaranteed GPU (${put.status})`);
    await core.createNamespace({ body: { metadata: { name: qns, labels: { 'sluice.io/managed': 'true', 'sluice.io/default-queue': queue } } } });
    await new Promise((r) => setTimeout(r, 1000)); // sluice sees the queue (NOTIFY) and the namespace
    const names = [0, 1, 2, 3, 4].map((i) => `quarter-q${i}-${RUN}`);
    const readQ = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: qns });
    const gated = async (name: string): Promise<boolean> => ((await readQ(name)).spec?.schedulingGates ?? []).some((g) => g.name === 'sluice.io/queue');
    const phase = async (name: string): Promise<string> => (await readQ(name)).metadata?.annotations?.['hami.io/bind-phase'] ?? '';
    for (const name of names) {
      const p = sharePod(name, { memMiB: GPU_MIB / 4, cores: 25, namespace: qns });
      p.spec!.nodeSelector = { 'kubernetes.io/hostname': node };
      p.spec!.tolerations = [{ operator: 'Exists' }];
      await core.createNamespacedPod({ namespace: qns, body: p });
      await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has 1 s resolution: FIFO by name order
    }
    t.ok(
      await waitFor('four released and allocated', async () => (await Promise.all(names.slice(0, 4).map(phase))).every((ph) => ph === 'success'), 60),
      'the first four are released, bound and allocated',
    );
    await new Promise((r) => setTimeout(r, 2000)); // a wrong release of the fifth would show by now
    t.ok(await gated(names[4]!), 'the fifth still carries the gate');
    const jobs = await api('GET', `/api/v1/queues/${queue}/jobs`);
    t.match(
      jobs.body,
      {
        waiting: [
          { name: `pod-${names[4]}`, waitingFor: 'quota', gpus: 0.25, reason: `queue ${queue}: 1 of 1 guaranteed nvidia.com/gpu in use, job needs 0.25` },
        ],
      },
      'waiting for quota, 4 x 0.25 = 1 GPU held',
    );
    const usage = await api('GET', `/api/v1/queues/${queue}/usage`);
    t.match(usage.body, { totals: [{ resource: 'nvidia.com/gpu', guaranteed: 1 }] }, 'usage: 1 GPU');
    const gpus = await Promise.all(
      names.slice(0, 4).map(async (n) => ((await readQ(n)).metadata?.annotations?.['hami.io/vgpu-devices-allocated'] ?? '').split(',')[0]),
    );
    t.same(gpus, Array(4).fill(`GPU-${node}-0`), 'the four share GPU 0');

    const at = Date.now();
    await core.patchNamespacedPodStatus({ name: names[1]!, namespace: qns, body: { status: { phase: 'Succeeded' } } }, merge);
    t.ok(await waitFor('the fifth released', async () => !(await gated(names[4]!)), 20), `the fifth released ${Date.now() - at} ms after one quarter finished`);
    t.ok(await waitFor('the fifth allocated', async () => (await phase(names[4]!)) === 'success', 60), 'and allocated by the plugin');
    t.equal((await readQ(names[4]!)).spec?.nodeName, node);
  });
}
