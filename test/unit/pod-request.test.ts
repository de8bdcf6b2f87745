import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { podGpuRequests, PodRequestError } from '../../cluster/pod-request.js';

const R = ['nvidia.com/gpu', 'amd.com/gpu'];
const pod = (spec: object): V1Pod => ({ metadata: { name: 'p' }, spec }) as V1Pod;
const c = (name: string, gpu?: string, extra: object = {}) => ({
  name,
  ...extra,
  resources: gpu === undefined ? {} : { limits: { 'nvidia.com/gpu': gpu } },
});

t.test('sum of containers, limits standing in for requests', async (t) => {
  t.same(podGpuRequests(pod({ containers: [c('a', '2'), c('b', '1'), c('c')] }), R), [{ resource: 'nvidia.com/gpu', count: 3 }]);
  t.same(podGpuRequests(pod({ containers: [c('a')] }), R), [], 'no GPU asked');
});

t.test('init containers: the largest one counts when it exceeds the sum', async (t) => {
  t.same(podGpuRequests(pod({ containers: [c('a', '1')], initContainers: [c('i', '4')] }), R), [{ resource: 'nvidia.com/gpu', count: 4 }]);
  t.same(podGpuRequests(pod({ containers: [c('a', '3')], initContainers: [c('i', '2')] }), R), [{ resource: 'nvidia.com/gpu', count: 3 }]);
});

t.test('sidecar init containers (restartPolicy Always) add to the app containers', async (t) => {
  const p = pod({ containers: [c('a', '2')], initContainers: [c('side', '1', { restartPolicy: 'Always' }), c('i', '2')] });
  // peak = max(app 2 + sidecar 1, sidecar 1 + init 2) = 3
  t.same(podGpuRequests(p, R), [{ resource: 'nvidia.com/gpu', count: 3 }]);
});

t.test('several managed resources, in config order', async (t) => {
  const p = pod({ containers: [{ name: 'a', resources: { requests: { 'amd.com/gpu': '1', 'nvidia.com/gpu': '2' } } }] });
  t.same(podGpuRequests(p, R), [
    { resource: 'nvidia.com/gpu', count: 2 },
    { resource: 'amd.com/gpu', count: 1 },
  ]);
});

t.test('malformed requests are errors that name the container', async (t) => {
  t.throws(() => podGpuRequests(pod({ containers: [c('train', '1.5')] }), R), { name: 'PodRequestError', message: /container train asks "1.5"/ });
  t.throws(() => podGpuRequests(pod({ containers: [c('train', 'many')] }), R), PodRequestError);
  t.throws(() => podGpuRequests({ metadata: {} } as V1Pod, R), /no spec.containers/);
});
