// HAMi's device-plugin protocol, the reading side (pure): the GPUs a node agent registers
// on its Node, the handshake that says whether the agent is alive, and the per-container
// device lists on pods. Checked against Project-HAMi/HAMi (docs/develop/protocol.md;
// pkg/device/devices.go DecodeNodeDevices, UnMarshalNodeDevices, CheckHealth,
// DecodeContainerDevices, EncodePodSingleDevice; pkg/util/types.go; docs/gpu-sharing.md).
// The writing side (allocation annotations, node lock) is scheduler/hami-bind.ts.
import type { DeviceUse } from '../placement/shares.js';

export const HAMI_REGISTER = 'hami.io/node-nvidia-register';
/** The handshake key HAMi's NVIDIA code reads today, and the one its protocol page names. */
export const HAMI_HANDSHAKE_KEYS = ['hami.io/node-handshake', 'hami.io/node-handshake-nvidia'] as const;
export const HAMI_TO_ALLOCATE = 'hami.io/vgpu-devices-to-allocate';
export const HAMI_ALLOCATED = 'hami.io/vgpu-devices-allocated';
export const HAMI_NODE = 'hami.io/vgpu-node';
export const HAMI_TIME = 'hami.io/vgpu-time';
export const HAMI_BIND_PHASE = 'hami.io/bind-phase';
export const HAMI_BIND_TIME = 'hami.io/bind-time';
export const HAMI_NODE_LOCK = 'hami.io/mutex.lock';
/** The device type keyword of NVIDIA GPUs in pod device lists. */
export const HAMI_NVIDIA = 'NVIDIA';

/** One GPU as the node agent registered it. */
export interface RegisteredGpu {
  uuid: string;
  index: number;
  /** Split count: tasks the GPU may run at once. */
  slots: number;
  memMiB: number;
  cores: number;
  type: string;
  numa: number;
  healthy: boolean;
  mode: string;
}

export type Registration = { gpus: RegisteredGpu[] } | { error: string };

const INT = /^-?\d+$/;

/** Decodes hami.io/node-nvidia-register: the JSON list HAMi's plugin writes today, or the
 * older colon-separated form with 7 fields per GPU (uuid, split count, memory MiB, cores,
 * type, NUMA, healthy) or 9 (plus index and mode). Any malformed field, or a UUID listed
 * twice, makes the whole annotation an error naming the device and the field. */
export function parseRegistration(value: string): Registration {
  const v = value.trim();
  const out = v.startsWith('[') ? fromJson(v) : fromColonForm(v);
  if ('error' in out) return out;
  const seen = new Set<string>();
  for (const g of out.gpus) {
    if (seen.has(g.uuid)) return { error: `UUID ${g.uuid} is registered twice` };
    seen.add(g.uuid);
  }
  return out;
}

function fromColonForm(v: string): Registration {
  if (!v.includes(':')) return { error: 'no ":" between devices (expected uuid,count,memory,cores,type,numa,healthy[,index,mode]:...)' };
  const gpus: RegisteredGpu[] = [];
  let position = 0;
  for (const seg of v.split(':')) {
    if (seg === '') continue;
    const f = seg.split(',');
    const at = `device ${position}`;
    if (f.length !== 7 && f.length !== 9) return { error: `${at}: ${f.length} fields, expected 7 or 9` };
    const num = (i: number, name: string): number | string =>
      INT.test(f[i]!) ? Number(f[i]) : `${at} (${f[0]}): ${name} field "${f[i]}" is not a whole number`;
    const slots = num(1, 'split count');
    const mem = num(2, 'memory');
    const cores = num(3, 'cores');
    const numa = num(5, 'numa');
    const index = f.length === 9 ? num(7, 'index') : position;
    for (const x of [slots, mem, cores, numa, index]) if (typeof x === 'string') return { error: x };
    const health = f[6]!.toLowerCase();
    if (!['true', 'false', '1', '0', 't', 'f'].includes(health)) return { error: `${at} (${f[0]}): health field "${f[6]}" is not true or false` };
    if ((index as number) < 0) return { error: `${at} (${f[0]}): index field ${index} is negative` };
    gpus.push({
      uuid: f[0]!,
      index: index as number,
      slots: slots as number,
      memMiB: mem as number,
      cores: cores as number,
      type: f[4]!,
      numa: numa as number,
      healthy: ['true', '1', 't'].includes(health),
      mode: f.length === 9 ? f[8]! : 'hami-core',
    });
    position++;
  }
  return { gpus };
}

function fromJson(v: string): Registration {
  let raw: unknown;
  try {
    raw = JSON.parse(v);
  } catch (e) {
    return { error: `not valid JSON (${(e as Error).message})` };
  }
  if (!Array.isArray(raw)) return { error: 'JSON form is not a list of devices' };
  const gpus: RegisteredGpu[] = [];
  for (let i = 0; i < raw.length; i++) {
    const d = raw[i] as Record<string, unknown> | null;
    if (typeof d !== 'object' || d === null) return { error: `device ${i} is not an object` };
    const id = d.id;
    if (typeof id !== 'string' || id === '') return { error: `device ${i}: id field missing` };
    // Go's omitempty leaves out zero values: a missing number is 0, a missing health false.
    const num = (k: string): number | string => {
      const x = d[k] ?? 0;
      return typeof x === 'number' && Number.isInteger(x) ? x : `device ${i} (${id}): ${k} field ${JSON.stringify(x)} is not a whole number`;
    };
    const fields = ['count', 'devmem', 'devcore', 'numa', 'index'].map(num);
    for (const x of fields) if (typeof x === 'string') return { error: x };
    const [slots, mem, cores, numa, index] = fields as number[];
    if (d.health !== undefined && typeof d.health !== 'boolean') return { error: `device ${i} (${id}): health field is not true or false` };
    gpus.push({
      uuid: id,
      index: index!,
      slots: slots!,
      memMiB: mem!,
      cores: cores!,
      type: typeof d.type === 'string' ? d.type : '',
      numa: numa!,
      healthy: d.health === true,
      mode: typeof d.mode === 'string' && d.mode ? d.mode : 'hami-core',
    });
  }
  return { gpus };
}

/** Why the node agent's registration is stale, or null. HAMi's scheduler writes
 * "Requesting_<time>" into the handshake and the agent answers by re-registering; a
 * handshake still "Requesting_" more than `timeoutMs` after its time means the agent is
 * gone, unless the node still advertises the GPU count resource (HAMi's CheckHealth). The
 * time is "YYYY-MM-DD HH:MM:SS" (or with dots) in local time; an unreadable one is not stale. */
export function handshakeStale(annotations: Readonly<Record<string, string>>, allocatableCount: number, nowMs: number, timeoutMs: number): string | null {
  for (const key of HAMI_HANDSHAKE_KEYS) {
    const v = annotations[key];
    if (v === undefined || !v.includes('Requesting')) continue;
    const at = v.indexOf('_');
    if (at < 0) return null;
    const m = /^(\d{4})[-.](\d{2})[-.](\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(v.slice(at + 1));
    if (!m) return null;
    const t = new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime();
    if (nowMs <= t + timeoutMs || allocatableCount > 0) return null;
    return `HAMi device plugin has not answered the handshake (${key}: ${v}) for over ${Math.round(timeoutMs / 1000)} s and the node advertises no GPUs`;
  }
  return null;
}

/** Decodes a pod's device list (hami.io/vgpu-devices-allocated or -to-allocate): one entry
 * per container, init containers first, each "uuid,type,memory,cores:" per GPU and ";"
 * after each container. Entries of other device types are skipped. */
export function parseDeviceList(value: string): DeviceUse[][] | { error: string } {
  const out: DeviceUse[][] = [];
  const containers = value.split(';');
  if (containers.length > 1 && containers[containers.length - 1] === '') containers.pop();
  for (const c of containers) {
    const uses: DeviceUse[] = [];
    for (const d of c.split(':')) {
      if (!d.includes(',')) continue;
      const f = d.split(',');
      if (f.length < 4) return { error: `device "${d}" has ${f.length} fields, expected uuid,type,memory,cores` };
      if (!INT.test(f[2]!) || !INT.test(f[3]!)) return { error: `device "${d}": memory and cores must be whole numbers` };
      if (f[1] !== HAMI_NVIDIA) continue;
      uses.push({ uuid: f[0]!, memMiB: Number(f[2]), cores: Number(f[3]) });
    }
    out.push(uses);
  }
  return out;
}

/** Encodes per-container device lists as HAMi's plugin decodes them (every container of
 * the pod, init containers first; an empty entry for one without GPUs). */
export function encodeDeviceList(containers: readonly (readonly DeviceUse[])[]): string {
  let s = '';
  for (const c of containers) {
    for (const u of c) s += `${u.uuid},${HAMI_NVIDIA},${u.memMiB},${u.cores}:`;
    s += ';';
  }
  return s;
}

/** The GPUs a pod holds through HAMi's protocol and on which node, or null when it holds
 * none: pods sluice (or HAMi's scheduler) placed carry hami.io/vgpu-node and the device
 * list; a failed allocation (bind phase "failed") holds nothing. The node is the pod's
 * spec.nodeName once bound, else hami.io/vgpu-node (a bind in flight, or one cut short by
 * a restart: its GPUs stay reserved until the pod is bound elsewhere or deleted). */
export function podDeviceHold(annotations: Readonly<Record<string, string>>, nodeName: string): { node: string; uses: DeviceUse[] } | null {
  const node = annotations[HAMI_NODE];
  if (node === undefined || annotations[HAMI_BIND_PHASE] === 'failed') return null;
  if (nodeName && nodeName !== node) return null;
  const list = annotations[HAMI_ALLOCATED] ?? annotations[HAMI_TO_ALLOCATE];
  if (list === undefined) return null;
  const parsed = parseDeviceList(list);
  if ('error' in parsed) return null;
  const uses = parsed.flat();
  return uses.length > 0 ? { node: nodeName || node, uses } : null;
}
