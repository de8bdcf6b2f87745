// Every relative link in README.md and docs/*.md names a file that exists, and every #anchor
// a heading of that page (GitHub's rule: lower case, punctuation dropped, spaces to '-', a
// repeated heading gets -1, -2, ...). Pages were split and merged often (issue 21); a link
// into a section that moved is the kind of break nobody sees by reading one page.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/shared.js';

const pages = [
  'README.md',
  ...readdirSync(join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const withoutCode = (md: string): string => md.replace(/```[\s\S]*?```/g, '');

function anchorsOf(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of withoutCode(md).matchAll(/^#+ (.*)$/gm)) {
    const slug = heading!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

t.test('relative links in README.md and docs/ reach a file and a heading', async (t) => {
  const anchors = new Map<string, Set<string>>();
  const read = (page: string): string => readFileSync(join(repoRoot, page), 'utf8');
  let links = 0;
  for (const page of pages) {
    for (const [, target] of withoutCode(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // http:, https:, mailto:
      links++;
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const file = path === '' ? page : normalize(join(dirname(page), path));
      if (!existsSync(join(repoRoot, file))) {
        t.fail(`${page}: ${target} names no file (${file})`);
        continue;
      }
      if (!anchor || !file.endsWith('.md')) continue;
      if (!anchors.has(file)) anchors.set(file, anchorsOf(read(file)));
      t.ok(anchors.get(file)!.has(anchor), `${page}: ${target} names a heading of ${file}`);
    }
  }
  t.ok(links > 30, `found the links (${links})`);
});
