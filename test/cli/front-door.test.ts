// What a newcomer meets first (issue 21): the README's "Without a cluster" example served
// for real (examples/cluster-snapshot.json, whose pods have no creationTimestamp), read
// through the CLI, and the admin API's refusals naming what was wrong.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { cliCommand } from '../../cli/commands.js';
import { parseSnapshot } from '../../cluster/snapshot.js';
import { startServer } from '../helpers/server.js';
import { repoRoot } from '../webhooks/helpers.js';

const TOKEN = 'front-door-token';

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _e, done) {
      text += chunk.toString();
      done();
    },
  });
  await cliCommand(argv, out, env);
  return text;
}

const example = parseSnapshot(JSON.parse(readFileSync(resolve(repoRoot, 'examples/cluster-snapshot.json'), 'utf8')));
const server = await startServer(example, { api: { token: TOKEN, tokenReview: false }, logLevel: 'warn' });
t.teardown(() => server.close());
const flags = ['--server', server.api, '--token', TOKEN];

async function waitForJob(path: string): Promise<Response> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${server.api}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    if (res.status !== 503) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${path} stayed 503`);
}

t.test('describe job on the shipped example: pods without creationTimestamp', async (t) => {
  const res = await waitForJob('/api/v1/jobs/team-a/pod-train-a');
  t.equal(res.status, 200, 'not a 500 (Invalid time value)');
  t.equal(((await res.json()) as { submittedAt: unknown }).submittedAt, null, 'no creation time: submittedAt is null');
  const text = await run(['describe', 'job', 'team-a/pod-train-a', ...flags]);
  t.match(text, /^Name:\s+pod-train-a\nNamespace:\s+team-a\n/);
  t.match(text, /Submitted:\s+-\n/);
});

t.test("describe job by the pod's own name finds its job", async (t) => {
  const text = await run(['describe', 'job', 'team-a/train-a', ...flags]);
  t.match(text, /^Name:\s+pod-train-a\n/, 'the job of pod train-a');
  await t.rejects(run(['describe', 'job', 'team-a/nope', ...flags]), { message: /404 .*pod-<pod name>/ }, 'a 404 says how jobs are named');
});

t.test('no token and no kubeconfig: the CLI says so in its own words', async (t) => {
  // No KUBECONFIG and a HOME without .kube: client-node falls back to http://localhost:8080.
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME };
  delete process.env.KUBECONFIG;
  process.env.HOME = '/nonexistent-home';
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  await t.rejects(run(['get', 'queues'], { SLUICE_API_URL: server.api }), { message: /^no token for the admin API; pass --token, set SLUICE_API_TOKEN/ });
});
