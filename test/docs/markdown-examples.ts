/**
 * The examples in the Markdown docs, as the docs test reads them. The convention (CONTRIBUTING.md):
 *
 * - Every `sh`/`bash`/`shell` and `js` block runs, in the order of the page, in one shell per page
 *   (variables set by one block are there for the next). `js` blocks run as ES modules with node.
 * - A block that cannot run here starts with the comment `# not run by the docs test: <why>` (`//`
 *   in `js`/`ts`); a whole page is excluded by a line `> Not run by the docs test: <why>`. `ts`
 *   blocks cannot run, so they must be marked.
 * - `# => <line>` comments in a block are what it prints, in order: each must match a whole output
 *   line, `…` standing for any text.
 * - A `json` block right after a runnable block (nothing but blank lines between) is that block's
 *   output: same fields at every level, strings equal (`…` for any text), numbers any number.
 */

export type ExampleLanguage = 'shell' | 'js';

export interface MarkdownBlock {
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The fence's language, lower-cased; '' when none. */
  readonly language: string;
  readonly lines: readonly string[];
}

export type Example =
  | {
      readonly kind: 'run';
      readonly line: number;
      readonly language: ExampleLanguage;
      readonly source: string;
      /** `# => ` lines, in order. */
      readonly expectedLines: readonly string[];
      /** The `json` block that follows, parsed. */
      readonly expectedJson?: { readonly line: number; readonly value: unknown };
    }
  | { readonly kind: 'not-run'; readonly line: number; readonly reason: string };

const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell', 'zsh']);
const JS_LANGUAGES = new Set(['js', 'javascript', 'mjs']);
const TS_LANGUAGES = new Set(['ts', 'typescript']);

const NOT_RUN_COMMENT = /^\s*(?:#|\/\/)\s*not run by the docs test\b[\s:,-]*(.*)$/i;
const NOT_RUN_PAGE = /^\s*>\s*\**not run by the docs test\**[\s:,-]*(.*)$/i;
const EXPECTED_LINE = { shell: /^\s*# => ?(.*)$/, js: /^\s*\/\/ => ?(.*)$/ } as const;

/** The fenced code blocks of a Markdown text (``` and ~~~ fences, indented by up to three spaces). */
export function markdownBlocks(markdown: string): MarkdownBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: MarkdownBlock[] = [];
  for (let index = 0; index < lines.length; index++) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[index] ?? '');
    if (!open) continue;
    const [, indent = '', fence = '', language = ''] = open;
    const body: string[] = [];
    let end = index + 1;
    const closing = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (end < lines.length && !closing.test(lines[end] ?? '')) {
      body.push((lines[end] ?? '').replace(new RegExp(`^ {0,${indent.length}}`), ''));
      end++;
    }
    blocks.push({ line: index + 1, language: language.toLowerCase(), lines: body });
    index = end;
  }
  return blocks;
}

/** What the docs test does with each block of a page; throws on a block that breaks the convention. */
export function examplesOf(markdown: string, fileName: string): Example[] {
  const pageReason = markdown
    .split(/\r?\n/)
    .map((line) => NOT_RUN_PAGE.exec(line))
    .find((match) => match !== null)?.[1];
  const lines = markdown.split(/\r?\n/);
  const blocks = markdownBlocks(markdown);
  const examples: Example[] = [];
  for (const [index, block] of blocks.entries()) {
    const language: ExampleLanguage | undefined = SHELL_LANGUAGES.has(block.language) ? 'shell' : JS_LANGUAGES.has(block.language) ? 'js' : undefined;
    const isScript = language !== undefined || TS_LANGUAGES.has(block.language);
    if (!isScript) continue;
    const where = `${fileName}:${block.line}`;
    const firstLine = block.lines.find((line) => line.trim() !== '') ?? '';
    const marker = NOT_RUN_COMMENT.exec(firstLine);
    const reason = marker?.[1]?.trim() ?? pageReason?.trim();
    if (reason !== undefined) {
      if (reason === '') throw new Error(`${where}: say why the block is not run ("not run by the docs test: <why>").`);
      examples.push({ kind: 'not-run', line: block.line, reason });
      continue;
    }
    if (language === undefined) {
      throw new Error(`${where}: a ${block.language} block cannot be run; write the example as a js or shell block, or start it with "// not run by the docs test: <why>".`);
    }
    const expectedLines = block.lines.flatMap((line) => {
      const match = EXPECTED_LINE[language].exec(line);
      return match ? [(match[1] ?? '').trimEnd()] : [];
    });
    const next = blocks[index + 1];
    const between = next ? lines.slice(block.line + block.lines.length + 1, next.line - 1) : [];
    let expectedJson: { line: number; value: unknown } | undefined;
    if (next?.language === 'json' && between.every((line) => line.trim() === '')) {
      try {
        expectedJson = { line: next.line, value: JSON.parse(next.lines.join('\n')) };
      } catch (error: unknown) {
        throw new Error(`${fileName}:${next.line}: the answer shown after ${where} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    }
    examples.push({ kind: 'run', line: block.line, language, source: block.lines.join('\n'), expectedLines, ...(expectedJson ? { expectedJson } : {}) });
  }
  return examples;
}

/** `…` stands for any text; everything else is literal, and the pattern must match the whole line. */
function linePattern(expected: string): RegExp {
  const parts = expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*?')}$`);
}

/**
 * Checks that each expected line matches a whole output line, in order (other output lines may come
 * between). Returns a message naming the first expected line it could not find, or undefined.
 */
export function findExpectedLines(expected: readonly string[], output: string): string | undefined {
  const actual = output.split(/\r?\n/).map((line) => line.trimEnd());
  let position = 0;
  for (const line of expected) {
    const pattern = linePattern(line);
    const found = actual.findIndex((candidate, index) => index >= position && pattern.test(candidate));
    if (found === -1) {
      return `expected a line "${line}"${position > 0 ? ` after line ${position} of the output` : ''}, in:\n${actual.map((candidate, index) => `${String(index + 1).padStart(3)}| ${candidate}`).join('\n')}`;
    }
    position = found + 1;
  }
  return undefined;
}

/**
 * Compares a documented JSON answer with a real one: the same fields at every level, arrays of the
 * same length, strings equal (`…` for any text), numbers any number, booleans and null equal.
 * Returns the differences, empty when the sample is true.
 */
export function compareJson(expected: unknown, actual: unknown, path = '$'): string[] {
  if (typeof expected === 'string') {
    if (typeof actual !== 'string') return [`${path}: the docs show a string, the answer has ${describe(actual)}`];
    return linePattern(expected).test(actual) ? [] : [`${path}: the docs show "${expected}", the answer has "${actual}"`];
  }
  if (typeof expected === 'number') return typeof actual === 'number' ? [] : [`${path}: the docs show a number, the answer has ${describe(actual)}`];
  if (expected === null || typeof expected === 'boolean') return actual === expected ? [] : [`${path}: the docs show ${String(expected)}, the answer has ${describe(actual)}`];
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: the docs show an array, the answer has ${describe(actual)}`];
    if (actual.length !== expected.length) return [`${path}: the docs show ${expected.length} item(s), the answer has ${actual.length}`];
    return expected.flatMap((item: unknown, index) => compareJson(item, actual[index], `${path}[${index}]`));
  }
  if (typeof expected === 'object') {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return [`${path}: the docs show an object, the answer has ${describe(actual)}`];
    const shown = Object.keys(expected);
    const real = Object.keys(actual);
    return [
      ...shown.filter((key) => !real.includes(key)).map((key) => `${path}.${key}: shown in the docs, missing from the answer`),
      ...real.filter((key) => !shown.includes(key)).map((key) => `${path}.${key}: in the answer, missing from the docs`),
      ...shown.filter((key) => real.includes(key)).flatMap((key) => compareJson(Reflect.get(expected, key), Reflect.get(actual, key), `${path}.${key}`)),
    ];
  }
  return [`${path}: cannot compare ${typeof expected}`];
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}
