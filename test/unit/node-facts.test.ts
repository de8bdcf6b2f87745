import t from 'tap';
import { nodeFacts } from '../../cluster/node-facts.js';
import { fixture, gpuNode } from '../helpers/k8s.js';
import type { V1Node } from '@kubernetes/client-node';

t.test('reads GPUs, model and memory from a captured node', async (t) => {
  const body = fixture<{ Nodes: { items: V1Node[] } }>('scheduler-extender/filter-full-nodes-1.json');
  const f = nodeFacts(body.Nodes.items[0]!, ['nvidia.com/gpu', 'amd.com/gpu']);
  t.equal(f.name, 'gpu-node-1');
  t.same(f.allocatable, { 'nvidia.com/gpu': 8, 'amd.com/gpu': 0 });
  t.equal(f.product, 'NVIDIA-A100-SXM4-80GB');
  t.equal(f.memoryMiB, 81920);
  t.equal(f.unusable, null);
});

t.test('health: disabled label, cordon, NotReady, missing condition', async (t) => {
  const R = ['nvidia.com/gpu'];
  t.match(nodeFacts(gpuNode('n', { labels: { 'sluice.io/gpu-disabled': 'true' } }), R).unusable, /disabled by label/);
  t.equal(nodeFacts(gpuNode('n', { labels: { 'sluice.io/gpu-disabled': 'false' } }), R).unusable, null);
  t.equal(nodeFacts(gpuNode('n', { cordoned: true }), R).unusable, 'node is cordoned');
  t.match(nodeFacts(gpuNode('n', { ready: false }), R).unusable, /NotReady \(KubeletNotReady\)/);
  const bare = gpuNode('n');
  bare.status!.conditions = [];
  t.match(nodeFacts(bare, R).unusable, /no Ready condition/);
});
