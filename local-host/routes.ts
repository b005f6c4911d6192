/**
 * Route templates as the Functions host (ASP.NET Core routing) reads them: literal segments match
 * case-insensitively, `{id}` captures one segment, `{id?}` an optional last segment, `{*rest}` the
 * remainder, and `{id:int}`-style constraints narrow a capture (unknown constraints match anything).
 */
export interface RouteTemplate {
  readonly template: string;
  /** Sort key: literal segments win over captures, captures over optional and catch-all ones. */
  readonly rank: readonly number[];
  match(path: string): Record<string, string> | undefined;
}

const CONSTRAINTS: Readonly<Record<string, string>> = {
  int: '-?\\d+',
  long: '-?\\d+',
  bool: '(?:true|false)',
  alpha: '[A-Za-z]+',
  guid: '[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}',
};

interface Capture {
  readonly name: string;
  readonly optional: boolean;
  readonly catchAll: boolean;
  readonly pattern: string;
}

function parseCapture(token: string, template: string): Capture {
  const match = /^(\*{1,2})?([A-Za-z_][\w.-]*)(?::([^?=]+))?(\?)?$/.exec(token);
  const name = match?.[2];
  if (match === null || name === undefined) throw new Error(`Route "${template}" has an invalid parameter "{${token}}".`);
  const constraints = (match[3] ?? '').split(':').filter((c) => c !== '');
  const known = constraints.map((c) => CONSTRAINTS[c.toLowerCase()]).find((p) => p !== undefined);
  return { name, catchAll: match[1] !== undefined, optional: match[4] !== undefined, pattern: known ?? '[^/]+' };
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function compileRoute(template: string): RouteTemplate {
  const trimmed = template.replace(/^\/+|\/+$/g, '');
  const names: string[] = [];
  const rank: number[] = [];
  let source = '';
  const segments = trimmed === '' ? [] : trimmed.split('/');
  segments.forEach((segment, index) => {
    const whole = /^\{([^{}]+)\}$/.exec(segment);
    if (whole?.[1] !== undefined) {
      const capture = parseCapture(whole[1], template);
      const last = index === segments.length - 1;
      if ((capture.optional || capture.catchAll) && !last) {
        throw new Error(`Route "${template}": only the last parameter may be optional or catch-all.`);
      }
      names.push(capture.name);
      if (capture.catchAll) {
        source += '(?:/(.*))?';
        rank.push(5);
      } else if (capture.optional) {
        source += `(?:/(${capture.pattern}))?`;
        rank.push(4);
      } else {
        source += `/(${capture.pattern})`;
        rank.push(capture.pattern === '[^/]+' ? 3 : 2);
      }
      return;
    }
    // A literal segment, or a complex one such as "{name}.{ext}".
    let part = '';
    let complex = false;
    for (const piece of segment.split(/(\{[^{}]+\})/)) {
      const token = /^\{([^{}]+)\}$/.exec(piece)?.[1];
      if (token === undefined) {
        part += escapeRegExp(piece);
      } else {
        const capture = parseCapture(token, template);
        if (capture.optional || capture.catchAll) throw new Error(`Route "${template}": "{${token}}" must be a whole segment.`);
        names.push(capture.name);
        part += `(${capture.pattern.replace('[^/]+', '[^/]+?')})`;
        complex = true;
      }
    }
    source += `/${part}`;
    rank.push(complex ? 1 : 0);
  });
  const pattern = new RegExp(`^${source}/?$`, 'i');

  return {
    template: trimmed,
    rank,
    match(path: string) {
      const found = pattern.exec(path.startsWith('/') ? path : `/${path}`);
      if (found === null) return undefined;
      const params: Record<string, string> = {};
      names.forEach((name, index) => {
        const value = found[index + 1];
        if (value !== undefined) params[name] = safeDecode(value);
      });
      return params;
    },
  };
}

/** Orders routes so that the most specific template is tried first. */
export function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let index = 0; index < Math.min(a.length, b.length); index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
