import { createHash } from 'node:crypto';

import { PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from './errors';
import type { GenerateImagesDependencies, GenerateImagesResult, RequestOptions } from './generate-images';
import { assertValidOptions, storeModelImages, upstreamFields } from './generate-images';
import type { ImageInfo } from './image-format';
import { MAX_SNIFF_BYTES, sniffImage } from './image-format';
import type { Caller } from './callers';
import type { ImageModel, ImageOptions } from './image-models';
import type { ImageUpload } from './ports';

/** The upstream takes at most 16 input images per edit. */
export const MAX_EDIT_IMAGES = 16;

/**
 * Size limits of an edit's inputs. Like the upstream's ("smaller than 50 MB", "smaller than 4 MB"),
 * the per-file limits are exclusive: a file must be smaller than its limit. The total covers every
 * input's bytes, however they arrived (multipart, base64 or by blob reference).
 */
export interface EditLimits {
  readonly maxImageBytes: number;
  readonly maxMaskBytes: number;
  readonly maxTotalBytes: number;
}

export type EditInputRole = 'image' | 'mask';

/** Refuses (413) an input that has reached its role's limit; called while bytes arrive, so nothing oversized is read whole. */
export function checkInputSize(role: EditInputRole, target: string, bytes: number, limits: EditLimits): void {
  const limit = role === 'mask' ? limits.maxMaskBytes : limits.maxImageBytes;
  if (bytes >= limit) {
    // While bytes still arrive the full size is unknown; "at least" is true either way.
    throw new PayloadTooLargeError(`${target} is too large (at least ${bytes} bytes); ${role === 'mask' ? 'a mask' : 'each image'} must be smaller than ${limit} bytes.`, {
      code: 'FileTooLarge',
      target,
    });
  }
}

/** Refuses (413) inputs whose bytes together exceed the request limit. */
export function checkTotalInputSize(bytes: number, limits: EditLimits, target: string): void {
  if (bytes > limits.maxTotalBytes) {
    throw new PayloadTooLargeError(`The input images add up to more than the ${limits.maxTotalBytes} bytes one edit may carry.`, { target });
  }
}

/** Refuses more images than an edit takes; called before any of them is read when the count is known first. */
export function checkImageCount(count: number, target: string): void {
  if (count > MAX_EDIT_IMAGES) {
    throw new ValidationError(`An edit takes at most ${MAX_EDIT_IMAGES} images; this request has ${count}.`, { code: 'TooManyImages', target });
  }
}

/** One input as it arrived: bytes still in the chunks they came in, and the field it came from. */
export interface RawEditInput {
  /** The field as the caller named it, for error targets: `image`, `image[2]`, `images[0]`, `mask`. */
  readonly target: string;
  /** The caller's file name, if it gave one; only its safe characters are kept. */
  readonly fileName?: string | undefined;
  readonly size: number;
  readonly content: readonly Uint8Array[];
}

/** An input that passed every check, described from its own bytes. */
export interface EditInputFile extends ImageUpload {
  readonly target: string;
  readonly info: ImageInfo;
  readonly sha256: string;
}

export interface EditInputs {
  readonly images: readonly EditInputFile[];
  /** Applies to the first image. */
  readonly mask?: EditInputFile | undefined;
}

/**
 * Checks an edit's inputs before anything is spent: how many, how big, and what they are, read from
 * their bytes rather than from any declared type. Images must be PNG or JPEG (Azure OpenAI does not
 * take WebP); the mask must be a PNG with an alpha channel and the first image's dimensions.
 */
export function prepareEditInputs(
  raw: { readonly images: readonly RawEditInput[]; readonly mask?: RawEditInput | undefined; readonly imagesTarget: string },
  limits: EditLimits,
): EditInputs {
  if (raw.images.length === 0) {
    throw new ValidationError('Send at least one image to edit.', { code: 'MissingParameter', target: raw.imagesTarget });
  }
  checkImageCount(raw.images.length, raw.imagesTarget);
  let total = 0;
  for (const input of raw.images) {
    checkInputSize('image', input.target, input.size, limits);
    total += input.size;
  }
  if (raw.mask) {
    checkInputSize('mask', raw.mask.target, raw.mask.size, limits);
    total += raw.mask.size;
  }
  checkTotalInputSize(total, limits, raw.imagesTarget);

  const images = raw.images.map((input, index) => describeImage(input, `image-${index}`));
  const first = images[0];
  const mask = raw.mask && first ? describeMask(raw.mask, first) : undefined;
  return { images, mask };
}

function describeImage(input: RawEditInput, fallbackName: string): EditInputFile {
  const info = sniff(input);
  if (!info) {
    throw new UnsupportedMediaTypeError(`${input.target} is not a PNG or JPEG image (judged from its bytes, not its declared type).`, {
      code: 'UnsupportedImageType',
      target: input.target,
    });
  }
  if (info.type === 'webp') {
    throw new UnsupportedMediaTypeError(`${input.target} is a WebP image; Azure OpenAI edits PNG and JPEG images only.`, {
      code: 'UnsupportedImageType',
      target: input.target,
    });
  }
  return toFile(input, info, fallbackName);
}

function describeMask(input: RawEditInput, first: EditInputFile): EditInputFile {
  const info = sniff(input);
  if (info?.type !== 'png') {
    throw new UnsupportedMediaTypeError(`${input.target} must be a PNG image (judged from its bytes, not its declared type).`, {
      code: 'UnsupportedImageType',
      target: input.target,
    });
  }
  // The service reads masks as RGBA or grey+alpha; a palette with a tRNS chunk is not an alpha channel to it.
  if (info.pngColourType !== 4 && info.pngColourType !== 6) {
    throw new ValidationError(
      `${input.target} has no alpha channel; save it as an RGBA PNG whose fully transparent pixels mark the area to edit.`,
      { code: 'InvalidMask', target: input.target },
    );
  }
  if (info.width !== first.info.width || info.height !== first.info.height) {
    throw new ValidationError(
      `${input.target} is ${info.width}x${info.height} but ${first.target} is ${first.info.width}x${first.info.height}; the mask must have the first image's dimensions.`,
      { code: 'MaskSizeMismatch', target: input.target },
    );
  }
  return toFile(input, info, 'mask');
}

/** Type and dimensions from the file's first bytes; headers are all that is needed. */
function sniff(input: RawEditInput): ImageInfo | undefined {
  const head: Uint8Array[] = [];
  let length = 0;
  for (const chunk of input.content) {
    if (length >= MAX_SNIFF_BYTES) break;
    const piece = chunk.subarray(0, MAX_SNIFF_BYTES - length);
    head.push(piece);
    length += piece.length;
  }
  const result = sniffImage(head.length === 1 && head[0] ? head[0] : Buffer.concat(head, length));
  return typeof result === 'string' ? undefined : result;
}

const EXTENSIONS = { png: 'png', jpeg: 'jpg', webp: 'webp' } as const;

function toFile(input: RawEditInput, info: ImageInfo, fallbackName: string): EditInputFile {
  const hash = createHash('sha256');
  for (const chunk of input.content) hash.update(chunk);
  return {
    target: input.target,
    fileName: safeFileName(input.fileName, fallbackName, EXTENSIONS[info.type]),
    contentType: info.contentType,
    size: input.size,
    content: input.content,
    info,
    sha256: hash.digest('hex'),
  };
}

/**
 * The name sent upstream in the part's Content-Disposition: the caller's base name reduced to safe
 * ASCII (no quotes or line breaks can reach the header), with the extension of what the bytes are.
 */
function safeFileName(given: string | undefined, fallback: string, extension: string): string {
  const base = (given ?? '').split(/[/\\]/).pop() ?? '';
  const stem = base
    .replace(/\.[A-Za-z0-9]{1,5}$/, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 80);
  return `${stem || fallback}.${extension}`;
}

export interface EditImagesCommand {
  readonly prompt: string;
  readonly model: ImageModel;
  readonly options: ImageOptions;
  readonly user?: string | undefined;
  readonly caller: Caller;
  readonly includeBase64: boolean;
  readonly inputs: EditInputs;
}

/**
 * Edits images: checks the parameters against the model's edit rules, sends the checked inputs
 * upstream, and stores, links and records the results exactly as generations are.
 */
export async function editImages(
  command: EditImagesCommand,
  dependencies: GenerateImagesDependencies,
  options: RequestOptions = {},
): Promise<GenerateImagesResult> {
  assertValidOptions(command.model, command.prompt, command.options, 'edit');
  const { images, mask } = command.inputs;
  return storeModelImages(
    {
      operation: 'edit',
      model: command.model,
      options: command.options,
      user: command.user,
      caller: command.caller,
      promptLength: command.prompt.length,
      inputImages: images.map((input) => input.info),
      includeBase64: command.includeBase64,
      recordedRequest: {
        prompt: command.prompt,
        model: command.model,
        user: command.user,
        caller: command.caller.id,
        ...command.options,
        images: images.map(describeInput),
        mask: mask === undefined ? undefined : describeInput(mask),
      },
    },
    dependencies,
    (sink, callOptions) =>
      dependencies.imageModel.editImages(
        { ...upstreamFields(command, dependencies.deploymentFor), inputFidelity: command.options.inputFidelity, images, mask },
        sink,
        callOptions,
      ),
    options,
  );
}

/** What the request record keeps of an input: enough to recognise it, never its bytes. */
function describeInput(file: EditInputFile) {
  return {
    field: file.target,
    fileName: file.fileName,
    contentType: file.contentType,
    bytes: file.size,
    width: file.info.width,
    height: file.info.height,
    sha256: file.sha256,
  };
}
