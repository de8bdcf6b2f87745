// Pods and nodes as a real kube-apiserver 1.28 serves them (what a list or a watch event
// carries), for the cluster benchmarks: the synthetic pods of bench/latency/synthetic.ts
// dressed with what a Deployment/Job controller, the apiserver and the kubelet add
// (managedFields, ownerReferences, service-account volume, env, probes, default
// tolerations, status with conditions and container statuses): 4-5 kB of JSON each, about
// what `kubectl get pod -o json` shows for a training pod. Pure.
import type { V1Pod } from '@kubernetes/client-node';

const ts = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** The pod as its controller creates it and the apiserver stores it (not yet scheduled unless nodeName is set). */
export function livePod(p: V1Pod, i: number, created = Date.UTC(2026, 10, 29, 12)): V1Pod {
  const c = p.spec!.containers[0]!;
  const owner = `job-${Math.floor(i / 8)}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...p.metadata,
      generateName: `${owner}-`,
      creationTimestamp: ts(created) as unknown as Date,
      labels: {
        ...p.metadata!.labels,
        'batch.kubernetes.io/job-name': owner,
        'controller-uid': `c0ffee00-0000-4000-8000-${String(Math.floor(i / 8)).padStart(12, '0')}`,
        'job-name': owner,
      },
      annotations: {
        'batch.kubernetes.io/job-completion-index': String(i % 8),
        'sluice.io/gpu-model': 'A100,H100',
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: owner, namespace: 'team-a' },
          spec: {
            completions: 8,
            parallelism: 8,
            template: { spec: { containers: [{ name: c.name, image: c.image, command: c.command, resources: c.resources }] } },
          },
        }),
      },
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          name: owner,
          uid: `c0ffee00-0000-4000-8000-${String(Math.floor(i / 8)).padStart(12, '0')}`,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          time: ts(created) as unknown as Date,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': {
              'f:annotations': { '.': {}, 'f:batch.kubernetes.io/job-completion-index': {} },
              'f:generateName': {},
              'f:labels': { '.': {}, 'f:batch.kubernetes.io/job-name': {}, 'f:controller-uid': {}, 'f:job-name': {} },
              'f:ownerReferences': { '.': {}, 'k:{"uid":"x"}': {} },
            },
            'f:spec': {
              'f:containers': {
                'k:{"name":"trainer"}': {
                  '.': {},
                  'f:command': {},
                  'f:env': {},
                  'f:image': {},
                  'f:imagePullPolicy': {},
                  'f:name': {},
                  'f:resources': { '.': {}, 'f:limits': {}, 'f:requests': {} },
                  'f:terminationMessagePath': {},
                  'f:terminationMessagePolicy': {},
                },
              },
              'f:dnsPolicy': {},
              'f:enableServiceLinks': {},
              'f:restartPolicy': {},
              'f:schedulerName': {},
              'f:securityContext': {},
              'f:terminationGracePeriodSeconds': {},
            },
          },
        },
      ],
    },
    spec: {
      ...p.spec,
      restartPolicy: 'Never',
      containers: [
        {
          ...c,
          env: [
            { name: 'MASTER_ADDR', value: `${owner}-0.${owner}` },
            { name: 'MASTER_PORT', value: '29500' },
            { name: 'WORLD_SIZE', value: '8' },
            { name: 'NCCL_DEBUG', value: 'WARN' },
            { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
          ],
          ports: [{ containerPort: 29500, name: 'dist', protocol: 'TCP' }],
          readinessProbe: { exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
          imagePullPolicy: 'IfNotPresent',
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          volumeMounts: [
            { name: 'data', mountPath: '/data' },
            { name: 'kube-api-access-abcde', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: 'datasets' } },
        {
          name: 'kube-api-access-abcde',
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
            ],
          },
        },
      ],
      dnsPolicy: 'ClusterFirst',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      securityContext: {},
      serviceAccount: 'default',
      serviceAccountName: 'default',
      terminationGracePeriodSeconds: 30,
      tolerations: [
        { effect: 'NoExecute', key: 'node.kubernetes.io/not-ready', operator: 'Exists', tolerationSeconds: 300 },
        { effect: 'NoExecute', key: 'node.kubernetes.io/unreachable', operator: 'Exists', tolerationSeconds: 300 },
        { effect: 'NoSchedule', key: 'nvidia.com/gpu', operator: 'Exists' },
      ],
    },
    status: p.spec?.nodeName ? running(p.spec.nodeName, created, i) : { phase: 'Pending', qosClass: 'Burstable' },
  } as V1Pod;
}

/** The status a kubelet reports while the pod's containers are being created. */
export function creating(node: string, at: number): NonNullable<V1Pod['status']> {
  return {
    phase: 'Pending',
    hostIP: hostIp(node),
    qosClass: 'Burstable',
    startTime: ts(at) as unknown as Date,
    conditions: [
      { type: 'Initialized', status: 'True', lastTransitionTime: ts(at) as unknown as Date },
      {
        type: 'Ready',
        status: 'False',
        reason: 'ContainersNotReady',
        message: 'containers with unready status: [trainer]',
        lastTransitionTime: ts(at) as unknown as Date,
      },
      {
        type: 'ContainersReady',
        status: 'False',
        reason: 'ContainersNotReady',
        message: 'containers with unready status: [trainer]',
        lastTransitionTime: ts(at) as unknown as Date,
      },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: ts(at) as unknown as Date },
    ],
    containerStatuses: [
      {
        name: 'trainer',
        image: 'nvcr.io/nvidia/pytorch:24.05-py3',
        imageID: '',
        ready: false,
        restartCount: 0,
        started: false,
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState: {},
      },
    ],
  };
}

/** The status a kubelet reports once the container runs. */
export function running(node: string, at: number, i: number): NonNullable<V1Pod['status']> {
  const s = creating(node, at);
  return {
    ...s,
    phase: 'Running',
    podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    podIPs: [{ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }],
    conditions: s.conditions!.map((c) =>
      c.type === 'Ready' || c.type === 'ContainersReady' ? { type: c.type, status: 'True', lastTransitionTime: c.lastTransitionTime } : c,
    ),
    containerStatuses: [
      {
        name: 'trainer',
        image: 'nvcr.io/nvidia/pytorch:24.05-py3',
        imageID: 'nvcr.io/nvidia/pytorch@sha256:4c1f1f0bc3c1d1b1a1e1f1a1b1c1d1e1f1a1b1c1d1e1f1a1b1c1d1e1f1a1b1c1',
        containerID: `containerd://${String(i).padStart(64, '0')}`,
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt: ts(at) as unknown as Date } },
        lastState: {},
      },
    ],
  };
}

function hostIp(node: string): string {
  const n = Number(node.replace(/\D/g, '')) || 0;
  return `192.168.${(n >> 8) & 255}.${n & 255}`;
}
