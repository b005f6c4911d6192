import type { HttpRequest } from '@azure/functions';
import type { z } from 'zod';

import type { ErrorDetail } from '../domain/errors';
import { PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../domain/errors';
import { findJsonSyntaxError } from './json-syntax';

/** Reads the body as bytes, refusing it once it grows past `maxBytes` (declared or actual). */
export async function readBodyBytes(request: HttpRequest, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body as AsyncIterable<unknown>) {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('The request body stream yielded something other than bytes.');
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export const tooLarge = (maxBytes: number) => new PayloadTooLargeError(`The request body is larger than the ${maxBytes} bytes this endpoint accepts.`);

export function mediaTypeOf(request: HttpRequest): string {
  return (request.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Parses an `application/json` body with `schema`; every problem found is reported at once. */
export async function readJsonBody<T>(request: HttpRequest, schema: z.ZodType<T>, maxBytes: number): Promise<T> {
  const mediaType = mediaTypeOf(request);
  if (mediaType !== 'application/json' && !mediaType.endsWith('+json')) {
    throw new UnsupportedMediaTypeError(`Send the body as application/json (got '${mediaType || 'no content type'}').`);
  }
  const bytes = await readBodyBytes(request, maxBytes);
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error: unknown) {
    // The parser's own message quotes the body; the caller gets the position instead.
    const syntax = findJsonSyntaxError(text);
    const where = syntax ? `: ${syntax.reason} at line ${syntax.line}, column ${syntax.column}` : '';
    throw new ValidationError(`The body is not valid JSON${where}.`, { code: 'InvalidJson', target: 'body', cause: error });
  }
  return parseWith(schema, json);
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.flatMap(toDetails);
  const first = details[0];
  throw new ValidationError(details.length === 1 && first ? first.message : `The request has ${details.length} problems; see details.`, {
    code: details.length === 1 && first ? first.code : 'InvalidRequest',
    target: details.length === 1 ? first?.target : undefined,
    details,
  });
}

// `images[0].blob`, as a caller would write it.
const targetOf = (path: readonly PropertyKey[]) =>
  path.map((key, index) => (typeof key === 'number' ? `[${key}]` : `${index === 0 ? '' : '.'}${String(key)}`)).join('');

function toDetails(issue: z.core.$ZodIssue): ErrorDetail[] {
  const target = targetOf(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      code: 'UnknownParameter',
      target: target ? `${target}.${key}` : key,
      message: `Unknown parameter '${key}'.`,
    }));
  }
  if (issue.code === 'invalid_type' && target === '') {
    return [{ code: 'InvalidRequest', target: 'body', message: 'The body must be a JSON object.' }];
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return [{ code: 'MissingParameter', target, message: issue.message }];
  }
  return [{ code: 'InvalidParameter', target, message: target && !issue.message.includes(target) ? `${target}: ${issue.message}` : issue.message }];
}
