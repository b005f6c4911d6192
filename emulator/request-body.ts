/**
 * Reading and parsing request bodies: JSON for generations, multipart/form-data for edits (§4.1).
 * A body that does not parse is kept as an error and reported at the body stage, after the checks
 * that come before it (auth, deployment, faults), as the service orders them.
 */
import type { IncomingMessage } from 'node:http';

import { EmulatorHttpError, invalidRequest } from './errors';
import type { ImageOperation } from './routes';

export interface FilePart {
  readonly field: string;
  readonly filename: string;
  /** The part's declared Content-Type ('' when the part had none). */
  readonly contentType: string;
  readonly bytes: Uint8Array;
}

export type ParsedBody =
  | { readonly kind: 'json'; readonly value: Readonly<Record<string, unknown>> }
  | { readonly kind: 'form'; readonly fields: Readonly<Record<string, string>>; readonly files: readonly FilePart[] }
  | { readonly kind: 'invalid'; readonly error: EmulatorHttpError; readonly text?: string };

export function payloadTooLarge(limit: number): EmulatorHttpError {
  return new EmulatorHttpError(413, {
    error: { code: 'RequestEntityTooLarge', message: `The request body is larger than the ${limit} bytes this endpoint accepts.` },
  });
}

/** Reads the whole body, refusing (413) past `limit` bytes so a runaway client cannot exhaust memory. */
export async function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > limit) throw payloadTooLarge(limit);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

const INVALID_JSON_MESSAGE =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function parseBody(operation: ImageOperation, contentType: string | undefined, raw: Buffer): Promise<ParsedBody> {
  if (operation === 'edits') return parseForm(contentType, raw);
  const text = raw.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', error: invalidRequest(INVALID_JSON_MESSAGE, null, null), text };
  }
  if (!isRecord(value)) {
    return { kind: 'invalid', error: invalidRequest('Invalid type for the request body: expected an object.', null, 'invalid_type'), text };
  }
  return { kind: 'json', value };
}

async function parseForm(contentType: string | undefined, raw: Buffer): Promise<ParsedBody> {
  if (!contentType?.toLowerCase().startsWith('multipart/form-data')) {
    return {
      kind: 'invalid',
      error: invalidRequest(
        `Invalid Content-Type header (${contentType ?? 'none'}), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')`,
        null,
        null,
      ),
    };
  }
  let form: FormData;
  try {
    // The platform's own multipart parser (undici), rather than a hand-rolled one.
    form = await new Request('http://emulator.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
  } catch (error: unknown) {
    const reason = error instanceof Error ? error.message : String(error);
    return { kind: 'invalid', error: invalidRequest(`Could not parse the multipart form body: ${reason}`, null, null) };
  }
  const fields: Record<string, string> = {};
  const files: FilePart[] = [];
  for (const [name, value] of form.entries()) {
    if (typeof value === 'string') {
      // A repeated text field keeps its first value.
      fields[name] ??= value;
      continue;
    }
    files.push({ field: name, filename: value.name, contentType: value.type, bytes: new Uint8Array(await value.arrayBuffer()) });
  }
  return { kind: 'form', fields, files };
}

/** The prompt, if the body has one, for `[emulator:…]` directives; read before the body is validated. */
export function promptOf(body: ParsedBody): string | undefined {
  if (body.kind === 'json') return typeof body.value.prompt === 'string' ? body.value.prompt : undefined;
  if (body.kind === 'form') return body.fields.prompt;
  return undefined;
}

/** The body's `model` (v1 and OpenAI routes choose the deployment with it). */
export function modelOf(body: ParsedBody): unknown {
  if (body.kind === 'json') return body.value.model;
  if (body.kind === 'form') return body.fields.model;
  return undefined;
}

/** How many images the body asks for, as far as a quota is concerned: a valid `n`, else one. */
export function imageCountOf(body: ParsedBody): number {
  const raw: unknown = body.kind === 'json' ? body.value.n : body.kind === 'form' ? body.fields.n : undefined;
  const n = typeof raw === 'string' && /^\d{1,2}$/.test(raw) ? Number(raw) : raw;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 10 ? n : 1;
}
