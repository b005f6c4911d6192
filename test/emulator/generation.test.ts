import { z } from 'zod';

import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { KEY, call, generate, imagesOf, imagesResponseSchema, pixelOf, readJpeg, readPng } from './helpers';

describe('emulator generations', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());

  it('returns n real PNGs of the requested size, each different, with usage and resolved echo fields', async () => {
    const result = await generate(emulator.url, { prompt: 'three owls', n: 3, size: '1536x1024', quality: 'auto' });
    expect(result.status).toBe(200);
    const body = imagesResponseSchema.parse(result.json);
    expect(body.created).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(body).toMatchObject({ background: 'opaque', output_format: 'png', quality: 'high', size: '1536x1024' });
    expect(body.data).toHaveLength(3);
    expect(body.data.every((item) => item.url === undefined && item.revised_prompt === undefined)).toBe(true);

    const images = imagesOf(result);
    for (const bytes of images) {
      const png = readPng(bytes);
      expect(png).toMatchObject({ width: 1536, height: 1024, bitDepth: 8, colourType: 2, chunkTypes: ['IHDR', 'IDAT', 'IEND'] });
    }
    expect(new Set(images.map((bytes) => bytes.toString('base64'))).size).toBe(3);
    // §5.1: high quality at 1536x1024 is 6208 output tokens per image.
    expect(body.usage).toMatchObject({ output_tokens: 3 * 6208, input_tokens_details: { image_tokens: 0 } });
    expect(body.usage?.total_tokens).toBe((body.usage?.input_tokens ?? 0) + 3 * 6208);
  });

  it('draws the same bytes for the same prompt, also in another emulator, and other pixels for another prompt', async () => {
    const other = await startEmulator();
    try {
      const first = imagesOf(await generate(emulator.url, { prompt: 'a red fox', quality: 'low' }))[0];
      const again = imagesOf(await generate(emulator.url, { prompt: 'a red fox', quality: 'low' }))[0];
      const elsewhere = imagesOf(await generate(other.url, { prompt: 'a red fox', quality: 'low' }))[0];
      const different = imagesOf(await generate(emulator.url, { prompt: 'a blue fox', quality: 'low' }))[0];
      expect(again?.equals(first ?? Buffer.alloc(0))).toBe(true);
      expect(elsewhere?.equals(first ?? Buffer.alloc(0))).toBe(true);
      const a = readPng(first ?? Buffer.alloc(0));
      const b = readPng(different ?? Buffer.alloc(0));
      expect(Buffer.from(a.samples).equals(Buffer.from(b.samples))).toBe(false);
    } finally {
      await other.close();
    }
  });

  it('resolves size auto to 1024x1024 and quality auto to medium for gpt-image-1-mini', async () => {
    const result = await generate(emulator.url, { prompt: 'x' }, 'gpt-image-1-mini');
    const body = imagesResponseSchema.parse(result.json);
    expect(body).toMatchObject({ size: '1024x1024', quality: 'medium', usage: { output_tokens: 1056 } });
    expect(readPng(imagesOf(result)[0] ?? Buffer.alloc(0))).toMatchObject({ width: 1024, height: 1024 });
  });

  it('draws an RGBA PNG with truly transparent pixels for background=transparent', async () => {
    const result = await generate(emulator.url, { prompt: 'a sticker', background: 'transparent', quality: 'low' });
    expect(imagesResponseSchema.parse(result.json).background).toBe('transparent');
    const png = readPng(imagesOf(result)[0] ?? Buffer.alloc(0));
    expect(png.colourType).toBe(6);
    const alphas = new Set<number>();
    for (let i = 3; i < png.samples.length; i += 4) alphas.add(png.samples[i] ?? -1);
    expect([...alphas].sort((x, y) => x - y)).toEqual([0, 255]);
  });

  it('returns a baseline JPEG of the requested size (edges not multiples of 8) whose pixels follow the PNG of the same prompt', async () => {
    const request = { prompt: 'a harbour', size: '1040x656', quality: 'low' };
    const jpegResult = await generate(emulator.url, { ...request, output_format: 'jpeg', output_compression: 90 }, 'gpt-image-2');
    const pngResult = await generate(emulator.url, request, 'gpt-image-2');
    expect(imagesResponseSchema.parse(jpegResult.json).output_format).toBe('jpeg');
    const jpeg = readJpeg(imagesOf(jpegResult)[0] ?? Buffer.alloc(0));
    expect(jpeg).toMatchObject({ width: 1040, height: 656, components: 3 });
    expect(jpeg.markers).toEqual([0xe0, 0xdb, 0xc0, 0xc4, 0xda]);
    const png = readPng(imagesOf(pngResult)[0] ?? Buffer.alloc(0));
    let error = 0;
    let samples = 0;
    for (let pixel = 0; pixel < png.width * png.height; pixel += 31) {
      for (let c = 0; c < 3; c++, samples++) error += Math.abs((jpeg.rgba[pixel * 4 + c] ?? 0) - (png.samples[pixel * 3 + c] ?? 0));
    }
    expect(error / samples).toBeLessThan(3);
  });

  describe('dall-e-3', () => {
    const dallEItem = z.object({
      url: z.string().optional(),
      b64_json: z.string().optional(),
      revised_prompt: z.string(),
      prompt_filter_results: z.record(z.string(), z.unknown()).optional(),
      content_filter_results: z.record(z.string(), z.unknown()).optional(),
    });

    it('returns a URL the emulator serves, a revised prompt and the Azure filter annotations', async () => {
      const result = await generate(emulator.url, { prompt: 'a castle', size: '1792x1024', quality: 'hd', style: 'natural' }, 'dall-e-3');
      expect(result.status).toBe(200);
      const body = imagesResponseSchema.parse(result.json);
      expect(body.usage).toBeUndefined();
      expect(body.data).toHaveLength(1);
      const item = dallEItem.parse(body.data[0]);
      expect(item.revised_prompt).toContain('a castle');
      expect(item.prompt_filter_results).toMatchObject({ sexual: { filtered: false, severity: 'safe' } });
      expect(item.content_filter_results).toMatchObject({ violence: { filtered: false, severity: 'safe' } });
      expect(item.url).toMatch(new RegExp(`^${emulator.url}/_emulator/files/[0-9a-f-]{36}\\.png$`));

      const file = await fetch(item.url ?? '');
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe('image/png');
      expect(readPng(Buffer.from(await file.arrayBuffer()))).toMatchObject({ width: 1792, height: 1024 });
    });

    it('returns b64_json when asked, and no Azure annotations on the OpenAI route', async () => {
      const result = await call(`${emulator.url}/v1/images/generations`, {
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'dall-e-3', prompt: 'a castle', response_format: 'b64_json' }),
      });
      const item = dallEItem.parse(imagesResponseSchema.parse(result.json).data[0]);
      expect(item.url).toBeUndefined();
      expect(item.prompt_filter_results).toBeUndefined();
      expect(readPng(Buffer.from(item.b64_json ?? '', 'base64'))).toMatchObject({ width: 1024, height: 1024 });
    });

    it('answers 404 for a file it never served', async () => {
      const file = await fetch(`${emulator.url}/_emulator/files/00000000-0000-0000-0000-000000000000.png`);
      expect(file.status).toBe(404);
    });
  });

  describe('streaming', () => {
    const eventSchema = z
      .object({
        type: z.string(),
        b64_json: z.string(),
        created_at: z.number(),
        size: z.string(),
        quality: z.string(),
        background: z.string(),
        output_format: z.string(),
        partial_image_index: z.number().optional(),
        usage: z.object({ output_tokens: z.number() }).loose().optional(),
      })
      .loose();

    function parseEvents(text: string): { event: string; data: z.infer<typeof eventSchema> }[] {
      return text
        .split('\n\n')
        .filter((block) => block.trim().length > 0)
        .map((block) => {
          const event = /^event: (.+)$/m.exec(block)?.[1] ?? '';
          const data = /^data: (.+)$/m.exec(block)?.[1] ?? '';
          return { event, data: eventSchema.parse(JSON.parse(data)) };
        });
    }

    it('sends the partial images, then one completed event with usage', async () => {
      const result = await generate(emulator.url, { prompt: 'a kite', stream: true, partial_images: 2, quality: 'low' });
      expect(result.status).toBe(200);
      expect(result.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      const events = parseEvents(result.text);
      expect(events.map((event) => event.event)).toEqual([
        'image_generation.partial_image',
        'image_generation.partial_image',
        'image_generation.completed',
      ]);
      expect(events.map((event) => event.data.type)).toEqual(events.map((event) => event.event));
      // Partial events echo the request (size 'auto'); the completed one carries the resolved values.
      expect(events[0]?.data).toMatchObject({ partial_image_index: 0, size: 'auto', quality: 'low' });
      expect(events[1]?.data.partial_image_index).toBe(1);
      expect(events[2]?.data).toMatchObject({ size: '1024x1024', quality: 'low', background: 'opaque', usage: { output_tokens: 272 + 200 } });
      for (const event of events) expect(readPng(Buffer.from(event.data.b64_json, 'base64'))).toMatchObject({ width: 1024, height: 1024 });
    });
  });

  describe('imageDetail noise', () => {
    it('produces PNGs of realistic weight (about 3 MB at 1024x1024) that still decode', async () => {
      const noisy = await startEmulator({ imageDetail: 'noise' });
      try {
        const result = await generate(noisy.url, { prompt: 'a forest', quality: 'low' });
        const bytes = imagesOf(result)[0] ?? Buffer.alloc(0);
        expect(bytes.length).toBeGreaterThan(2_500_000);
        expect(bytes.length).toBeLessThan(3_500_000);
        const png = readPng(bytes);
        expect(png).toMatchObject({ width: 1024, height: 1024 });
        expect(pixelOf(png, 0, 0)).not.toEqual(pixelOf(png, 1, 0));
      } finally {
        await noisy.close();
      }
    });
  });

  it('honours latencyMs before answering a valid request, but not before refusing one', async () => {
    const slow = await startEmulator({ latencyMs: 300 });
    try {
      const finished: string[] = [];
      const started = Date.now();
      const valid = generate(slow.url, { prompt: 'x', quality: 'low' }).then(() => finished.push('valid'));
      const waited = valid.then(() => Date.now() - started);
      await generate(slow.url, { prompt: 'x', size: 'huge' }).then(() => finished.push('invalid'));
      // A refusal does not wait, so it overtakes the valid request sent before it.
      expect(await waited).toBeGreaterThanOrEqual(280);
      expect(finished).toEqual(['invalid', 'valid']);
    } finally {
      await slow.close();
    }
  });
});
