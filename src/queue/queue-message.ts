import type { InvocationContext } from '@azure/functions';
import type { z } from 'zod';

/**
 * A queue message in the shape `schema` describes, or undefined when it is not: then it is logged
 * and dropped, since no redelivery could make it one. The host hands over a JSON message already
 * decoded from base64 and parsed, and anything else as the string it is.
 */
export function parseQueueMessage<Schema extends z.ZodType>(message: unknown, schema: Schema, context: InvocationContext, expected: string): z.infer<Schema> | undefined {
  const parsed = schema.safeParse(typeof message === 'string' ? jsonOrUndefined(message) : message);
  if (!parsed.success) {
    context.error(`Dropping a queue message that is not ${expected}.`);
    return undefined;
  }
  return parsed.data;
}

function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
