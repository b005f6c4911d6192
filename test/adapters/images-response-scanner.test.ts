import { randomBytes } from 'node:crypto';

import { Base64StreamDecoder, ImagesResponseScanner, MalformedResponseError } from '../../src/adapters/images-response-scanner';

interface Collected {
  images: Buffer[];
  skeleton: unknown;
}

/** Feeds `body` to a scanner in pieces of the given sizes (cycled) and decodes every image. */
function scan(body: string, pieceSizes: number[] = [body.length]): Collected {
  const scanner = new ImagesResponseScanner();
  const bytes = Buffer.from(body);
  const decoder = new Base64StreamDecoder();
  const parts: Buffer[][] = [];
  let offset = 0;
  for (let piece = 0; offset < bytes.length; piece++) {
    const size = pieceSizes[piece % pieceSizes.length] ?? 1;
    for (const event of scanner.push(bytes.subarray(offset, offset + size))) {
      if (event.kind === 'image-start') {
        parts[event.index] = [];
      } else if (event.kind === 'image-base64') {
        // Copied: the decoder reuses its output buffer on the next push.
        parts[event.index]?.push(Buffer.from(decoder.push(event.data)));
      } else {
        decoder.end();
      }
    }
    offset += size;
  }
  return { images: parts.map((chunks) => Buffer.concat(chunks)), skeleton: scanner.end() };
}

const images = [randomBytes(10_000), randomBytes(7_777), randomBytes(1)];
const body = JSON.stringify({
  created: 1700000000,
  data: images.map((image, index) => ({ b64_json: image.toString('base64'), revised_prompt: `a "quoted" prompt ${index} \\ done` })),
  usage: { input_tokens: 5, output_tokens: 272, input_tokens_details: { text_tokens: 5, image_tokens: 0 } },
  size: '1024x1024',
});

describe('ImagesResponseScanner', () => {
  it('hands out every image exactly and keeps everything else as a parsable skeleton', () => {
    const { images: decoded, skeleton } = scan(body);
    expect(decoded).toEqual(images);
    expect(skeleton).toEqual({
      created: 1700000000,
      data: images.map((_, index) => ({ b64_json: '', revised_prompt: `a "quoted" prompt ${index} \\ done` })),
      usage: { input_tokens: 5, output_tokens: 272, input_tokens_details: { text_tokens: 5, image_tokens: 0 } },
      size: '1024x1024',
    });
  });

  it.each([[[1]], [[2]], [[3]], [[5, 7, 11]], [[4096]], [[65_536]]])('gives the same result whatever the chunk sizes (%j)', (sizes) => {
    expect(scan(body, sizes)).toEqual(scan(body));
  });

  it('unescapes \\/ inside base64, also when the escape is split across chunks', () => {
    const image = Buffer.from([0xff, 0xff, 0xff, 0xfe, 0xff]); // base64 contains '/'
    const escaped = `{"created":1,"data":[{"b64_json":"${image.toString('base64').replace(/\//g, '\\/')}"}]}`;
    expect(escaped).toContain('\\/');
    for (const sizes of [[1], [2], [escaped.length]]) {
      expect(scan(escaped, sizes).images).toEqual([image]);
    }
  });

  it('finds images whatever the key order and ignores b64_json keys elsewhere', () => {
    const image = randomBytes(300);
    const text = `{"usage":{"b64_json":"bm90IGFuIGltYWdl"},"data":[{"revised_prompt":"x","nested":{"b64_json":"Zm9v"},"b64_json":"${image.toString('base64')}"}],"created":2}`;
    const { images: decoded, skeleton } = scan(text, [3]);
    expect(decoded).toEqual([image]);
    expect(skeleton).toMatchObject({ usage: { b64_json: 'bm90IGFuIGltYWdl' }, data: [{ nested: { b64_json: 'Zm9v' }, b64_json: '' }] });
  });

  it('refuses a body that was cut short inside an image', () => {
    expect(() => scan(body.slice(0, 5000))).toThrow(MalformedResponseError);
  });

  it('refuses a body that was cut short after the images', () => {
    expect(() => scan(body.slice(0, -2))).toThrow(MalformedResponseError);
  });

  it('refuses data after the end of the JSON', () => {
    expect(() => scan(`${body} {}`)).toThrow(MalformedResponseError);
  });

  it('refuses a body that is not JSON', () => {
    expect(() => scan('{"created":1,"data":[{"b64_json":"QUFB"}],"usage":{,}}')).toThrow(MalformedResponseError);
  });

  it('refuses other escape sequences inside base64', () => {
    expect(() => scan('{"data":[{"b64_json":"QU\\nFB"}]}')).toThrow(MalformedResponseError);
  });

  it('refuses an escaped quote inside base64, whatever the chunk sizes', () => {
    for (const sizes of [[1], [4], [100]]) {
      expect(() => scan('{"created":1,"data":[{"b64_json":"QUFB\\"QUFB"}]}', sizes)).toThrow(MalformedResponseError);
    }
  });

  it('hands out long base64 with many escaped slashes unchanged', () => {
    const image = Buffer.alloc(200_000, 0xff); // every base64 character is '/'
    const escaped = `{"created":1,"data":[{"b64_json":"${image.toString('base64').replace(/\//g, '\\/')}"}]}`;
    for (const sizes of [[escaped.length], [65_536], [7]]) {
      expect(scan(escaped, sizes).images).toEqual([image]);
    }
  });

  it('refuses an oversized skeleton instead of buffering it', () => {
    const scanner = new ImagesResponseScanner(100);
    expect(() => scanner.push(Buffer.from(JSON.stringify({ created: 1, padding: 'x'.repeat(200) })))).toThrow(MalformedResponseError);
  });
});

describe('Base64StreamDecoder', () => {
  it('decodes base64 split at any offset', () => {
    const bytes = randomBytes(1000);
    const text = Buffer.from(bytes.toString('base64'));
    for (const step of [1, 2, 3, 5, 13, 4096]) {
      const decoder = new Base64StreamDecoder();
      const out: Buffer[] = [];
      for (let offset = 0; offset < text.length; offset += step) out.push(Buffer.from(decoder.push(text.subarray(offset, offset + step))));
      decoder.end();
      expect(Buffer.concat(out)).toEqual(bytes);
    }
  });

  it('decodes one image after another with the same decoder', () => {
    const decoder = new Base64StreamDecoder();
    const first = Buffer.from(decoder.push(Buffer.from('QQ==')));
    decoder.end();
    expect([first, Buffer.from(decoder.push(Buffer.from('QUJD')))]).toEqual([Buffer.from('A'), Buffer.from('ABC')]);
  });

  it('refuses text after the padding of an image, also in a later slice', () => {
    expect(() => new Base64StreamDecoder().push(Buffer.from('QQ==QUFB'))).toThrow(MalformedResponseError);
    const decoder = new Base64StreamDecoder();
    decoder.push(Buffer.from('QQ=='));
    expect(() => decoder.push(Buffer.from('QUFB'))).toThrow(MalformedResponseError);
    expect(() => new Base64StreamDecoder().push(Buffer.from('Q==='))).toThrow(MalformedResponseError);
  });

  it('refuses characters outside the base64 alphabet', () => {
    expect(() => new Base64StreamDecoder().push(Buffer.from('QU*B'))).toThrow(MalformedResponseError);
  });

  it('refuses an image that ends mid-group', () => {
    const decoder = new Base64StreamDecoder();
    decoder.push(Buffer.from('QUFBQ'));
    expect(() => decoder.end()).toThrow(MalformedResponseError);
  });
});
