import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

import { markdownBlocks } from './markdown-examples';

// Every file the docs point to exists: relative links, their #anchors, and Markdown files named in
// backticks (emulator/README.md once cited a reference file that is not in the repo).

const ROOT = join(__dirname, '..', '..');
const PAGES = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
  'emulator/README.md',
  'bench/README.md',
  'samples/README.md',
  'infra/README.md',
];

/** The lines outside fenced code blocks (fences included in the code). */
function proseLines(markdown: string): string[] {
  const blocks = markdownBlocks(markdown);
  return markdown.split('\n').filter((_line, index) => !blocks.some((block) => index + 1 >= block.line && index + 1 <= block.line + block.lines.length + 1));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
function anchorsOf(markdown: string): Set<string> {
  return new Set(
    proseLines(markdown)
      .filter((line) => /^#{1,6} /.test(line))
      .map((line) =>
        line
          .replace(/^#+ /, '')
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      ),
  );
}

describe.each(PAGES)('%s', (page) => {
  const path = join(ROOT, page);
  const markdown = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const prose = proseLines(markdown).join('\n');

  it('exists', () => {
    expect(existsSync(path)).toBe(true);
  });

  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const [, target = ''] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue;
      const [file = '', anchor] = target.split('#');
      const linked = file === '' ? path : join(dirname(path), file);
      if (!existsSync(linked)) {
        broken.push(`${target}: no ${relative(ROOT, linked)}`);
      } else if (anchor !== undefined && linked.endsWith('.md') && !anchorsOf(readFileSync(linked, 'utf8')).has(anchor)) {
        broken.push(`${target}: no heading #${anchor} in ${relative(ROOT, linked)}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('names only Markdown files that are in the repository', () => {
    const missing = [...prose.matchAll(/`([\w./-]+\.md)`/g)]
      .map(([, name = '']) => name)
      .filter((name) => !existsSync(join(ROOT, name)) && !existsSync(join(dirname(path), name)));
    expect(missing).toEqual([]);
  });
});
