import type { HttpRequest } from '@azure/functions';
import { z } from 'zod';

import { ValidationError } from '../domain/errors';
import type { OutputFormat } from '../domain/image-models';
import { OUTPUT_FORMATS } from '../domain/image-models';
import { parseWith } from './read-body';
import { oneOf } from './schemas';

// The custom connector picks the model and the output format first, as query parameters, because
// the designer derives the body's form from them (x-ms-dynamic-values / x-ms-dynamic-schema). Any
// caller may send them that way; they mean what the body fields of the same names mean.
const selectorsSchema = z.object({
  model: z.string().min(1, 'model must not be empty.').optional(),
  output_format: oneOf('output_format', OUTPUT_FORMATS, ' (Azure OpenAI does not produce WebP)').optional(),
});

interface Selected {
  readonly model?: string | undefined;
  readonly output_format?: OutputFormat | undefined;
}

/** `fields` with `model` and `output_format` from the query string where the body left them out. */
export function withQuerySelectors<T extends Selected>(request: HttpRequest, fields: T): T {
  const query = parseWith(selectorsSchema, {
    model: request.query.get('model') ?? undefined,
    output_format: request.query.get('output_format') ?? undefined,
  });
  let merged = fields;
  for (const name of ['model', 'output_format'] as const) {
    const fromQuery = query[name];
    if (fromQuery === undefined) continue;
    const fromBody = fields[name];
    if (fromBody !== undefined && fromBody !== fromQuery) {
      throw new ValidationError(`${name} is '${fromQuery}' in the query string but '${fromBody}' in the body; send it once.`, {
        code: 'ConflictingParameter',
        target: name,
      });
    }
    merged = { ...merged, [name]: fromQuery };
  }
  return merged;
}
