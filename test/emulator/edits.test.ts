import { createHash } from 'node:crypto';

import { encode as encodeJpeg } from 'jpeg-js';

import { editColour } from '../../emulator/images/render';
import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import type { FormFile } from './helpers';
import { KEY, call, deploymentUrl, edit, errorOf, imagesOf, imagesResponseSchema, makePng, patternSamples, pixelOf, readJpeg, readPng, webpHeader } from './helpers';

const WIDTH = 96;
const HEIGHT = 64;
const inputSamples = patternSamples(WIDTH, HEIGHT, 3);
const inputPng = makePng(WIDTH, HEIGHT, 3, inputSamples, [0, 1, 2, 3, 4]);
const image: FormFile = { name: 'image', bytes: inputPng, type: 'image/png' };

/** Opaque everywhere except a rectangle (x 10–39, y 20–49) with alpha 0: the area to edit. */
function inRectangle(x: number, y: number): boolean {
  return x >= 10 && x < 40 && y >= 20 && y < 50;
}
function maskPng(width = WIDTH, height = HEIGHT, channels: 2 | 3 | 4 = 4): Buffer {
  const samples = new Uint8Array(width * height * channels).fill(255);
  if (channels !== 3) {
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (inRectangle(x, y)) samples[(y * width + x) * channels + channels - 1] = 0;
  }
  return makePng(width, height, channels, samples, [4]);
}
const mask: FormFile = { name: 'mask', bytes: maskPng(), type: 'image/png' };

describe('emulator edits', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());
  beforeEach(() => emulator.reset());

  it('paints the prompt colour under mask alpha 0 and keeps every other pixel exactly', async () => {
    const prompt = 'add a red balloon';
    const result = await edit(emulator.url, { prompt, quality: 'low' }, [image, mask]);
    expect(result.status).toBe(200);
    const body = imagesResponseSchema.parse(result.json);
    expect(body).toMatchObject({ size: `${WIDTH}x${HEIGHT}`, output_format: 'png', background: 'opaque', quality: 'low' });
    expect(body.usage?.input_tokens_details.image_tokens).toBeGreaterThan(0);

    const output = readPng(imagesOf(result)[0] ?? Buffer.alloc(0));
    expect(output).toMatchObject({ width: WIDTH, height: HEIGHT, colourType: 2 });
    const colour = editColour(prompt, 0);
    const expected = Uint8Array.from(inputSamples);
    for (let y = 20; y < 50; y++) for (let x = 10; x < 40; x++) expected.set(colour, (y * WIDTH + x) * 3);
    expect(Buffer.from(output.samples).equals(Buffer.from(expected))).toBe(true);
    // And the painted area really differs from the input (the colour is not the input's by chance).
    expect(pixelOf(output, 20, 30)).not.toEqual(Array.from(inputSamples.subarray((30 * WIDTH + 20) * 3, (30 * WIDTH + 20) * 3 + 3)));
  });

  it('tints the whole image toward the prompt colour without a mask', async () => {
    const prompt = 'make it warmer';
    const result = await edit(emulator.url, { prompt }, [image]);
    const output = readPng(imagesOf(result)[0] ?? Buffer.alloc(0));
    const colour = editColour(prompt, 0);
    for (const [x, y] of [
      [0, 0],
      [15, 30],
      [95, 63],
    ] as const) {
      const original = Array.from(inputSamples.subarray((y * WIDTH + x) * 3, (y * WIDTH + x) * 3 + 3));
      expect(pixelOf(output, x, y)).toEqual(original.map((value, c) => (value * 3 + (colour[c] ?? 0)) >> 2));
    }
  });

  it('resamples to the requested size, nearest neighbour', async () => {
    const prompt = 'bigger';
    const result = await edit(emulator.url, { prompt, size: '1024x1024', quality: 'low' }, [image]);
    expect(imagesResponseSchema.parse(result.json).size).toBe('1024x1024');
    const output = readPng(imagesOf(result)[0] ?? Buffer.alloc(0));
    expect(output).toMatchObject({ width: 1024, height: 1024 });
    const colour = editColour(prompt, 0);
    // Output (1023, 1023) samples input (95, 63).
    const original = Array.from(inputSamples.subarray((63 * WIDTH + 95) * 3, (63 * WIDTH + 95) * 3 + 3));
    expect(pixelOf(output, 1023, 1023)).toEqual(original.map((value, c) => (value * 3 + (colour[c] ?? 0)) >> 2));
  });

  it('answers n edits, each painted with its own colour, from several images sent as image[], and records a hash of every part', async () => {
    const prompt = 'two variations';
    const files: FormFile[] = [
      { ...image, name: 'image[]' },
      { ...image, name: 'image[]' },
      { ...mask, name: 'mask' },
    ];
    const result = await edit(emulator.url, { prompt, n: '2' }, files);
    expect(result.status).toBe(200);
    const [first, second] = imagesOf(result).map((bytes) => readPng(bytes));
    expect(first && pixelOf(first, 20, 30)).toEqual([...editColour(prompt, 0)]);
    expect(second && pixelOf(second, 20, 30)).toEqual([...editColour(prompt, 1)]);
    const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
    expect(emulator.requests[0]).toMatchObject({
      operation: 'edits',
      body: { prompt, n: '2' },
      files: [
        { field: 'image[]', contentType: 'image/png', size: inputPng.length, sha256: sha256(inputPng) },
        { field: 'image[]', contentType: 'image/png', size: inputPng.length, sha256: sha256(inputPng) },
        { field: 'mask', contentType: 'image/png', size: mask.bytes.length, sha256: sha256(mask.bytes) },
      ],
    });
  });

  it('keeps the input alpha for a transparent input when background is auto', async () => {
    const samples = patternSamples(WIDTH, HEIGHT, 4);
    const rgba = makePng(WIDTH, HEIGHT, 4, samples);
    const result = await edit(emulator.url, { prompt: 'keep the cut-out' }, [{ name: 'image', bytes: rgba, type: 'image/png' }]);
    expect(imagesResponseSchema.parse(result.json).background).toBe('transparent');
    const output = readPng(imagesOf(result)[0] ?? Buffer.alloc(0));
    expect(output.colourType).toBe(6);
    expect(pixelOf(output, 5, 7)[3]).toBe(samples[(7 * WIDTH + 5) * 4 + 3]);
  });

  it('edits a JPEG input into a prompt-drawn image of its size, as JPEG when asked', async () => {
    const jpegInput = encodeJpeg({ width: 40, height: 24, data: Buffer.alloc(40 * 24 * 4, 200) }, 80).data;
    const result = await edit(emulator.url, { prompt: 'x', output_format: 'jpeg' }, [{ name: 'image', bytes: jpegInput, type: 'image/jpeg' }]);
    expect(result.status).toBe(200);
    expect(imagesResponseSchema.parse(result.json)).toMatchObject({ size: '40x24', output_format: 'jpeg' });
    expect(readJpeg(imagesOf(result)[0] ?? Buffer.alloc(0))).toMatchObject({ width: 40, height: 24 });
  });

  it('streams image_edit events when asked', async () => {
    const result = await edit(emulator.url, { prompt: 'x', stream: 'true', partial_images: '1' }, [image]);
    expect(result.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const events = [...result.text.matchAll(/^event: (.+)$/gm)].map((match) => match[1]);
    expect(events).toEqual(['image_edit.partial_image', 'image_edit.completed']);
    const completed = /^data: (.+)$/gm.exec(result.text.slice(result.text.indexOf('event: image_edit.completed')))?.[1] ?? '';
    const data = imagesResponseSchema.shape.data.element.parse(JSON.parse(completed));
    expect(readPng(Buffer.from(data.b64_json ?? '', 'base64'))).toMatchObject({ width: WIDTH, height: HEIGHT });
  });

  it('answers edits on the v1 and OpenAI routes; the OpenAI route also takes WebP inputs', async () => {
    const v1 = await edit(emulator.url, { model: 'gpt-image-1.5', prompt: 'x', input_fidelity: 'high' }, [image], {
      url: `${emulator.url}/openai/v1/images/edits?api-version=preview`,
    });
    expect(v1.status).toBe(200);
    const webp = { name: 'image', bytes: webpHeader(320, 200), type: 'image/webp', filename: 'in.webp' };
    const openai = await edit(emulator.url, { model: 'gpt-image-1', prompt: 'x' }, [webp], {
      url: `${emulator.url}/v1/images/edits`,
      headers: { authorization: `Bearer ${KEY}`, 'api-key': KEY },
    });
    expect(openai.status).toBe(200);
    expect(readPng(imagesOf(openai)[0] ?? Buffer.alloc(0))).toMatchObject({ width: 320, height: 200 });
  });

  describe('refusals', () => {
    const refusals: readonly [string, Record<string, string>, readonly FormFile[], string, string, string][] = [
      ['no image', { prompt: 'x' }, [], 'image', 'missing_required_parameter', "Missing required parameter: 'image'."],
      ['no prompt', {}, [image], 'prompt', 'missing_required_parameter', "Missing required parameter: 'prompt'."],
      ['image sent as text', { prompt: 'x', image: 'cat.png' }, [], 'image', 'invalid_type', 'expected one of an array of files or file, but got a string'],
      ['more than 16 images', { prompt: 'x' }, Array.from({ length: 17 }, () => ({ ...image, name: 'image[]' })), 'image', 'array_above_max_length', 'maximum length 16'],
      [
        'an untyped part',
        { prompt: 'x' },
        [{ name: 'image', bytes: inputPng, type: 'application/octet-stream' }],
        'image',
        'unsupported_file_mimetype',
        "Invalid file 'image': unsupported mimetype ('application/octet-stream'). Supported file formats are 'image/jpeg' and 'image/png'.",
      ],
      ['WebP on Azure', { prompt: 'x' }, [{ name: 'image', bytes: webpHeader(64, 64), type: 'image/webp' }], 'image', 'unsupported_file_mimetype', "unsupported mimetype ('image/webp')"],
      ['bytes that are no image', { prompt: 'x' }, [{ name: 'image', bytes: Buffer.from('not a png at all'), type: 'image/png' }], 'image', 'invalid_image_file', 'Invalid image file'],
      ['a JPEG mask', { prompt: 'x' }, [image, { ...mask, type: 'image/jpeg' }], 'mask', 'unsupported_file_mimetype', "Supported file formats are 'image/png'."],
      ['a mask of 4 MiB', { prompt: 'x' }, [image, { ...mask, bytes: Buffer.alloc(4 * 1024 * 1024) }], 'mask', 'file_too_large', 'smaller than 4194304 bytes'],
      ['a mask without alpha', { prompt: 'x' }, [image, { ...mask, bytes: maskPng(WIDTH, HEIGHT, 3) }], 'mask', 'invalid_value', 'alpha channel'],
      ['a mask of another size', { prompt: 'x' }, [image, { ...mask, bytes: maskPng(WIDTH / 2, HEIGHT) }], 'mask', 'invalid_value', 'the mask is 48x64 but the image is 96x64'],
      ['a mask sent as text', { prompt: 'x', mask: 'mask.png' }, [image], 'mask', 'invalid_type', 'expected a file'],
      ['input_fidelity outside high/low', { prompt: 'x', input_fidelity: 'max' }, [image], 'input_fidelity', 'invalid_value', "Supported values are: 'high' and 'low'."],
      ['n that is not a number', { prompt: 'x', n: 'two' }, [image], 'n', 'invalid_type', 'expected an integer, but got a string'],
      ['response_format on a GPT model', { prompt: 'x', response_format: 'url' }, [image], 'response_format', 'unknown_parameter', "Unknown parameter: 'response_format'."],
    ];

    it.each(refusals)('returns 400 for %s', async (_case, fields, files, param, code, fragment) => {
      const result = await edit(emulator.url, fields, files);
      expect(result.status).toBe(400);
      expect(errorOf(result)).toMatchObject({ param, code, type: 'invalid_request_error' });
      expect(errorOf(result).message).toContain(fragment);
    });

    it('refuses input_fidelity on gpt-image-2, and high on gpt-image-1-mini', async () => {
      const two = await edit(emulator.url, { prompt: 'x', input_fidelity: 'low' }, [image], { deployment: 'gpt-image-2' });
      const mini = await edit(emulator.url, { prompt: 'x', input_fidelity: 'high' }, [image], { deployment: 'gpt-image-1-mini' });
      expect(errorOf(two)).toMatchObject({ param: 'input_fidelity', code: 'unsupported_parameter' });
      expect(errorOf(mini)).toMatchObject({ param: 'input_fidelity', code: 'invalid_value' });
      expect(errorOf(mini).message).toContain("Supported values are: 'low'.");
    });

    it('refuses files over maxImageBytes', async () => {
      const small = await startEmulator({ maxImageBytes: 1000 });
      try {
        const result = await edit(small.url, { prompt: 'x' }, [{ name: 'image', bytes: Buffer.concat([inputPng, Buffer.alloc(1000)]), type: 'image/png' }]);
        expect(errorOf(result)).toMatchObject({ param: 'image', code: 'file_too_large' });
      } finally {
        await small.close();
      }
    });

    it('answers 413 and closes the connection for a body larger than the route accepts', async () => {
      const small = await startEmulator({ maxImageBytes: 1000 });
      try {
        // 16 images of maxImageBytes, a 4 MiB mask and 1 MiB of fields is the most an edit can carry.
        const result = await call(deploymentUrl(small.url, 'gpt-image-1', 'edits'), {
          headers: { 'api-key': KEY, 'content-type': 'multipart/form-data; boundary=x' },
          body: Buffer.alloc(6 * 1024 * 1024),
        });
        expect(result.status).toBe(413);
        expect(result.headers.connection).toBe('close');
        expect(errorOf(result).code).toBe('RequestEntityTooLarge');
      } finally {
        await small.close();
      }
    });

    it('refuses a JSON body with the Content-Type message', async () => {
      const result = await call(deploymentUrl(emulator.url, 'gpt-image-1', 'edits'), {
        headers: { 'api-key': KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x' }),
      });
      expect(result.status).toBe(400);
      expect(errorOf(result).message).toContain('Invalid Content-Type header (application/json), expected multipart/form-data.');
    });

    it('returns the Azure 404 for edits on an api-version older than 2025-04-01-preview', async () => {
      const result = await edit(emulator.url, { prompt: 'x' }, [image], { apiVersion: '2025-03-01-preview' });
      expect(result.status).toBe(404);
      expect(result.json).toEqual({ error: { code: '404', message: 'Resource not found' } });
      expect((await edit(emulator.url, { prompt: 'x' }, [image], { apiVersion: '2025-04-01-preview' })).status).toBe(200);
    });
  });
});
