import t from 'tap';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig, ConfigError, CONFIG_KEYS } from '../../config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));

t.test('defaults', async (t) => {
  const c = loadConfig({ env: {} });
  t.same(c.gpuResources, ['nvidia.com/gpu']);
  t.equal(c.defaultPolicy, 'binpack');
  t.equal(c.https.port, 9443);
  t.equal(c.http.port, 8080);
  t.equal(c.webhooks.queueing, true, 'GPU pods are gated: the queue manager releases them');
});

t.test('file < env < flags', async (t) => {
  const f = join(dir, 'c.yaml');
  writeFileSync(f, 'defaultPolicy: spread\nhttp:\n  port: 1000\ngpuResources: [amd.com/gpu]\n');
  const c = loadConfig({
    argv: ['--config', f, '--http-port', '3000'],
    env: { SLUICE_HTTP_PORT: '2000', SLUICE_DEFAULT_POLICY: 'fragmentation', SLUICE_GPU_RESOURCES: 'nvidia.com/gpu, amd.com/gpu' },
  });
  t.equal(c.http.port, 3000, 'flag wins');
  t.equal(c.defaultPolicy, 'fragmentation', 'env beats file');
  t.same(c.gpuResources, ['nvidia.com/gpu', 'amd.com/gpu'], 'lists split on commas');
  t.equal(c.https.port, 9443, 'untouched keys keep defaults');
  t.equal(loadConfig({ argv: ['--https-cert-file=/x.pem'], env: {} }).https.certFile, '/x.pem', '--flag=value form');
});

t.test('every key has an env name and a flag', async (t) => {
  const k = CONFIG_KEYS.find((x) => x.path.join('.') === 'https.certFile');
  t.same(k && [k.env, k.flag], ['SLUICE_HTTPS_CERT_FILE', '--https-cert-file']);
});

/** The message loadConfig refuses these arguments with (a ConfigError), or 'no error'. */
const refusal =
  (t: Pick<typeof import('tap').default, 'type'>) =>
  (argv: string[], env = {}): string => {
    try {
      loadConfig({ argv, env });
    } catch (e) {
      t.type(e, ConfigError);
      return (e as Error).message;
    }
    return 'no error';
  };

t.test('bad config: one line naming the key', async (t) => {
  const bad = refusal(t);
  t.equal(bad(['--http-port', 'abc']), 'invalid config key http.port: must be integer');
  t.equal(bad(['--http-port', '70000']), 'invalid config key http.port: must be <= 65535');
  t.equal(bad(['--default-policy', 'best']), 'invalid config key defaultPolicy: must be equal to one of the allowed values (binpack, spread, fragmentation)');
  t.match(bad(['--nope', '1']), /^unknown flag --nope; sluice serve --help lists every flag$/);
  t.match(bad(['--http-prot', '1']), /^unknown flag --http-prot \(did you mean --http-port\?\)/, 'the closest known flag');
  t.match(bad(['--http-port']), /^flag --http-port needs a value/);
  const f = join(dir, 'typo.yaml');
  writeFileSync(f, 'defaultPolcy: spread\n');
  t.equal(bad(['--config', f]), 'invalid config key (root) "defaultPolcy" (did you mean defaultPolicy?): must NOT have additional properties');
  writeFileSync(f, 'a: [1\n');
  t.match(bad(['--config', f]), /^config file .* is not valid YAML/);
  t.match(bad(['--config', join(dir, 'missing.yaml')]), /cannot be read/);
  t.equal(bad([], { SLUICE_GPU_RESOURCES: 'bad resource!' }), 'invalid config key gpuResources.0: must match pattern "^([a-z0-9.-]+/)?[A-Za-z0-9._-]+$"');
});

t.test('scheduler.filterBest: off by default, a whole number >= 0 from file, env or flag', async (t) => {
  t.equal(loadConfig({ env: {} }).scheduler.filterBest, 0, 'default 0: every fitting node passes filter');
  t.equal(loadConfig({ argv: ['--scheduler-filter-best', '1'], env: {} }).scheduler.filterBest, 1, 'flag');
  t.equal(loadConfig({ env: { SLUICE_SCHEDULER_FILTER_BEST: '3' } }).scheduler.filterBest, 3, 'env');
  const f = join(dir, 'fb.yaml');
  writeFileSync(f, 'scheduler:\n  filterBest: 2\n');
  t.equal(loadConfig({ argv: ['--config', f], env: {} }).scheduler.filterBest, 2, 'file');
  const bad = refusal(t);
  t.equal(bad(['--scheduler-filter-best', '-1']), 'invalid config key scheduler.filterBest: must be >= 0');
  t.equal(bad(['--scheduler-filter-best', '1.5']), 'invalid config key scheduler.filterBest: must be integer');
  t.equal(bad([], { SLUICE_SCHEDULER_FILTER_BEST: 'best' }), 'invalid config key scheduler.filterBest: must be integer');
  writeFileSync(f, 'scheduler:\n  filterBst: 2\n');
  t.equal(bad(['--config', f]), 'invalid config key scheduler "filterBst" (did you mean filterBest?): must NOT have additional properties');
});
