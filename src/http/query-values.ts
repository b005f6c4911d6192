import type { HttpRequest } from '@azure/functions';

import { ValidationError } from '../domain/errors';

const TRUE_VALUES = new Set(['true', '1']);
const BOOLEAN_VALUES = new Set(['true', 'false', '1', '0']);

/**
 * A boolean from the query string, read the one way every route reads them: `true`/`false`/`1`/`0`
 * in any letter case, since Logic Apps and Power Automate write booleans as `True` and `False`.
 * Undefined when the parameter is absent; anything else is a 400 naming the parameter.
 */
export function readQueryBoolean(request: HttpRequest, name: string): boolean | undefined {
  const raw = request.query.get(name);
  if (raw === null) return undefined;
  const value = raw.trim().toLowerCase();
  if (!BOOLEAN_VALUES.has(value)) {
    throw new ValidationError(`${name} must be 'true' or 'false' (any letter case, or 1 / 0), not '${raw.slice(0, 20)}'.`, {
      code: 'InvalidParameter',
      target: name,
    });
  }
  return TRUE_VALUES.has(value);
}
