// The project's data that lives outside this repository and that tests read in place: the
// wire payloads captured from a real control plane (fixtures/) and Alibaba's openb GPU trace
// (data/openb). It is ../shared beside the checkout, or the folder SLUICE_SHARED_DIR names
// (a clone elsewhere, e.g. /tmp/sluice, sets SLUICE_SHARED_DIR=/work/shared).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = resolve(process.env.SLUICE_SHARED_DIR || join(repoRoot, '../shared'));

/** A path under the shared folder; throws a message that says where it looked and what to set
 * when it is missing (rather than an ENOENT deep inside a test that then waits for its timeout). */
export function sharedPath(...parts: string[]): string {
  const p = join(sharedDir, ...parts);
  if (!existsSync(p)) {
    throw new Error(
      `${p} does not exist: tests read captured payloads (fixtures/) and the openb trace (data/openb) from ${sharedDir}, ` +
        'by default ../shared beside the checkout; set SLUICE_SHARED_DIR to the folder that holds them',
    );
  }
  return p;
}
