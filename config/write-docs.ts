// `npm run docs:config`: writes docs/configuration.md from the schema (config/docs.ts).
import { writeFileSync } from 'node:fs';
import { configurationMarkdown } from './docs.js';

const file = new URL('../../docs/configuration.md', import.meta.url);
writeFileSync(file, configurationMarkdown());
process.stdout.write(`wrote ${file.pathname}\n`);
