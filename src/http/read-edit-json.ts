import type { HttpRequest } from '@azure/functions';

import type { EditInputRole, EditLimits, RawEditInput } from '../domain/edit-images';
import { checkImageCount, checkInputSize, checkTotalInputSize } from '../domain/edit-images';
import { assertValidBlobName } from '../domain/blob-names';
import { ValidationError } from '../domain/errors';
import type { InputContainer, InputImageStore } from '../domain/ports';
import type { EditImagesJsonBody, ImageSource } from './edit-schemas';
import { editImagesJsonBody } from './edit-schemas';
import { readJsonBody } from './read-body';

export interface JsonEdit {
  readonly fields: Omit<EditImagesJsonBody, 'images' | 'mask'>;
  readonly images: readonly RawEditInput[];
  readonly mask?: RawEditInput | undefined;
}

/**
 * Reads a JSON edit and turns each image source into bytes, one at a time, refusing as soon as a file
 * or the inputs together pass their limits: base64 is measured before it is decoded, and referenced
 * blobs are measured before and while they are read.
 */
export async function readEditJson(
  request: HttpRequest,
  inputImages: InputImageStore,
  limits: EditLimits & { readonly maxBodyBytes: number },
): Promise<JsonEdit> {
  const { images: sources, mask: maskSource, ...fields } = await readJsonBody(request, editImagesJsonBody, limits.maxBodyBytes);
  checkImageCount(sources.length, 'images');

  let total = 0;
  const read = async (source: ImageSource, role: EditInputRole, target: string): Promise<RawEditInput> => {
    const input = await toRawInput(source, target, inputImages, (size) => {
      checkInputSize(role, target, size, limits);
      checkTotalInputSize(total + size, limits, target);
    });
    total += input.size;
    return input;
  };
  const images: RawEditInput[] = [];
  for (const [index, source] of sources.entries()) images.push(await read(source, 'image', `images[${index}]`));
  const mask = maskSource === undefined ? undefined : await read(maskSource, 'mask', 'mask');
  return { fields, images, mask };
}

async function toRawInput(
  source: ImageSource,
  target: string,
  inputImages: InputImageStore,
  checkSize: (size: number) => void,
): Promise<RawEditInput> {
  if (typeof source === 'object' && 'blob' in source) {
    const { container, blobName } = parseBlobReference(source.blob, `${target}.blob`);
    const blob = await inputImages.readInputBlob(container, blobName, { target: `${target}.blob`, checkSize });
    return { target, fileName: blobName, size: blob.size, content: blob.content };
  }
  const base64 = typeof source === 'string' ? base64OfString(source, target) : source.$content;
  const bytes = decodeBase64(base64, target, checkSize);
  return { target, size: bytes.length, content: [bytes] };
}

const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** A string is a data URI or bare base64; anything else with a scheme is a URL, which is never fetched. */
function base64OfString(value: string, target: string): string {
  if (value.startsWith('data:')) {
    const comma = value.indexOf(',');
    const parameters = comma === -1 ? [] : value.slice(5, comma).split(';');
    if (comma === -1 || !parameters.includes('base64')) {
      throw new ValidationError(`${target} is a data URI without base64 content; send data:image/png;base64,<base64>.`, { code: 'InvalidImageData', target });
    }
    return value.slice(comma + 1);
  }
  if (URI_SCHEME.test(value)) {
    throw new ValidationError(
      `${target} looks like a URL; this API does not fetch URLs. Send the image's bytes (base64, a data URI or a $content object) or {"blob": "inbox/<name>"}.`,
      { code: 'UnsupportedImageSource', target },
    );
  }
  return value;
}

// Standard or URL-safe alphabet, padding optional; line breaks (MIME-style base64) are removed first.
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Decodes strictly (Buffer.from alone would skip garbage silently), after checking the decoded size against the limits. */
function decodeBase64(value: string, target: string, checkSize: (size: number) => void): Buffer {
  const compact = /\s/.test(value) ? value.replace(/\s+/g, '') : value;
  if (compact.length === 0 || compact.length % 4 === 1 || !BASE64.test(compact)) {
    throw new ValidationError(`${target} is not valid base64.`, { code: 'InvalidImageData', target });
  }
  const padding = compact.endsWith('==') ? 2 : compact.endsWith('=') ? 1 : 0;
  checkSize(Math.floor((compact.length * 3) / 4) - padding);
  return Buffer.from(compact, 'base64');
}

/** Logical container names, mapped by the blob store to the configured containers. */
const isInputContainer = (value: string): value is InputContainer => value === 'images' || value === 'inbox';

/**
 * `images/<name>` or `inbox/<name>`: a blob of the app's own containers, by name. The name must pass
 * the one blob-name check (no empty, `.` or `..` segments, no backslashes or control characters).
 */
export function parseBlobReference(reference: string, target: string): { container: InputContainer; blobName: string } {
  const slash = reference.indexOf('/');
  const container = reference.slice(0, slash);
  const blobName = reference.slice(slash + 1);
  if (slash <= 0 || !isInputContainer(container)) {
    throw new ValidationError(`${target} must be "images/<blob name>" or "inbox/<blob name>", naming a blob in this app's images or inbox container.`, {
      code: 'InvalidBlobReference',
      target,
    });
  }
  assertValidBlobName(blobName, target, 'InvalidBlobReference');
  return { container, blobName };
}
