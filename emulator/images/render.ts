/**
 * Prompt-derived pictures: the same prompt always gives the same bytes, another prompt (or another
 * index within one response) gives other pixels. 'flat' art is a gradient with a disc and compresses
 * to a few kilobytes; 'noise' adds keyed noise so that files weigh what the real service's do.
 */
import { createCipheriv, createHash } from 'node:crypto';

import { encodeJpeg } from './jpeg';
import { LruCache } from './lru';
import type { DecodedPng } from './png';
import { encodePng } from './png';
import type { RasterImage } from './raster';

export type ImageDetail = 'flat' | 'noise';
export type OutputFormat = 'png' | 'jpeg';

export interface ImageSpec {
  readonly prompt: string;
  readonly width: number;
  readonly height: number;
  readonly format: OutputFormat;
  readonly transparent: boolean;
  readonly index: number;
  /** JPEG only; the service's `output_compression`, used as the JPEG quality (100 = best). */
  readonly compression?: number;
  /** Distinguishes pictures of the same prompt that play other roles (a streamed partial image, an edit fallback). */
  readonly variant?: string;
}

export type Rgb = readonly [number, number, number];

function seedOf(...parts: readonly (string | number)[]): Buffer {
  return createHash('sha256').update(JSON.stringify(parts)).digest();
}

const byteAt = (seed: Buffer, index: number): number => seed[index] ?? 0;

/** The colour an edit paints with (under the mask's transparent pixels, or as a tint), per prompt and output index. */
export function editColour(prompt: string, index: number): Rgb {
  const seed = seedOf('edit-colour', prompt, index);
  return [byteAt(seed, 0), byteAt(seed, 1), byteAt(seed, 2)];
}

/** A diagonal two-colour gradient with a disc of a third colour; outside the disc is fully transparent when asked. */
export function renderFlat(width: number, height: number, seed: Buffer, transparent: boolean): RasterImage {
  const channels = transparent ? 4 : 3;
  const pixels = new Uint8Array(width * height * channels);
  const from: Rgb = [byteAt(seed, 0), byteAt(seed, 1), byteAt(seed, 2)];
  const to: Rgb = [byteAt(seed, 3), byteAt(seed, 4), byteAt(seed, 5)];
  const disc: Rgb = [byteAt(seed, 6), byteAt(seed, 7), byteAt(seed, 8)];
  const angle = (byteAt(seed, 9) / 256) * 2 * Math.PI;
  const dx = Math.cos(angle);
  const dy = Math.sin(angle);
  // t runs from 0 to 1 across the image along the gradient direction.
  const span = Math.abs(dx) + Math.abs(dy);
  const stepX = dx / span / width;
  const stepY = dy / span / height;
  const originT = 0.5 - (dx + dy) / span / 2;
  const centreX = (0.25 + (0.5 * byteAt(seed, 10)) / 255) * width;
  const centreY = (0.25 + (0.5 * byteAt(seed, 11)) / 255) * height;
  const radius = (0.15 + (0.2 * byteAt(seed, 12)) / 255) * Math.min(width, height);
  const radiusSquared = radius * radius;

  const [fromR, fromG, fromB] = from;
  const spanR = to[0] - fromR;
  const spanG = to[1] - fromG;
  const spanB = to[2] - fromB;
  for (let y = 0; y < height; y++) {
    const rowStart = y * width * channels;
    // The gradient first, then the disc's span of this row painted over it: no per-pixel branch.
    let t = originT + y * stepY;
    for (let offset = rowStart, end = rowStart + width * channels; offset < end; offset += channels) {
      pixels[offset] = fromR + spanR * t;
      pixels[offset + 1] = fromG + spanG * t;
      pixels[offset + 2] = fromB + spanB * t;
      t += stepX;
    }
    const distanceY = y - centreY;
    if (distanceY * distanceY > radiusSquared) continue;
    const halfChord = Math.sqrt(radiusSquared - distanceY * distanceY);
    const firstX = Math.max(0, Math.ceil(centreX - halfChord));
    const lastX = Math.min(width - 1, Math.floor(centreX + halfChord));
    for (let x = firstX; x <= lastX; x++) {
      const offset = rowStart + x * channels;
      pixels[offset] = disc[0];
      pixels[offset + 1] = disc[1];
      pixels[offset + 2] = disc[2];
      // Outside the disc alpha stays 0 (the array starts zeroed): truly transparent pixels.
      if (channels === 4) pixels[offset + 3] = 255;
    }
  }
  return { width, height, channels, pixels };
}

/** Replaces every colour sample with keyed noise (AES-CTR keystream: native speed, deterministic per seed). */
function addNoise(image: RasterImage, seed: Buffer): RasterImage {
  const keystream = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16)).update(Buffer.alloc(image.pixels.length));
  const { pixels, channels } = image;
  if (channels === 3) {
    pixels.set(keystream);
    return image;
  }
  // Alpha stays as drawn so that transparent areas remain transparent.
  for (let i = 0; i < pixels.length; i += 4) {
    pixels[i] = keystream[i] ?? 0;
    pixels[i + 1] = keystream[i + 1] ?? 0;
    pixels[i + 2] = keystream[i + 2] ?? 0;
  }
  return image;
}

/**
 * PNG at a low zlib level: noise does not compress at all (level 0 stores it, ~2x faster than level 1
 * at the same size), and flat art stays small at level 1 (~100 KB at 1024x1024) while an 8-megapixel
 * image deflates in ~20 ms instead of ~150 ms at the default level.
 */
export async function encodeImage(image: RasterImage, format: OutputFormat, compression: number | undefined, detail: ImageDetail): Promise<Buffer> {
  if (format === 'jpeg') return encodeJpeg(image, compression ?? 100);
  return encodePng(image, { level: detail === 'noise' ? 0 : 1 });
}

export interface EditSpec {
  readonly prompt: string;
  readonly index: number;
  readonly width: number;
  readonly height: number;
  readonly format: OutputFormat;
  readonly background: 'transparent' | 'opaque' | 'auto';
  readonly compression?: number;
  /** The first input image, when it could be decoded (PNG); otherwise the result is drawn from the prompt. */
  readonly input?: DecodedPng;
  readonly mask?: DecodedPng;
}

export interface RenderedImage {
  readonly bytes: Buffer;
  readonly transparent: boolean;
}

/**
 * Draws images for one emulator. Generated images are cached (bounded) because benchmarks ask for the
 * same few prompts again and again; concurrent requests for the same image share one rendering.
 */
export class ImageRenderer {
  private readonly cache: LruCache<Promise<Buffer>>;

  constructor(
    private readonly detail: ImageDetail,
    cacheLimits: { readonly maxEntries: number; readonly maxBytes: number } = { maxEntries: 64, maxBytes: 128 * 1024 * 1024 },
  ) {
    this.cache = new LruCache(cacheLimits.maxEntries, cacheLimits.maxBytes);
  }

  render(spec: ImageSpec): Promise<Buffer> {
    const promptHash = createHash('sha256').update(spec.prompt).digest('base64');
    const key = [spec.variant ?? '', this.detail, spec.format, spec.compression ?? '', spec.transparent, spec.width, spec.height, spec.index, promptHash].join('|');
    const cached = this.cache.get(key);
    if (cached) return cached;
    const rendering = this.draw(spec);
    this.cache.set(key, rendering);
    rendering.then(
      (bytes) => this.cache.setWeight(key, rendering, bytes.length),
      // A failed rendering must not be served again from the cache; the caller sees the rejection itself.
      () => this.cache.delete(key),
    );
    return rendering;
  }

  clearCache(): void {
    this.cache.clear();
  }

  private async draw(spec: ImageSpec): Promise<Buffer> {
    const seed = seedOf(spec.variant ?? 'image', spec.prompt, spec.index);
    const flat = renderFlat(spec.width, spec.height, seed, spec.transparent && spec.format === 'png');
    const image = this.detail === 'noise' ? addNoise(flat, seed) : flat;
    return encodeImage(image, spec.format, spec.compression, this.detail);
  }

  /**
   * An edit result that can be checked against its input: with a mask, pixels under mask alpha 0 take
   * the prompt's edit colour and all others keep their input values exactly; without a mask, every pixel
   * is tinted a quarter of the way toward that colour. The input is resampled (nearest neighbour) when
   * the requested size differs, so kept pixels are still exact copies of input pixels.
   */
  async renderEdit(spec: EditSpec): Promise<RenderedImage> {
    const { input, mask } = spec;
    if (!input) {
      const transparent = spec.background === 'transparent' && spec.format === 'png';
      const bytes = await this.render({ ...spec, transparent, variant: 'edit-fallback' });
      return { bytes, transparent };
    }
    const transparent = spec.format === 'png' && (spec.background === 'transparent' || (spec.background === 'auto' && input.hasAlpha));
    const channels = transparent ? 4 : 3;
    const { width, height } = spec;
    const pixels = new Uint8Array(width * height * channels);
    const colour = editColour(spec.prompt, spec.index);
    let offset = 0;
    for (let y = 0; y < height; y++) {
      const sourceRow = Math.floor((y * input.height) / height) * input.width;
      for (let x = 0; x < width; x++) {
        const source = (sourceRow + Math.floor((x * input.width) / width)) * 4;
        const replace = mask !== undefined && mask.pixels[source + 3] === 0;
        for (let c = 0; c < 3; c++) {
          const original = input.pixels[source + c] ?? 0;
          const painted = colour[c] ?? 0;
          pixels[offset + c] = replace ? painted : mask ? original : (original * 3 + painted) >> 2;
        }
        if (channels === 4) pixels[offset + 3] = replace ? 255 : (input.pixels[source + 3] ?? 255);
        offset += channels;
      }
    }
    const bytes = await encodeImage({ width, height, channels, pixels }, spec.format, spec.compression, this.detail);
    return { bytes, transparent };
  }
}
