import { compareJson, examplesOf, findExpectedLines, markdownBlocks } from './markdown-examples';

// The convention the docs test reads the Markdown with: which blocks run, which are marked as not
// run, and what each says it prints. A sample that drifts from the real output must be caught.

const page = (...parts: string[]) => parts.join('\n');

describe('markdownBlocks', () => {
  it('finds fenced blocks with their language and first line, indented ones included', () => {
    const text = page('# Title', '', '```sh', 'echo hi', '```', '', '1. step', '   ~~~json', '   {"a": 1}', '   ~~~', '```', 'no language', '```');

    expect(markdownBlocks(text)).toEqual([
      { line: 3, language: 'sh', lines: ['echo hi'] },
      { line: 8, language: 'json', lines: ['{"a": 1}'] },
      { line: 11, language: '', lines: ['no language'] },
    ]);
  });
});

describe('examplesOf', () => {
  it('runs shell and js blocks, with their expected lines, and skips data blocks', () => {
    const text = page('```bash', 'echo "a b"', '# => a b', '```', '```js', "console.log('x')", '// => x', '```', '```yaml', 'a: 1', '```');

    expect(examplesOf(text, 'p.md')).toEqual([
      { kind: 'run', line: 1, language: 'shell', source: 'echo "a b"\n# => a b', expectedLines: ['a b'] },
      { kind: 'run', line: 5, language: 'js', source: "console.log('x')\n// => x", expectedLines: ['x'] },
    ]);
  });

  it('takes a json block right after a runnable block as its answer, but not one after prose', () => {
    const text = page('```sh', 'curl x', '```', '', '```json', '{"ok": true}', '```', 'Some prose.', '```json', '{"body": 1}', '```');

    expect(examplesOf(text, 'p.md')).toEqual([{ kind: 'run', line: 1, language: 'shell', source: 'curl x', expectedLines: [], expectedJson: { line: 5, value: { ok: true } } }]);
  });

  it('reports a block marked as not run, with its reason, and a page marked as a whole', () => {
    const marked = page('```sh', '# not run by the docs test: needs an Azure subscription', 'azd up', '```');
    const wholePage = page('> Not run by the docs test: every step needs Azure.', '', '```sh', 'az login', '```');

    expect(examplesOf(marked, 'p.md')).toEqual([{ kind: 'not-run', line: 1, reason: 'needs an Azure subscription' }]);
    expect(examplesOf(wholePage, 'p.md')).toEqual([{ kind: 'not-run', line: 3, reason: 'every step needs Azure.' }]);
  });

  it('refuses a TypeScript block that is not marked, a mark without a reason, and an answer that is not JSON', () => {
    expect(() => examplesOf(page('```ts', 'const a = 1;', '```'), 'p.md')).toThrow(/p\.md:1: a ts block cannot be run/);
    expect(() => examplesOf(page('```sh', '# not run by the docs test', 'x', '```'), 'p.md')).toThrow(/p\.md:1: say why/);
    expect(() => examplesOf(page('```sh', 'x', '```', '```json', '{nope', '```'), 'p.md')).toThrow(/p\.md:4: the answer shown after p\.md:1 is not valid JSON/);
  });
});

describe('findExpectedLines', () => {
  const output = 'HTTP/1.1 202 Accepted\nlocation: http://localhost:7071/api/jobs/6d0e?token=abc\nretry-after: 10\n\n{"status":"queued"}';

  it('matches whole lines in order, … standing for any text', () => {
    expect(findExpectedLines(['HTTP/1.1 202 Accepted', 'location: http://localhost:7071/api/jobs/…?token=…', '{"status":"queued"}'], output)).toBeUndefined();
  });

  it('fails when a line changed, is only part of a line, or comes out of order', () => {
    expect(findExpectedLines(['HTTP/1.1 200 OK'], output)).toMatch(/expected a line "HTTP\/1.1 200 OK"/);
    expect(findExpectedLines(['retry-after: 1'], output)).toBeDefined();
    expect(findExpectedLines(['retry-after: 10', 'HTTP/1.1 202 Accepted'], output)).toMatch(/after line 3/);
  });
});

describe('compareJson', () => {
  const answer = { created: 1764063000, data: [{ url: 'http://127.0.0.1:10000/devstoreaccount1/images/3f/0.png?sv=1&sig=x', bytes: 100 }], background: null };

  it('accepts a sample with the same fields, … in strings and other numbers', () => {
    expect(compareJson({ created: 1, data: [{ url: 'http://127.0.0.1:10000/devstoreaccount1/images/…/0.png?…', bytes: 2 }], background: null }, answer)).toEqual([]);
  });

  it('names every field the sample invents or leaves out, and every value it gets wrong', () => {
    const sample = { created: '1764063000', data: [{ url: 'https://…', bytes: 2, revised_prompt: '…' }] };

    expect(compareJson(sample, answer)).toEqual([
      '$.background: in the answer, missing from the docs',
      '$.created: the docs show a string, the answer has number 1764063000',
      '$.data[0].revised_prompt: shown in the docs, missing from the answer',
      '$.data[0].url: the docs show "https://…", the answer has "http://127.0.0.1:10000/devstoreaccount1/images/3f/0.png?sv=1&sig=x"',
    ]);
    expect(compareJson({ data: [] }, { data: [1] })).toEqual(['$.data: the docs show 0 item(s), the answer has 1']);
  });
});
