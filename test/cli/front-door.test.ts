// What a newcomer meets first (issue 21): the README's "Without a cluster" example served
// for real (examples/cluster-snapshot.json, whose pods have no creationTimestamp), read
// through the CLI, and the admin API's refusals naming what was wrong.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { runCli } from './run-cli.js';
import { parseSnapshot } from '../../cluster/snapshot.js';
import { startServer } from '../helpers/server.js';
import { repoRoot } from '../webhooks/helpers.js';

const TOKEN = 'front-door-token';

const run = runCli;

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
  t.match(text, /\nUser:\s+-\n/, 'no user label: a dash, not a blank');
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

t.test('an unknown field is named, with the closest known one; a missing content-type gets a hint', async (t) => {
  const put = async (path: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    const r = await fetch(`${server.api}${path}`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, ...headers }, body });
    return { status: r.status, body: (await r.json()) as { error: string; message: string } };
  };
  const typo = await put('/api/v1/queues/x', '{"weigth":2}');
  t.equal(typo.status, 400);
  t.match(typo.body.message, /^body has the unknown field "weigth" \(did you mean weight\?\); known fields: .*\bweight\b/);
  const nested = await put('/api/v1/queues/x', JSON.stringify({ limits: [{ resource: 'nvidia.com/gpu', guarnteed: 4 }] }));
  t.match(nested.body.message, /^body\/limits\/0 has the unknown field "guarnteed" \(did you mean guaranteed\?\)/);
  const far = await put('/api/v1/queues/x', '{"colour":"red"}');
  t.match(far.body.message, /^body has the unknown field "colour"; known fields:/, 'no suggestion when nothing is close');
  const noType = await put('/api/v1/queues/x', new TextEncoder().encode('{"weight":2}'), {});
  t.equal(noType.status, 415, 'no content-type');
  t.same(noType.body.error, 'Unsupported Media Type');
  t.match(noType.body.message, /content-type: application\/json/);
  const text = await put('/api/v1/queues/x', '{"weight":2}', { 'content-type': 'text/plain' });
  t.equal(text.status, 415, 'text/plain');
  t.match(text.body.message, /content-type: application\/json/);

  const file = join(mkdtempSync(join(tmpdir(), 'sluice-front-door-')), 'queues.yaml');
  writeFileSync(file, 'queues:\n  - name: x\n    weigth: 2\n');
  await t.rejects(
    run(['apply', '-f', file, ...flags]),
    { message: /queue x: 400 body has the unknown field "weigth" \(did you mean weight\?\)/ },
    'sluice apply shows the same',
  );
});
