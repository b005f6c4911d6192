import { deflateSync } from 'node:zlib';

import { sniffImage } from '../../src/domain/image-format';

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return Buffer.concat([length, Buffer.from(type, 'ascii'), data, Buffer.alloc(4)]);
}

function png(width: number, height: number, colourType: number, extra: Buffer[] = []): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = colourType;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), ...extra, chunk('IDAT', deflateSync(Buffer.alloc(8))), chunk('IEND', Buffer.alloc(0))]);
}

function jpeg(width: number, height: number, app1Bytes = 0): Buffer {
  const app1 = Buffer.alloc(4 + app1Bytes);
  app1.writeUInt16BE(0xffe1, 0);
  app1.writeUInt16BE(app1Bytes + 2, 2);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app1, sof, Buffer.from([0xff, 0xda, 0x00, 0x02, 0xff, 0xd9])]);
}

describe('sniffImage', () => {
  it('reads PNG dimensions, colour type and whether it has an alpha channel', () => {
    expect(sniffImage(png(1536, 1024, 2))).toEqual({ type: 'png', contentType: 'image/png', width: 1536, height: 1024, hasAlphaChannel: false, pngColourType: 2 });
    expect(sniffImage(png(64, 48, 6))).toMatchObject({ width: 64, height: 48, hasAlphaChannel: true, pngColourType: 6 });
    expect(sniffImage(png(64, 48, 3, [chunk('PLTE', Buffer.alloc(3)), chunk('tRNS', Buffer.from([0]))]))).toMatchObject({ hasAlphaChannel: true, pngColourType: 3 });
  });

  it('reads JPEG dimensions past large APP segments', () => {
    expect(sniffImage(jpeg(1024, 1536, 30_000))).toEqual({ type: 'jpeg', contentType: 'image/jpeg', width: 1024, height: 1536 });
  });

  it('asks for more bytes while the header is incomplete', () => {
    const full = jpeg(10, 20, 1000);
    expect(sniffImage(full.subarray(0, 500))).toBe('need-more');
    expect(sniffImage(png(1, 1, 2).subarray(0, 20))).toBe('need-more');
    expect(sniffImage(Buffer.from([0x89, 0x50]))).toBe('need-more');
  });

  it('reads WebP dimensions', () => {
    const vp8x = Buffer.alloc(30);
    vp8x.write('RIFF', 0, 'ascii');
    vp8x.write('WEBP', 8, 'ascii');
    vp8x.write('VP8X', 12, 'ascii');
    vp8x.writeUIntLE(799, 24, 3);
    vp8x.writeUIntLE(599, 27, 3);
    expect(sniffImage(vp8x)).toEqual({ type: 'webp', contentType: 'image/webp', width: 800, height: 600 });
  });

  it('calls anything else unknown', () => {
    expect(sniffImage(Buffer.from('<html><body>not an image</body></html>'))).toBe('unknown');
    expect(sniffImage(Buffer.from('GIF89a......................'))).toBe('unknown');
  });
});
