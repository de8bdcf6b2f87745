// docs/configuration.md is generated from config/schema.ts: this fails when a key has no
// one-line meaning or when the committed file is stale (run `npm run docs:config`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { configurationMarkdown } from '../../config/docs.js';
import { CONFIG_KEYS } from '../../config/load.js';
import { repoRoot } from '../webhooks/helpers.js';

t.test('every config key has a meaning', async (t) => {
  for (const k of CONFIG_KEYS) t.ok(k.description.length > 10, `${k.path.join('.')}: add a line to config/descriptions.ts`);
});

t.test('docs/configuration.md is the generated text', async (t) => {
  const committed = readFileSync(join(repoRoot, 'docs/configuration.md'), 'utf8');
  t.equal(committed, configurationMarkdown(), 'docs/configuration.md is stale: run npm run docs:config');
  for (const k of CONFIG_KEYS) t.match(committed, `| \`${k.path.join('.')}\` |`, `${k.path.join('.')} documented`);
});
