import { findJsonSyntaxError } from '../../src/http/json-syntax';

describe('findJsonSyntaxError', () => {
  it.each([
    '{}',
    '[]',
    ' {"a": [1, -2.5e+3, true, false, null, "x\\n\\u00e9\\"y"], "b": {"c": []}} ',
    '"just a string"',
    '0',
    JSON.stringify({ deep: [[[[[{ a: 'b' }]]]]] }),
  ])('finds nothing wrong in %s (as JSON.parse)', (text) => {
    expect(() => JSON.parse(text) as unknown).not.toThrow();
    expect(findJsonSyntaxError(text)).toBeUndefined();
  });

  it.each([
    ['{"prompt": SECRET}', 1, 12, 'unexpected character'],
    ['{\n  "prompt": "fine",\n  PRIVATE\n}', 3, 3, 'expected a property name in double quotes'],
    ['{"prompt": "never closed', 1, 25, 'a string that is never closed'],
    ['{"prompt": "x"', 1, 15, 'the body ends before the JSON is complete'],
    ['', 1, 1, 'the body ends before the JSON is complete'],
    ['{"a": 1,}', 1, 9, 'expected a property name in double quotes'],
    ['[1, 2,]', 1, 7, 'unexpected character'],
    ['[1 2]', 1, 4, "expected ',' or ']'"],
    ['{"a" 1}', 1, 6, "expected ':' after a property name"],
    ['{"a": 01}', 1, 8, "expected ',' or '}'"],
    ['{"a": -}', 1, 7, 'invalid number'],
    ['{"a": "tab\there"}', 1, 11, 'a control character inside a string (escape it)'],
    ['{"a": "\\x"}', 1, 8, 'an invalid escape sequence in a string'],
    ['{"a": "\\u12G4"}', 1, 8, 'an invalid escape sequence in a string'],
    ['{} {}', 1, 4, 'unexpected content after the JSON value'],
    ["{'a': 1}", 1, 2, 'expected a property name in double quotes'],
    ['\ufeff{}', 1, 1, 'unexpected character'],
  ])('places the error of %j at line %i, column %i', (text, line, column, reason) => {
    expect(() => JSON.parse(text) as unknown).toThrow(SyntaxError);
    expect(findJsonSyntaxError(text)).toEqual({ line, column, reason });
  });

  it('walks a body nested half a million levels deep without a call stack', () => {
    const depth = 500_000;
    const text = `${'['.repeat(depth)}x${']'.repeat(depth)}`;
    expect(findJsonSyntaxError(text)).toEqual({ line: 1, column: depth + 1, reason: 'unexpected character' });
  });
});
