/**
 * The files of an edit request (§4.1, §4.2): `image` / `image[]` (up to 16) and the optional `mask`,
 * checked as the service checks them: by declared part type, size, readable content, and the mask's
 * alpha channel and dimensions against the first image.
 */
import { invalidRequest } from './errors';
import type { ImageInfo } from './images/info';
import { readImageInfo } from './images/info';
import type { DecodedPng } from './images/png';
import { PngDecodeError, decodePng } from './images/png';
import type { ApiFlavour } from './routes';
import type { FilePart } from './request-body';
import { listValues } from './validation';

export const MAX_INPUT_IMAGES = 16;
export const MAX_MASK_BYTES = 4 * 1024 * 1024;

export interface EditInputs {
  readonly images: readonly ImageInfo[];
  /** The first image's pixels when it is a PNG this emulator can read; otherwise the edit draws from the prompt. */
  readonly firstImage: DecodedPng | undefined;
  readonly mask: DecodedPng | undefined;
}

const IMAGE_FIELDS = new Set(['image', 'image[]']);

/** Text fields that name files; the caller removes them before validating the scalar parameters. */
export const FILE_FIELD_NAMES: ReadonlySet<string> = new Set([...IMAGE_FIELDS, 'mask']);

export async function readEditInputs(options: {
  readonly fields: Readonly<Record<string, string>>;
  readonly files: readonly FilePart[];
  readonly flavour: ApiFlavour;
  readonly maxImageBytes: number;
}): Promise<EditInputs> {
  const { fields, files, flavour, maxImageBytes } = options;
  for (const name of FILE_FIELD_NAMES) {
    if (fields[name] === undefined) continue;
    const param = name === 'mask' ? 'mask' : 'image';
    const expected = name === 'mask' ? 'a file' : 'one of an array of files or file';
    throw invalidRequest(`Invalid type for '${param}': expected ${expected}, but got a string instead.`, param, 'invalid_type');
  }

  const imageParts = files.filter((file) => IMAGE_FIELDS.has(file.field));
  if (imageParts.length === 0) throw invalidRequest("Missing required parameter: 'image'.", 'image', 'missing_required_parameter');
  if (imageParts.length > MAX_INPUT_IMAGES) {
    throw invalidRequest(
      `Invalid 'image': array too long. Expected an array with maximum length ${MAX_INPUT_IMAGES}, but got an array with length ${imageParts.length} instead.`,
      'image',
      'array_above_max_length',
    );
  }

  // Azure documents PNG and JPEG inputs only; OpenAI also takes WebP.
  const allowedTypes = flavour === 'openai' ? ['image/jpeg', 'image/png', 'image/webp'] : ['image/jpeg', 'image/png'];
  const images = imageParts.map((part, index) => {
    checkPart(part, 'image', allowedTypes, maxImageBytes);
    const info = readImageInfo(part.bytes);
    if (!info || !allowedTypes.includes(`image/${info.format}`)) {
      throw invalidRequest(`Invalid image file or mode for image ${index + 1}, please check your image file.`, 'image', 'invalid_image_file');
    }
    return info;
  });

  const firstPart = imageParts[0];
  let firstImage: DecodedPng | undefined;
  if (firstPart && images[0]?.format === 'png') {
    try {
      firstImage = await decodePng(firstPart.bytes);
    } catch (error: unknown) {
      if (!(error instanceof PngDecodeError)) throw error;
      // A valid PNG the emulator cannot read (16-bit, palette, interlaced) is edited from the prompt instead.
      if (error.reason === 'corrupt') throw invalidRequest('Invalid image file or mode for image 1, please check your image file.', 'image', 'invalid_image_file');
    }
  }

  const maskPart = files.find((file) => file.field === 'mask');
  const first = images[0];
  const mask = maskPart && first ? await readMask(maskPart, first) : undefined;
  return { images, firstImage, mask };
}

function checkPart(part: FilePart, param: string, allowedTypes: readonly string[], maxBytes: number): void {
  // The service checks the declared part type, not the bytes; an untyped part counts as application/octet-stream.
  const declared = (part.contentType.split(';')[0] ?? '').trim().toLowerCase() || 'application/octet-stream';
  if (!allowedTypes.includes(declared)) {
    throw invalidRequest(
      `Invalid file '${param}': unsupported mimetype ('${declared}'). Supported file formats are ${listValues(allowedTypes)}.`,
      param,
      'unsupported_file_mimetype',
    );
  }
  if (part.bytes.length >= maxBytes) {
    throw invalidRequest(
      `Invalid file '${param}': the file is ${part.bytes.length} bytes; files must be smaller than ${maxBytes} bytes.`,
      param,
      'file_too_large',
    );
  }
}

async function readMask(part: FilePart, first: ImageInfo): Promise<DecodedPng> {
  checkPart(part, 'mask', ['image/png'], MAX_MASK_BYTES);
  let mask: DecodedPng;
  try {
    mask = await decodePng(part.bytes);
  } catch (error: unknown) {
    if (!(error instanceof PngDecodeError)) throw error;
    throw invalidRequest(`Invalid mask image: ${error.message}. The mask must be an 8-bit PNG with an alpha channel.`, 'mask', 'invalid_value');
  }
  if (!mask.hasAlpha) {
    throw invalidRequest('Invalid mask image: the mask must have an alpha channel (RGBA or grey with alpha).', 'mask', 'invalid_value');
  }
  if (mask.width !== first.width || mask.height !== first.height) {
    throw invalidRequest(
      `Invalid mask image: the mask is ${mask.width}x${mask.height} but the image is ${first.width}x${first.height}; they must have the same dimensions.`,
      'mask',
      'invalid_value',
    );
  }
  return mask;
}
