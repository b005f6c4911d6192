/**
 * Helpers for the emulator tests: HTTP calls over loopback with undici, and image readers written
 * independently of the emulator's own encoders, so that a broken encoder cannot vouch for itself.
 */
import { deflateSync, inflateSync } from 'node:zlib';

import { decode as decodeJpeg } from 'jpeg-js';
import { request } from 'undici';
import { z } from 'zod';

export const KEY = 'emulator-key';
export const API_VERSION = '2025-04-01-preview';

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

export async function call(
  url: string,
  options: { method?: 'GET' | 'POST' | 'PUT'; headers?: Record<string, string>; body?: string | Buffer; signal?: AbortSignal } = {},
): Promise<HttpResult> {
  const response = await request(url, {
    method: options.method ?? 'POST',
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await response.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, text, json };
}

export function deploymentUrl(base: string, deployment: string, operation: 'generations' | 'edits' = 'generations', apiVersion: string | null = API_VERSION): string {
  const query = apiVersion === null ? '' : `?api-version=${apiVersion}`;
  return `${base}/openai/deployments/${deployment}/images/${operation}${query}`;
}

/** POST a JSON generation to the dated Azure route with the default key. */
export function generate(base: string, body: Record<string, unknown>, deployment = 'gpt-image-1', headers: Record<string, string> = {}): Promise<HttpResult> {
  return call(deploymentUrl(base, deployment), {
    headers: { 'api-key': KEY, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

const errorSchema = z.object({
  error: z
    .object({
      code: z.string().nullable().optional(),
      message: z.string(),
      param: z.string().nullable().optional(),
      type: z.string().optional(),
    })
    .loose(),
});

/** The `error` member of an error body (fails the test when the body has none). */
export function errorOf(result: HttpResult): z.infer<typeof errorSchema>['error'] {
  return errorSchema.parse(result.json).error;
}

export const imagesResponseSchema = z.object({
  created: z.number().int(),
  data: z.array(z.object({ b64_json: z.string().optional(), url: z.string().optional(), revised_prompt: z.string().optional() }).loose()),
  background: z.string().optional(),
  output_format: z.string().optional(),
  quality: z.string().optional(),
  size: z.string().optional(),
  usage: z
    .object({
      input_tokens: z.number(),
      output_tokens: z.number(),
      total_tokens: z.number(),
      input_tokens_details: z.object({ text_tokens: z.number(), image_tokens: z.number() }),
    })
    .loose()
    .optional(),
});

export function imagesOf(result: HttpResult): Buffer[] {
  return imagesResponseSchema.parse(result.json).data.map((item) => Buffer.from(item.b64_json ?? '', 'base64'));
}

// ---- PNG, read independently -----------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const CHANNELS_BY_COLOUR_TYPE: Readonly<Record<number, number>> = { 0: 1, 2: 3, 4: 2, 6: 4 };

export interface TestPng {
  readonly width: number;
  readonly height: number;
  readonly bitDepth: number;
  readonly colourType: number;
  readonly channels: number;
  readonly chunkTypes: readonly string[];
  /** Unfiltered samples, row-major, `channels` per pixel. */
  readonly samples: Uint8Array;
}

/** Parses a PNG, checking the signature, every chunk CRC, the chunk order and the inflated size. */
export function readPng(bytes: Buffer): TestPng {
  expectBytes(bytes.subarray(0, 8), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const chunkTypes: string[] = [];
  const idat: Buffer[] = [];
  let header: Buffer | undefined;
  let offset = 8;
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    const expected = bytes.readUInt32BE(offset + 8 + length);
    if (crc(bytes.subarray(offset + 4, offset + 8 + length)) !== expected) throw new Error(`bad CRC in ${type}`);
    chunkTypes.push(type);
    if (type === 'IHDR') header = data;
    if (type === 'IDAT') idat.push(data);
    offset += 12 + length;
  }
  if (!header || chunkTypes[0] !== 'IHDR' || chunkTypes[chunkTypes.length - 1] !== 'IEND') throw new Error(`bad chunk order ${chunkTypes.join(',')}`);
  const width = header.readUInt32BE(0);
  const height = header.readUInt32BE(4);
  const bitDepth = header[8] ?? 0;
  const colourType = header[9] ?? 0;
  const channels = CHANNELS_BY_COLOUR_TYPE[colourType] ?? 0;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error(`IDAT inflates to ${raw.length} bytes, expected ${height * (stride + 1)}`);
  const samples = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)] ?? 255;
    if (filter > 4) throw new Error(`bad filter ${filter} in row ${y}`);
    const input = y * (stride + 1) + 1;
    const row = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? (samples[row + x - channels] ?? 0) : 0;
      const b = y > 0 ? (samples[row - stride + x] ?? 0) : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const c = x >= channels && y > 0 ? (samples[row - stride + x - channels] ?? 0) : 0;
        const p = a + b - c;
        predictor = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      }
      samples[row + x] = ((raw[input + x] ?? 0) + predictor) & 0xff;
    }
  }
  return { width, height, bitDepth, colourType, channels, chunkTypes, samples };
}

/**
 * Encodes an 8-bit PNG for test inputs, independently of the emulator. Rows use the given filter
 * types in turn (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth) so that decoders meet all of them.
 */
export function makePng(width: number, height: number, channels: 1 | 2 | 3 | 4, samples: Uint8Array, filters: readonly number[] = [0]): Buffer {
  const colourType = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const stride = width * channels;
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const filter = filters[y % filters.length] ?? 0;
    raw[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const value = samples[y * stride + x] ?? 0;
      const a = x >= channels ? (samples[y * stride + x - channels] ?? 0) : 0;
      const b = y > 0 ? (samples[(y - 1) * stride + x] ?? 0) : 0;
      const c = x >= channels && y > 0 ? (samples[(y - 1) * stride + x - channels] ?? 0) : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter] ?? 0;
      raw[y * (stride + 1) + 1 + x] = (value - predictor) & 0xff;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = colourType;
  const chunk = (type: string, data: Buffer): Buffer => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Samples whose value depends on position and channel, so that every pixel can be told apart. */
export function patternSamples(width: number, height: number, channels: number): Uint8Array {
  const samples = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) samples[(y * width + x) * channels + c] = (x * 7 + y * 13 + c * 71) & 0xff;
    }
  }
  return samples;
}

export function pixelOf(png: TestPng, x: number, y: number): number[] {
  const start = (y * png.width + x) * png.channels;
  return Array.from(png.samples.subarray(start, start + png.channels));
}

// ---- JPEG, read independently ----------------------------------------------------------------

export interface TestJpeg {
  readonly width: number;
  readonly height: number;
  readonly components: number;
  readonly markers: readonly number[];
  /** RGBA pixels decoded by jpeg-js. */
  readonly rgba: Uint8Array;
}

/** Walks the JPEG's segments (SOI … SOF0 … SOS … EOI) and decodes it with jpeg-js. */
export function readJpeg(bytes: Buffer): TestJpeg {
  expectBytes(bytes.subarray(0, 2), [0xff, 0xd8], 'SOI');
  expectBytes(bytes.subarray(bytes.length - 2), [0xff, 0xd9], 'EOI');
  const markers: number[] = [];
  let offset = 2;
  let width = 0;
  let height = 0;
  let components = 0;
  for (;;) {
    if (bytes[offset] !== 0xff) throw new Error(`expected a marker at ${offset}`);
    const marker = bytes[offset + 1] ?? 0;
    markers.push(marker);
    const length = bytes.readUInt16BE(offset + 2);
    if (marker === 0xc0) {
      height = bytes.readUInt16BE(offset + 5);
      width = bytes.readUInt16BE(offset + 7);
      components = bytes[offset + 9] ?? 0;
    }
    offset += 2 + length;
    if (marker === 0xda) break;
  }
  const decoded = decodeJpeg(bytes, { useTArray: true, maxMemoryUsageInMB: 1024, maxResolutionInMP: 100 });
  if (decoded.width !== width || decoded.height !== height) throw new Error('jpeg-js disagrees with SOF0 about the size');
  return { width, height, components, markers, rgba: decoded.data };
}

function expectBytes(actual: Buffer, expected: readonly number[], what: string): void {
  if (!actual.equals(Buffer.from(expected))) throw new Error(`bad ${what}: ${actual.toString('hex')}`);
}

// ---- Tokens and multipart --------------------------------------------------------------------

/** An unsigned JWT with the given claims; the emulator checks shape and claims, not signatures. */
export function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJl`;
}

export interface FormFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly type?: string;
  readonly filename?: string;
}

/** Encodes a multipart body the way the SDK sends it (undici's own encoder, via Response). */
export async function multipart(fields: Record<string, string>, files: readonly FormFile[]): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const file of files) {
    form.append(file.name, new Blob([Buffer.from(file.bytes)], file.type === undefined ? {} : { type: file.type }), file.filename ?? 'image.png');
  }
  const encoded = new Response(form);
  return { body: Buffer.from(await encoded.arrayBuffer()), contentType: encoded.headers.get('content-type') ?? '' };
}

export async function edit(
  base: string,
  fields: Record<string, string>,
  files: readonly FormFile[],
  options: { deployment?: string; apiVersion?: string | null; url?: string; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  const { body, contentType } = await multipart(fields, files);
  const url = options.url ?? deploymentUrl(base, options.deployment ?? 'gpt-image-1', 'edits', options.apiVersion === undefined ? API_VERSION : options.apiVersion);
  return call(url, { headers: { 'api-key': KEY, 'content-type': contentType, ...options.headers }, body });
}

/** The head of a WebP file (VP8X): enough for the dimensions, which is all the emulator reads of WebP. */
export function webpHeader(width: number, height: number): Buffer {
  const bytes = Buffer.alloc(30);
  bytes.write('RIFF', 0, 'latin1');
  bytes.writeUInt32LE(22, 4);
  bytes.write('WEBPVP8X', 8, 'latin1');
  bytes.writeUInt32LE(10, 16);
  bytes.writeUIntLE(width - 1, 24, 3);
  bytes.writeUIntLE(height - 1, 27, 3);
  return bytes;
}
