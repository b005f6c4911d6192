/**
 * A small PNG encoder and decoder on node:zlib: enough to produce real images of any size and to read
 * back the 8-bit, non-interlaced PNGs that edit requests bring (image and mask).
 */
import { promisify } from 'node:util';
import { crc32, deflate, inflate } from 'node:zlib';

import type { RasterImage } from './raster';

const deflateAsync = promisify(deflate);
const inflateAsync = promisify(inflate);

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const COLOUR_TYPE_GREY = 0;
const COLOUR_TYPE_RGB = 2;
const COLOUR_TYPE_GREY_ALPHA = 4;
const COLOUR_TYPE_RGBA = 6;

const CHANNELS_BY_COLOUR_TYPE: Readonly<Record<number, number>> = {
  [COLOUR_TYPE_GREY]: 1,
  [COLOUR_TYPE_RGB]: 3,
  [COLOUR_TYPE_GREY_ALPHA]: 2,
  [COLOUR_TYPE_RGBA]: 4,
};

export interface PngEncodeOptions {
  /** zlib level, 0–9; default 6. */
  readonly level?: number;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  // The CRC covers the type and the data, not the length.
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encodes RGB (colour type 2) or RGBA (colour type 6) pixels as an 8-bit, non-interlaced PNG. */
export async function encodePng(image: RasterImage, options: PngEncodeOptions = {}): Promise<Buffer> {
  const { width, height, channels, pixels } = image;
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = channels === 4 ? COLOUR_TYPE_RGBA : COLOUR_TYPE_RGB;
  // Bytes 10-12: compression 0 (deflate), filter method 0, interlace 0.

  // Filter type 0 (None) on every row: measured smaller and faster than Up for the emulator's art, and noise gains nothing from filters.
  const stride = width * channels;
  const filtered = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    filtered.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }

  const compressed = await deflateAsync(filtered, { level: options.level ?? 6 });
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', compressed), chunk('IEND', Buffer.alloc(0))]);
}

export class PngDecodeError extends Error {
  constructor(
    message: string,
    /** 'unsupported' is a valid PNG this decoder does not read; 'corrupt' is not a valid PNG at all. */
    readonly reason: 'unsupported' | 'corrupt',
  ) {
    super(message);
    this.name = 'PngDecodeError';
  }
}

export interface DecodedPng extends RasterImage {
  readonly channels: 4;
  /** Whether the file carried an alpha channel (colour type 4 or 6); otherwise every alpha is 255. */
  readonly hasAlpha: boolean;
}

/** Decodes an 8-bit, non-interlaced grey, grey+alpha, RGB or RGBA PNG into RGBA pixels. */
export async function decodePng(bytes: Uint8Array): Promise<DecodedPng> {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length < 8 || !data.subarray(0, 8).equals(PNG_SIGNATURE)) throw new PngDecodeError('not a PNG file', 'corrupt');

  let width = 0;
  let height = 0;
  let colourType = -1;
  const idat: Buffer[] = [];
  let offset = 8;
  let sawEnd = false;
  while (offset + 12 <= data.length && !sawEnd) {
    const length = data.readUInt32BE(offset);
    const type = data.toString('latin1', offset + 4, offset + 8);
    const end = offset + 8 + length;
    if (end + 4 > data.length) throw new PngDecodeError(`chunk ${type} runs past the end of the file`, 'corrupt');
    if (crc32(data.subarray(offset + 4, end)) !== data.readUInt32BE(end)) throw new PngDecodeError(`chunk ${type} has a bad CRC`, 'corrupt');
    const body = data.subarray(offset + 8, end);
    if (type === 'IHDR') {
      if (length !== 13) throw new PngDecodeError('IHDR has the wrong length', 'corrupt');
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const bitDepth = body[8];
      colourType = body[9] ?? -1;
      if (bitDepth !== 8) throw new PngDecodeError(`bit depth ${bitDepth} is not supported (8 only)`, 'unsupported');
      if (CHANNELS_BY_COLOUR_TYPE[colourType] === undefined) {
        throw new PngDecodeError(`colour type ${colourType} is not supported (grey, RGB, grey+alpha, RGBA only)`, 'unsupported');
      }
      if (body[12] !== 0) throw new PngDecodeError('interlaced PNGs are not supported', 'unsupported');
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      sawEnd = true;
    }
    offset = end + 4;
  }
  if (colourType < 0 || width === 0 || height === 0) throw new PngDecodeError('missing IHDR', 'corrupt');
  if (idat.length === 0) throw new PngDecodeError('missing IDAT', 'corrupt');

  const sourceChannels = CHANNELS_BY_COLOUR_TYPE[colourType] ?? 4;
  let raw: Buffer;
  try {
    raw = await inflateAsync(Buffer.concat(idat));
  } catch (error: unknown) {
    throw new PngDecodeError(`IDAT does not inflate: ${error instanceof Error ? error.message : String(error)}`, 'corrupt');
  }
  const stride = width * sourceChannels;
  if (raw.length < height * (stride + 1)) throw new PngDecodeError('IDAT holds too few bytes for the image size', 'corrupt');

  const unfiltered = unfilter(raw, width, height, sourceChannels);
  return {
    width,
    height,
    channels: 4,
    pixels: toRgba(unfiltered, width * height, sourceChannels),
    hasAlpha: colourType === COLOUR_TYPE_GREY_ALPHA || colourType === COLOUR_TYPE_RGBA,
  };
}

/** Reverses the five PNG scanline filters (None, Sub, Up, Average, Paeth) into a fresh buffer. */
function unfilter(raw: Buffer, width: number, height: number, bytesPerPixel: number): Uint8Array {
  const stride = width * bytesPerPixel;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filterType = raw[y * (stride + 1)];
    const input = y * (stride + 1) + 1;
    const row = y * stride;
    const previous = row - stride;
    for (let x = 0; x < stride; x++) {
      const left = x >= bytesPerPixel ? (out[row + x - bytesPerPixel] ?? 0) : 0;
      const up = y > 0 ? (out[previous + x] ?? 0) : 0;
      const upLeft = y > 0 && x >= bytesPerPixel ? (out[previous + x - bytesPerPixel] ?? 0) : 0;
      const value = raw[input + x] ?? 0;
      let predicted: number;
      switch (filterType) {
        case 0:
          predicted = 0;
          break;
        case 1:
          predicted = left;
          break;
        case 2:
          predicted = up;
          break;
        case 3:
          predicted = (left + up) >> 1;
          break;
        case 4:
          predicted = paeth(left, up, upLeft);
          break;
        default:
          throw new PngDecodeError(`unknown filter type ${filterType} in row ${y}`, 'corrupt');
      }
      out[row + x] = (value + predicted) & 0xff;
    }
  }
  return out;
}

function paeth(left: number, up: number, upLeft: number): number {
  const estimate = left + up - upLeft;
  const toLeft = Math.abs(estimate - left);
  const toUp = Math.abs(estimate - up);
  const toUpLeft = Math.abs(estimate - upLeft);
  if (toLeft <= toUp && toLeft <= toUpLeft) return left;
  return toUp <= toUpLeft ? up : upLeft;
}

function toRgba(samples: Uint8Array, pixelCount: number, channels: number): Uint8Array {
  if (channels === 4) return samples;
  const out = new Uint8Array(pixelCount * 4);
  for (let i = 0; i < pixelCount; i++) {
    const s = i * channels;
    const o = i * 4;
    if (channels === 3) {
      out[o] = samples[s] ?? 0;
      out[o + 1] = samples[s + 1] ?? 0;
      out[o + 2] = samples[s + 2] ?? 0;
      out[o + 3] = 255;
    } else {
      const grey = samples[s] ?? 0;
      out[o] = grey;
      out[o + 1] = grey;
      out[o + 2] = grey;
      out[o + 3] = channels === 2 ? (samples[s + 1] ?? 0) : 255;
    }
  }
  return out;
}
