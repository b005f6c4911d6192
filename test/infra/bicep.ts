import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Just enough Bicep reading for offline consistency checks (the compiler cannot run here): comments
 * and strings are skipped properly, so the braces, names and values found are the real ones.
 */

export const PROJECT_ROOT = join(__dirname, '..', '..');
export const INFRA_DIR = join(PROJECT_ROOT, 'infra');

export function readInfra(relativePath: string): string {
  return readFileSync(join(INFRA_DIR, relativePath), 'utf8');
}

/** Every .bicep file under infra/, relative to it. */
export function bicepFiles(): string[] {
  const walk = (dir: string, prefix: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(join(dir, entry.name), `${prefix}${entry.name}/`) : entry.name.endsWith('.bicep') ? [`${prefix}${entry.name}`] : [],
    );
  return walk(INFRA_DIR, '').sort();
}

export interface Scan {
  /** The text with comments blanked out (same length, so offsets still match). */
  readonly code: string;
  /** For each offset: true inside a string literal, including the `${` and `}` around interpolations. */
  readonly inString: readonly boolean[];
}

type Context = { kind: 'code'; depth: number } | { kind: 'string' };

/**
 * Walks Bicep text once: line and block comments, single-quoted strings with backslash escapes and
 * `${ … }` interpolations (code again, which may hold strings of its own), triple-quoted verbatim strings.
 */
export function scan(text: string): Scan {
  const code = text.split('');
  const inString: boolean[] = new Array<boolean>(text.length).fill(false);
  // Innermost context last; a code context above a string context is an interpolation.
  const contexts: Context[] = [{ kind: 'code', depth: 0 }];
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (code[k] !== '\n') code[k] = ' ';
  };
  const verbatim = "'''";
  let i = 0;
  while (i < text.length) {
    const context: Context = contexts[contexts.length - 1] ?? { kind: 'code', depth: 0 };
    const char = text[i];
    if (context.kind === 'string') {
      inString[i] = true;
      if (char === '\\') {
        if (i + 1 < text.length) inString[i + 1] = true;
        i += 2;
      } else if (char === "'") {
        contexts.pop();
        i++;
      } else if (char === '$' && text[i + 1] === '{') {
        inString[i + 1] = true;
        contexts.push({ kind: 'code', depth: 0 });
        i += 2;
      } else {
        i++;
      }
    } else if (char === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (char === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (text.startsWith(verbatim, i)) {
      const end = text.indexOf(verbatim, i + 3);
      const stop = end === -1 ? text.length : end + 3;
      for (let k = i; k < stop; k++) inString[k] = true;
      i = stop;
    } else if (char === "'") {
      inString[i] = true;
      contexts.push({ kind: 'string' });
      i++;
    } else if (char === '}' && context.depth === 0 && contexts.length > 1) {
      // The end of an interpolation: back in the string it interrupted.
      inString[i] = true;
      contexts.pop();
      i++;
    } else {
      if (char === '{') context.depth++;
      if (char === '}') context.depth--;
      i++;
    }
  }
  return { code: code.join(''), inString };
}

/** Unbalanced or mismatched (), [], {} outside strings and comments, as messages. */
export function bracketProblems(text: string): string[] {
  const { code, inString } = scan(text);
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: { char: string; line: number }[] = [];
  const problems: string[] = [];
  let line = 1;
  for (let i = 0; i < code.length; i++) {
    const char = code[i] ?? '';
    if (char === '\n') line++;
    if (inString[i]) continue;
    if (char === '(' || char === '[' || char === '{') {
      stack.push({ char, line });
    } else if (char === ')' || char === ']' || char === '}') {
      const open = stack.pop();
      if (open?.char !== pairs[char]) problems.push(`line ${line}: '${char}' does not close ${open ? `'${open.char}' from line ${open.line}` : 'anything'}`);
    }
  }
  for (const open of stack) problems.push(`line ${open.line}: '${open.char}' is never closed`);
  return problems;
}

/** A top-level statement (`param`, `var`, `resource`, `module`, `output`, …) with its decorators. */
export interface Statement {
  readonly keyword: string;
  readonly name: string;
  /** Everything after the name, through the statement's last line (its closing bracket). */
  readonly rest: string;
  /** The `@…` lines directly above it. */
  readonly decorators: string;
}

const TOP_LEVEL = /^(@|param\b|var\b|resource\b|module\b|output\b|type\b|func\b|import\b|targetScope\b|metadata\b)/;

/** Statements start at column 0 (as the Bicep formatter writes them); nested lines are indented. */
export function statements(text: string): Statement[] {
  const { code } = scan(text);
  const segments: string[][] = [];
  for (const line of code.split('\n')) {
    const last = segments[segments.length - 1];
    if (TOP_LEVEL.test(line) || last === undefined) segments.push([line]);
    else last.push(line);
  }
  const result: Statement[] = [];
  let decorators: string[] = [];
  for (const segment of segments) {
    const source = segment.join('\n').trimEnd();
    if (source.startsWith('@')) {
      decorators.push(source);
      continue;
    }
    const match = /^(\w+)[ \t]*([A-Za-z_]\w*)?/.exec(source);
    if (match && TOP_LEVEL.test(source)) {
      result.push({ keyword: match[1] ?? '', name: match[2] ?? '', rest: source.slice(match[0].length).trim(), decorators: decorators.join('\n') });
    }
    decorators = [];
  }
  return result;
}

export function statementsOf(text: string, keyword: string): Statement[] {
  return statements(text).filter((statement) => statement.keyword === keyword);
}

export function statementNamed(text: string, keyword: string, name: string): Statement {
  const statement = statementsOf(text, keyword).find((candidate) => candidate.name === name);
  if (!statement) throw new Error(`${keyword} ${name} not found`);
  return statement;
}

export interface Param {
  readonly name: string;
  readonly type: string;
  /** The default's source text, undefined when the param has none. */
  readonly defaultText: string | undefined;
  readonly decorators: string;
}

export function params(text: string): Param[] {
  return statementsOf(text, 'param').map(({ name, rest, decorators }) => {
    const match = /^(\w+)(?:\s*=\s*([\s\S]+))?$/.exec(rest);
    return { name, type: match?.[1] ?? '', defaultText: match?.[2]?.trim(), decorators };
  });
}

/** `@allowed([...])` values of a param: string or number literals. */
export function allowedValues(param: Param): (string | number)[] {
  const match = /@allowed\(\s*\[([\s\S]*?)\]\s*\)/.exec(param.decorators);
  if (!match) return [];
  return [...(match[1] ?? '').matchAll(/'([^']*)'|(-?\d+)/g)].map((value) => (value[1] !== undefined ? value[1] : Number(value[2])));
}

/** `module x 'path'` references (registry modules `br:`/`ts:` excluded). */
export function modulePaths(text: string): string[] {
  return statementsOf(text, 'module')
    .map(({ rest }) => /^'([^']+)'/.exec(rest)?.[1] ?? '')
    .filter((path) => path !== '' && !/^(br|ts)[:/]/.test(path));
}

/** Type and API version of every resource declared (including `existing` references). */
export function resourceTypes(text: string): { name: string; type: string; apiVersion: string }[] {
  return statementsOf(text, 'resource').map(({ name, rest }) => {
    const match = /^'([^'@]+)@([^']+)'/.exec(rest);
    return { name, type: match?.[1] ?? '', apiVersion: match?.[2] ?? '' };
  });
}

/** The first `{ … }` body of a statement, without the outer braces. */
export function bodyOf(statement: Statement): string {
  const { code, inString } = scan(statement.rest);
  let open = -1;
  for (let i = 0; i < code.length; i++) {
    if (!inString[i] && code[i] === '{') {
      open = i;
      break;
    }
  }
  if (open === -1) throw new Error(`${statement.keyword} ${statement.name} has no { } body.`);
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (inString[i]) continue;
    if (code[i] === '{' || code[i] === '[' || code[i] === '(') depth++;
    if (code[i] === '}' || code[i] === ']' || code[i] === ')') depth--;
    if (depth === 0) return statement.rest.slice(open + 1, i);
  }
  throw new Error(`${statement.keyword} ${statement.name}: unbalanced braces.`);
}

/** Properties of an object literal body (one per line, as Bicep writes them): key → value source. */
export function objectProperties(body: string): Map<string, string> {
  const { code, inString } = scan(body);
  const properties = new Map<string, string>();
  let depth = 0;
  let lineStart = 0;
  for (let i = 0; i <= code.length; i++) {
    const char = code[i];
    if (i < code.length && !inString[i]) {
      if (char === '{' || char === '[' || char === '(') depth++;
      if (char === '}' || char === ']' || char === ')') depth--;
    }
    if ((char === '\n' || i === code.length) && depth === 0) {
      const line = code.slice(lineStart, i).trim();
      lineStart = i + 1;
      const match = /^(?:'([^']+)'|([A-Za-z_]\w*))\s*:\s*/.exec(line);
      if (match) properties.set(match[1] ?? match[2] ?? '', line.slice(match[0].length).trim());
    }
  }
  return properties;
}

/** A `var name = { … }` object literal's properties. */
export function objectVariable(text: string, name: string): Map<string, string> {
  return objectProperties(bodyOf(statementNamed(text, 'var', name)));
}

/** The value of a single-quoted string literal without interpolation; undefined for anything else. */
export function stringLiteral(source: string): string | undefined {
  const match = /^'((?:[^'\\$]|\\.|\$(?!\{))*)'$/.exec(source.trim());
  return match ? (match[1] ?? '').replace(/\\(.)/g, '$1') : undefined;
}
