import { createHash } from 'node:crypto';

/**
 * `bicep snapshot` evaluates everything known before a deployment and leaves the rest as ARM
 * expressions, e.g. "[reference('/subscriptions/…/storageAccounts/stimgabc', '2023-05-01').primaryEndpoints.blob]".
 * This evaluates just the functions those leftovers use, with sample values for what only a real
 * deployment knows (endpoints, the identity's ids), so tests can hand the app settings to the app's
 * own config parser and say which principal gets which role. It is not an ARM implementation: an
 * unknown function or runtime property throws, naming what to add.
 */

/**
 * A value read from a deployed resource: its id and the property path (from the resource's
 * properties, or from the whole resource when `reference(…, 'full')` asked for it).
 */
export interface RuntimeProperty {
  readonly resourceId: string;
  readonly path: readonly string[];
}

type Value = string | number | boolean | null | RuntimeReference | Value[] | { readonly [key: string]: Value };

class RuntimeReference {
  constructor(
    readonly resourceId: string,
    readonly path: readonly string[] = [],
  ) {}
  with(property: string): RuntimeReference {
    return new RuntimeReference(this.resourceId, [...this.path, property]);
  }
}

/** `type` and `name` segments of a resource id: /subscriptions/…/providers/Ns/type/name[/child/name]. */
function parseResourceId(resourceId: string): { type: string; names: string[] } {
  const match = /\/providers\/([^/]+)\/(.+)$/.exec(resourceId);
  if (!match) throw new Error(`not a resource id: ${resourceId}`);
  const segments = (match[2] ?? '').split('/');
  const types = segments.filter((_, i) => i % 2 === 0);
  const names = segments.filter((_, i) => i % 2 === 1);
  return { type: [match[1], ...types].join('/'), names };
}

/** A stable GUID-shaped value made from its inputs (stands in for ids Azure assigns). */
export function sampleGuid(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** What a deployment would return for a property that is only known once the resource exists. */
export function sampleRuntimeValue({ resourceId, path }: RuntimeProperty): string {
  const { type, names } = parseResourceId(resourceId);
  const name = names[names.length - 1] ?? '';
  const property = path.join('.');
  switch (`${type} ${property}`) {
    case 'Microsoft.Storage/storageAccounts primaryEndpoints.blob':
      return `https://${name}.blob.core.windows.net/`;
    case 'Microsoft.Storage/storageAccounts primaryEndpoints.queue':
      return `https://${name}.queue.core.windows.net/`;
    case 'Microsoft.Storage/storageAccounts primaryEndpoints.table':
      return `https://${name}.table.core.windows.net/`;
    case 'Microsoft.ManagedIdentity/userAssignedIdentities clientId':
    case 'Microsoft.ManagedIdentity/userAssignedIdentities principalId':
    case 'Microsoft.EventGrid/systemTopics identity.principalId':
      return sampleGuid(resourceId, property);
    case 'Microsoft.Insights/components ConnectionString':
      return `InstrumentationKey=${sampleGuid(resourceId)};IngestionEndpoint=https://${name}.in.applicationinsights.azure.com/`;
    case 'Microsoft.CognitiveServices/accounts endpoint':
      return `https://${name}.openai.azure.com/`;
    case 'Microsoft.KeyVault/vaults vaultUri':
      return `https://${name}.vault.azure.net/`;
    case 'Microsoft.Web/sites defaultHostName':
      return `${name}.azurewebsites.net`;
    default:
      throw new Error(`no sample for ${property} of ${type}; add one to sampleRuntimeValue in test/infra/arm-expressions.ts`);
  }
}

/** Evaluates every "[…]" expression in a JSON value; literal strings and everything else pass through. */
export function evaluate(value: unknown): unknown {
  if (typeof value === 'string') return isExpression(value) ? resolve(new Parser(value.slice(1, -1)).parseAll()) : unescapeBrackets(value);
  if (Array.isArray(value)) return value.map(evaluate);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [evaluate(key), evaluate(item)]));
  return value;
}

/** "[[" starts a literal string that begins with "[", per ARM. */
function isExpression(text: string): boolean {
  return text.startsWith('[') && !text.startsWith('[[') && text.endsWith(']');
}

function unescapeBrackets(text: string): string {
  return text.startsWith('[[') ? text.slice(1) : text;
}

function resolve(value: Value): unknown {
  if (value instanceof RuntimeReference) return sampleRuntimeValue(value);
  if (Array.isArray(value)) return value.map(resolve);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolve(item)]));
  return value;
}

type Token = { kind: 'string'; text: string } | { kind: 'number'; value: number } | { kind: 'name'; text: string } | { kind: 'symbol'; text: string };

class Parser {
  private readonly tokens: Token[];
  private position = 0;

  constructor(private readonly source: string) {
    this.tokens = tokenize(source);
  }

  parseAll(): Value {
    const value = this.expression();
    if (this.position !== this.tokens.length) throw new Error(`unexpected text in ARM expression: ${this.source}`);
    return value;
  }

  private expression(): Value {
    let value = this.primary();
    while (this.take('.')) value = property(value, this.name());
    return value;
  }

  private primary(): Value {
    const token = this.tokens[this.position++];
    if (token === undefined) throw new Error(`ARM expression ends too early: ${this.source}`);
    if (token.kind === 'string') return token.text;
    if (token.kind === 'number') return token.value;
    if (token.kind !== 'name') throw new Error(`unexpected '${token.text}' in ARM expression: ${this.source}`);
    this.expect('(');
    const args: Value[] = [];
    if (!this.take(')')) {
      do args.push(this.expression());
      while (this.take(','));
      this.expect(')');
    }
    return call(token.text, args, this.source);
  }

  private name(): string {
    const token = this.tokens[this.position++];
    if (token?.kind !== 'name') throw new Error(`expected a property name in ARM expression: ${this.source}`);
    return token.text;
  }

  private take(symbol: string): boolean {
    const token = this.tokens[this.position];
    if (token?.kind === 'symbol' && token.text === symbol) {
      this.position++;
      return true;
    }
    return false;
  }

  private expect(symbol: string): void {
    if (!this.take(symbol)) throw new Error(`expected '${symbol}' in ARM expression: ${this.source}`);
  }
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const char = source[i] ?? '';
    if (/\s/.test(char)) {
      i++;
    } else if (char === "'") {
      let text = '';
      i++;
      for (;;) {
        if (i >= source.length) throw new Error(`unterminated string in ARM expression: ${source}`);
        if (source[i] === "'" && source[i + 1] === "'") {
          text += "'";
          i += 2;
        } else if (source[i] === "'") {
          i++;
          break;
        } else {
          text += source[i];
          i++;
        }
      }
      tokens.push({ kind: 'string', text });
    } else if (/[0-9-]/.test(char)) {
      const match = /^-?\d+/.exec(source.slice(i));
      if (!match) throw new Error(`bad number in ARM expression: ${source}`);
      tokens.push({ kind: 'number', value: Number(match[0]) });
      i += match[0].length;
    } else if (/[A-Za-z_]/.test(char)) {
      const match = /^[A-Za-z_][\w]*/.exec(source.slice(i));
      tokens.push({ kind: 'name', text: match?.[0] ?? char });
      i += match?.[0].length ?? 1;
    } else if ('(),.'.includes(char)) {
      tokens.push({ kind: 'symbol', text: char });
      i++;
    } else {
      throw new Error(`unexpected '${char}' in ARM expression: ${source}`);
    }
  }
  return tokens;
}

function property(value: Value, name: string): Value {
  if (value instanceof RuntimeReference) return value.with(name);
  throw new Error(`cannot read .${name} of ${JSON.stringify(value)}`);
}

function text(value: Value, source: string): string {
  if (value instanceof RuntimeReference) return sampleRuntimeValue(value);
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  throw new Error(`expected a string, got ${JSON.stringify(value)} in ARM expression: ${source}`);
}

function call(name: string, args: Value[], source: string): Value {
  switch (name) {
    case 'reference':
      return new RuntimeReference(text(args[0] ?? '', source));
    case 'format': {
      const [template, ...rest] = args.map((arg) => text(arg, source));
      return (template ?? '').replace(/\{(\d+)\}/g, (_, index: string) => rest[Number(index)] ?? '');
    }
    case 'concat':
      return args.map((arg) => text(arg, source)).join('');
    case 'extensionResourceId': {
      const [scope, type, ...names] = args.map((arg) => text(arg, source));
      return `${scope}/providers/${type}/${names.join('/')}`;
    }
    case 'guid':
      return sampleGuid(...args.map((arg) => text(arg, source)));
    case 'createArray':
      return args;
    case 'createObject': {
      const entries: [string, Value][] = [];
      for (let i = 0; i < args.length; i += 2) entries.push([text(args[i] ?? '', source), args[i + 1] ?? null]);
      return Object.fromEntries(entries);
    }
    case 'string': {
      // ARM writes arrays and objects as compact JSON, and leaves a string as it is.
      const value = resolve(args[0] ?? null);
      return typeof value === 'string' ? value : JSON.stringify(value);
    }
    default:
      throw new Error(`ARM function ${name}() is not evaluated by test/infra/arm-expressions.ts: ${source}`);
  }
}
