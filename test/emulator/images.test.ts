import { crc32, deflateSync } from 'node:zlib';

import { readImageInfo } from '../../emulator/images/info';
import { encodeJpeg } from '../../emulator/images/jpeg';
import { LruCache } from '../../emulator/images/lru';
import { PngDecodeError, decodePng, encodePng } from '../../emulator/images/png';
import { ImageRenderer } from '../../emulator/images/render';
import { makePng, patternSamples, readJpeg, readPng } from './helpers';

describe('emulator images', () => {
  describe('PNG', () => {
    it('encodes RGB and RGBA that an independent reader accepts, pixel for pixel', async () => {
      for (const channels of [3, 4] as const) {
        const pixels = patternSamples(33, 17, channels);
        const png = readPng(await encodePng({ width: 33, height: 17, channels, pixels }));
        expect(png).toMatchObject({ width: 33, height: 17, bitDepth: 8, colourType: channels === 4 ? 6 : 2 });
        expect(Buffer.from(png.samples).equals(Buffer.from(pixels))).toBe(true);
      }
    });

    it('decodes all five row filters and grey, grey+alpha, RGB and RGBA into RGBA', async () => {
      for (const channels of [1, 2, 3, 4] as const) {
        const samples = patternSamples(19, 11, channels);
        const decoded = await decodePng(makePng(19, 11, channels, samples, [0, 1, 2, 3, 4]));
        expect(decoded).toMatchObject({ width: 19, height: 11, channels: 4, hasAlpha: channels === 2 || channels === 4 });
        for (const [x, y] of [
          [0, 0],
          [18, 10],
          [7, 5],
        ] as const) {
          const source = Array.from(samples.subarray((y * 19 + x) * channels, (y * 19 + x + 1) * channels));
          const expected =
            channels === 1 ? [source[0], source[0], source[0], 255] : channels === 2 ? [source[0], source[0], source[0], source[1]] : channels === 3 ? [...source, 255] : source;
          expect(Array.from(decoded.pixels.subarray((y * 19 + x) * 4, (y * 19 + x) * 4 + 4))).toEqual(expected);
        }
      }
    });

    it('reports corrupt files and unsupported variants (16-bit, palette, interlaced) differently', async () => {
      const good = makePng(4, 4, 3, patternSamples(4, 4, 3));
      const badCrc = Buffer.from(good);
      badCrc[29] = (badCrc[29] ?? 0) ^ 0xff; // the IHDR CRC
      await expect(decodePng(badCrc)).rejects.toMatchObject({ reason: 'corrupt' });
      await expect(decodePng(Buffer.from('nope'))).rejects.toMatchObject({ reason: 'corrupt' });
      await expect(decodePng(withHeader(4, 4, 16, 2, 0))).rejects.toMatchObject({ reason: 'unsupported' });
      await expect(decodePng(withHeader(4, 4, 8, 3, 0))).rejects.toMatchObject({ reason: 'unsupported' });
      await expect(decodePng(withHeader(4, 4, 8, 2, 1))).rejects.toBeInstanceOf(PngDecodeError);
    });
  });

  describe('JPEG', () => {
    it.each([
      [8, 8, 90],
      [13, 7, 75],
      [64, 40, 100],
      [100, 3, 10],
    ])('encodes %ix%i at quality %i as a baseline JPEG that decodes close to its source', (width, height, quality) => {
      const channels = 3;
      const pixels = new Uint8Array(width * height * channels);
      // Smooth content, which a JPEG should keep within a few levels.
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) pixels.set([(x * 255) / width, (y * 255) / height, 128], (y * width + x) * 3);
      }
      const jpeg = readJpeg(encodeJpeg({ width, height, channels, pixels }, quality));
      expect(jpeg).toMatchObject({ width, height, components: 3 });
      let error = 0;
      for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) error += Math.abs((jpeg.rgba[i * 4 + c] ?? 0) - (pixels[i * 3 + c] ?? 0));
      expect(error / (width * height * 3)).toBeLessThan(quality >= 75 ? 4 : 20);
    });
  });

  describe('readImageInfo', () => {
    it('reads the size of PNG, JPEG and the three WebP kinds', () => {
      expect(readImageInfo(makePng(5, 3, 3, new Uint8Array(45)))).toEqual({ format: 'png', width: 5, height: 3 });
      expect(readImageInfo(encodeJpeg({ width: 9, height: 4, channels: 3, pixels: new Uint8Array(108) }, 50))).toEqual({ format: 'jpeg', width: 9, height: 4 });
      const vp8x = riff('VP8X', (bytes) => {
        bytes.writeUIntLE(299, 24, 3);
        bytes.writeUIntLE(149, 27, 3);
      });
      const vp8l = riff('VP8L', (bytes) => {
        bytes[20] = 0x2f;
        bytes.writeUInt32LE((640 - 1) | ((480 - 1) << 14), 21);
      });
      const vp8 = riff('VP8 ', (bytes) => {
        bytes.set([0x9d, 0x01, 0x2a], 23);
        bytes.writeUInt16LE(800, 26);
        bytes.writeUInt16LE(600, 28);
      });
      expect([readImageInfo(vp8x), readImageInfo(vp8l), readImageInfo(vp8)]).toEqual([
        { format: 'webp', width: 300, height: 150 },
        { format: 'webp', width: 640, height: 480 },
        { format: 'webp', width: 800, height: 600 },
      ]);
      expect(readImageInfo(Buffer.from('GIF89a......................'))).toBeUndefined();
    });
  });

  describe('LruCache', () => {
    it('evicts the least recently used entry by count and by weight', () => {
      const cache = new LruCache<string>(2, 100);
      cache.set('a', 'A', 10);
      cache.set('b', 'B', 10);
      expect(cache.get('a')).toBe('A');
      cache.set('c', 'C', 10);
      expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual(['A', undefined, 'C']);
      cache.setWeight('c', 'C', 95);
      expect([cache.get('a'), cache.get('c')]).toEqual([undefined, 'C']);
      cache.set('huge', 'H', 101);
      expect(cache.get('huge')).toBeUndefined();
    });
  });

  describe('ImageRenderer', () => {
    it('shares one rendering between concurrent requests for the same image and caches it', async () => {
      const renderer = new ImageRenderer('flat', { maxEntries: 4, maxBytes: 1024 * 1024 });
      const spec = { prompt: 'x', width: 64, height: 64, format: 'png', transparent: false, index: 0 } as const;
      const [a, b] = await Promise.all([renderer.render(spec), renderer.render(spec)]);
      expect(a).toBe(b);
      expect(await renderer.render(spec)).toBe(a);
      expect(await renderer.render({ ...spec, index: 1 })).not.toEqual(a);
    });
  });
});

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function withHeader(width: number, height: number, depth: number, colourType: number, interlace: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = depth;
  header[9] = colourType;
  header[12] = interlace;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function riff(kind: string, fill: (bytes: Buffer) => void): Buffer {
  const bytes = Buffer.alloc(32);
  bytes.write('RIFF', 0, 'latin1');
  bytes.writeUInt32LE(24, 4);
  bytes.write(`WEBP${kind}`, 8, 'latin1');
  fill(bytes);
  return bytes;
}
