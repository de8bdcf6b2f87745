#!/usr/bin/env node
// `npm test`: runs every test with tap, then prints one plain line that CI reads:
//   N passed, N failed, N skipped
// counted from the raw TAP tap saves per test file (.tap/test-results): every
// assertion at any depth, not the closing line of each subtest. Exits with tap's status.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Parser } from 'tap-parser';

const resultsDir = '.tap/test-results';
rmSync(resultsDir, { recursive: true, force: true });
const run = spawnSync('npx', ['tap', ...process.argv.slice(2)], { stdio: 'inherit' });
const status = run.status ?? 1;

function* tapFiles(dir) {
  let entries = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* tapFiles(p);
    else if (p.endsWith('.tap')) yield p;
  }
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const file of tapFiles(resultsDir)) {
  const count = (parser) => {
    parser.on('child', count);
    parser.on('assert', tally);
  };
  const tally = (a) => {
    if (a.closingTestPoint) return; // a subtest's summary; its assertions were counted
    if (a.skip || a.todo) skipped++;
    else if (a.ok) passed++;
    else {
      failed++;
      failures.push(`${file.slice(resultsDir.length + 1, -4)}: ${a.fullname || a.name}`);
    }
  };
  const parser = new Parser();
  count(parser);
  parser.end(readFileSync(file, 'utf8'));
}
if (status !== 0 && failed === 0) {
  failed = 1;
  failures.push(`tap exited with status ${status} without a failing assertion (a test file crashed or timed out)`);
}
if (failures.length) console.log(`\nfailed:\n  ${failures.slice(0, 50).join('\n  ')}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status);
