/** Where a JSON text first breaks the grammar, 1-based, and what was expected there; never the text itself. */
export interface JsonSyntaxError {
  readonly line: number;
  readonly column: number;
  readonly reason: string;
}

type Expected = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'comma-or-close' | 'end';

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const HEX4 = /^[0-9A-Fa-f]{4}$/;

/**
 * Finds the first syntax error of `text` (RFC 8259), for error messages that say where a body is
 * broken without quoting it (the platform's parser quotes it). A loop with an explicit stack, so a
 * deeply nested body costs memory in proportion to its size and no call stack.
 */
export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const stack: ('object' | 'array')[] = [];
  let expected: Expected = 'value';
  let index = 0;
  const at = (offset: number, reason: string): JsonSyntaxError => ({ ...lineAndColumn(text, offset), reason });
  const afterValue = (): Expected => (stack.length === 0 ? 'end' : 'comma-or-close');

  for (;;) {
    while (index < text.length && WHITESPACE.has(text.charAt(index))) index++;
    if (index >= text.length) return expected === 'end' ? undefined : at(index, 'the body ends before the JSON is complete');
    const char = text.charAt(index);
    const top = stack.at(-1);

    if (expected === 'end') return at(index, 'unexpected content after the JSON value');
    if (expected === 'colon') {
      if (char !== ':') return at(index, "expected ':' after a property name");
      index++;
      expected = 'value';
      continue;
    }
    if (expected === 'comma-or-close') {
      const close = top === 'object' ? '}' : ']';
      if (char === ',') {
        index++;
        expected = top === 'object' ? 'key' : 'value';
      } else if (char === close) {
        index++;
        stack.pop();
        expected = afterValue();
      } else {
        return at(index, `expected ',' or '${close}'`);
      }
      continue;
    }
    if ((expected === 'key-or-close' && char === '}') || (expected === 'value-or-close' && char === ']')) {
      index++;
      stack.pop();
      expected = afterValue();
      continue;
    }
    if (expected === 'key' || expected === 'key-or-close') {
      if (char !== '"') return at(index, 'expected a property name in double quotes');
      const end = stringEnd(text, index);
      if (typeof end !== 'number') return at(end.offset, end.reason);
      index = end;
      expected = 'colon';
      continue;
    }

    // A value.
    if (char === '{' || char === '[') {
      stack.push(char === '{' ? 'object' : 'array');
      index++;
      expected = char === '{' ? 'key-or-close' : 'value-or-close';
      continue;
    }
    if (char === '"') {
      const end = stringEnd(text, index);
      if (typeof end !== 'number') return at(end.offset, end.reason);
      index = end;
    } else if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = index;
      const match = NUMBER.exec(text);
      if (!match) return at(index, 'invalid number');
      index += match[0].length;
    } else {
      const literal = ['true', 'false', 'null'].find((word) => text.startsWith(word, index));
      if (!literal) return at(index, 'unexpected character');
      index += literal.length;
    }
    expected = afterValue();
  }
}

/** The offset after the closing quote of the string opening at `start`, or where and why it breaks. */
function stringEnd(text: string, start: number): number | { offset: number; reason: string } {
  for (let index = start + 1; index < text.length; index++) {
    const char = text.charAt(index);
    if (char === '"') return index + 1;
    if (char < ' ') return { offset: index, reason: 'a control character inside a string (escape it)' };
    if (char === '\\') {
      const escaped = text.charAt(index + 1);
      if (escaped === 'u' ? !HEX4.test(text.slice(index + 2, index + 6)) : !ESCAPES.has(escaped)) {
        return { offset: index, reason: 'an invalid escape sequence in a string' };
      }
      index += escaped === 'u' ? 5 : 1;
    }
  }
  return { offset: text.length, reason: 'a string that is never closed' };
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let index = text.indexOf('\n'); index !== -1 && index < offset; index = text.indexOf('\n', index + 1)) {
    line++;
    lineStart = index + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
