import type { HttpRequest } from '@azure/functions';
import busboy from 'busboy';
import type { Readable } from 'node:stream';

import type { EditInputRole, EditLimits, RawEditInput } from '../domain/edit-images';
import { checkImageCount, checkInputSize } from '../domain/edit-images';
import { AppError, PayloadTooLargeError, ValidationError } from '../domain/errors';
import { tooLarge } from './read-body';

export interface EditForm {
  /** Text fields by name; each may appear once. */
  readonly fields: Readonly<Record<string, string>>;
  readonly images: readonly RawEditInput[];
  readonly mask?: RawEditInput | undefined;
}

const IMAGE_FIELDS = new Set(['image', 'image[]']);
// A prompt of 32,000 characters is up to 128 KB of UTF-8; nothing else comes near.
const MAX_FIELD_BYTES = 256 * 1024;
const MAX_FIELDS = 64;

/**
 * Reads a multipart edit as it streams in, the way the upstream and the `openai` SDK send it: `image`
 * or repeated `image[]` file parts, an optional `mask` part, and the parameters as text fields. Each
 * file is kept in the chunks it arrived in, and a file, the image count or the body is refused the
 * moment it passes its limit, without reading the rest.
 */
export async function readEditForm(request: HttpRequest, limits: EditLimits & { readonly maxBodyBytes: number }): Promise<EditForm> {
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limits.maxBodyBytes) throw tooLarge(limits.maxBodyBytes);

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': request.headers.get('content-type') ?? '' },
      defParamCharset: 'utf8',
      // No file-count limit here: busboy would drop extra parts silently; the 'file' handler refuses them itself.
      limits: { fieldSize: MAX_FIELD_BYTES, fields: MAX_FIELDS },
    });
  } catch (error: unknown) {
    throw invalidForm(error);
  }

  // A Map, so that names such as 'constructor' or '__proto__' are plain keys like any other.
  const fields = new Map<string, string>();
  const images: RawEditInput[] = [];
  let mask: RawEditInput | undefined;
  let failure: unknown;
  const fail = (error: unknown): void => {
    failure ??= error;
  };

  parser.on('field', (name, value, info) => {
    if (failure !== undefined) return;
    if (IMAGE_FIELDS.has(name) || name === 'mask') {
      fail(
        new ValidationError(`${name} must be a file part: give its Content-Disposition a filename (for example name=${name}; filename=input.png).`, {
          code: 'InvalidParameter',
          target: name,
        }),
      );
    } else if (info.valueTruncated) {
      fail(new ValidationError(`${name} is longer than the ${MAX_FIELD_BYTES} bytes a field may hold.`, { code: 'InvalidParameter', target: name }));
    } else if (fields.has(name)) {
      fail(new ValidationError(`${name} was sent more than once.`, { code: 'InvalidParameter', target: name }));
    } else {
      fields.set(name, value);
    }
  });

  parser.on('file', (name, stream, info) => {
    if (failure !== undefined) {
      stream.resume();
      return;
    }
    let role: EditInputRole;
    let target: string;
    if (IMAGE_FIELDS.has(name)) {
      role = 'image';
      target = name === 'image' && images.length === 0 ? 'image' : `image[${images.length}]`;
      try {
        checkImageCount(images.length + 1, 'image');
      } catch (error: unknown) {
        fail(error);
        stream.resume();
        return;
      }
    } else if (name === 'mask' && mask === undefined) {
      role = 'mask';
      target = 'mask';
    } else {
      fail(
        name === 'mask'
          ? new ValidationError('Send one mask; it applies to the first image.', { code: 'InvalidParameter', target: 'mask' })
          : new ValidationError(`Unknown file part '${name}'; send images as 'image' or 'image[]' and the mask as 'mask'.`, { code: 'UnknownParameter', target: name }),
      );
      stream.resume();
      return;
    }
    const input = { target, fileName: info.filename, size: 0, content: [] as Uint8Array[] };
    if (role === 'image') images.push(input);
    else mask = input;
    collect(stream, input, (size) => checkInputSize(role, target, size, limits), fail);
  });

  parser.on('fieldsLimit', () => fail(new ValidationError(`The form has more than ${MAX_FIELDS} fields.`, { code: 'InvalidRequest', target: 'body' })));

  const finished = new Promise<void>((resolve) => {
    parser.once('close', resolve);
    parser.on('error', (error: unknown) => {
      fail(invalidForm(error));
      resolve();
    });
  });

  let received = 0;
  for await (const chunk of (request.body ?? []) as AsyncIterable<unknown>) {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('The request body stream yielded something other than bytes.');
    received += chunk.length;
    if (received > limits.maxBodyBytes) fail(tooLarge(limits.maxBodyBytes));
    if (failure !== undefined) break;
    if (!parser.write(chunk)) await drained(parser);
  }
  if (failure === undefined) {
    parser.end();
    await finished;
  } else {
    parser.destroy();
  }
  if (failure !== undefined) throw failure instanceof AppError ? failure : invalidForm(failure);
  return { fields: Object.fromEntries(fields), images, mask };
}

/** Waits until the parser takes more input, or until it failed or closed (then no 'drain' will come). */
function drained(parser: busboy.Busboy): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      parser.off('drain', done).off('error', done).off('close', done);
      resolve();
    };
    parser.on('drain', done).on('error', done).on('close', done);
  });
}

/** Keeps a file's chunks as they come (no joining), checking the running size after each. */
function collect(stream: Readable, input: { size: number; content: Uint8Array[] }, checkSize: (size: number) => void, fail: (error: unknown) => void): void {
  let refused = false;
  stream.on('data', (chunk: Buffer) => {
    if (refused) return; // the rest of a refused file is drained, not kept
    input.size += chunk.length;
    try {
      checkSize(input.size);
      input.content.push(chunk);
    } catch (error: unknown) {
      refused = true;
      input.content.length = 0;
      fail(error);
    }
  });
}

function invalidForm(error: unknown): AppError {
  if (error instanceof PayloadTooLargeError) return error;
  const reason = error instanceof Error ? error.message : 'unreadable form';
  return new ValidationError(`The multipart/form-data body could not be read: ${reason}.`, { code: 'InvalidMultipart', target: 'body', cause: error });
}
