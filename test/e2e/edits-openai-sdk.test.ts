import OpenAI, { toFile } from 'openai';

import type { EditStack } from './edits-fixtures';
import { HEIGHT, WIDTH, downloadPng, expectedMaskedEdit, inputPng, maskPng, sha256, startEditStack } from './edits-fixtures';

/**
 * The official `openai` package pointed at the app, as a caller would use it: baseURL `<app>/api/v1`,
 * the function key as a default header. Its requests, multipart encoding and response parsing are
 * its own; the app has to look like the upstream to it.
 */
describe('the openai SDK against /api/v1', () => {
  let stack: EditStack;
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startEditStack('sdk');
    client = new OpenAI({
      baseURL: `${stack.host.url}/api/v1`,
      // The SDK insists on a key and sends it as a bearer token; the Functions host reads x-functions-key.
      apiKey: 'unused',
      defaultHeaders: { 'x-functions-key': stack.host.functionKey },
      maxRetries: 0,
    });
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.emulator.reset());

  const png = (name = 'photo.png') => toFile(inputPng, name, { type: 'image/png' });

  it('images.generate returns SAS links in data[].url', async () => {
    const response = await client.images.generate({ model: 'gpt-image-1.5', prompt: 'a lighthouse at dusk', size: '1024x1024', quality: 'low' });

    expect(response.data).toHaveLength(1);
    const result = await downloadPng(response.data?.[0]?.url ?? '');
    expect(result).toMatchObject({ width: 1024, height: 1024 });
    expect(stack.emulator.requests.map((request) => request.operation)).toEqual(['generations']);
  });

  it('images.edit with one file sends it upstream as image and returns a link to the edit', async () => {
    const response = await client.images.edit({ model: 'gpt-image-1.5', prompt: 'a warmer light', image: await png() });

    const result = await downloadPng(response.data?.[0]?.url ?? '');
    expect(result).toMatchObject({ width: WIDTH, height: HEIGHT });
    expect(stack.emulator.requests[0]?.files).toEqual([expect.objectContaining({ field: 'image', filename: 'photo.png', contentType: 'image/png', sha256: sha256(inputPng) })]);
  });

  it('images.edit with several files (toFile) and a mask honours the mask on the first image', async () => {
    const prompt = 'paint a red door';
    const response = await client.images.edit({
      model: 'gpt-image-1.5',
      prompt,
      image: [await png('front.png'), await png('side.png'), await png('back.png')],
      mask: await toFile(maskPng(), 'mask.png', { type: 'image/png' }),
      n: 2,
      input_fidelity: 'high',
    });

    expect(response.data).toHaveLength(2);
    const first = await downloadPng(response.data?.[0]?.url ?? '');
    expect(Buffer.from(first.samples).equals(expectedMaskedEdit(prompt, 0))).toBe(true);
    const second = await downloadPng(response.data?.[1]?.url ?? '');
    expect(Buffer.from(second.samples).equals(expectedMaskedEdit(prompt, 1))).toBe(true);
    expect(stack.emulator.requests[0]?.files?.map((file) => [file.field, file.filename])).toEqual([
      ['image[]', 'front.png'],
      ['image[]', 'side.png'],
      ['image[]', 'back.png'],
      ['mask', 'mask.png'],
    ]);
    expect(stack.emulator.requests[0]?.body).toMatchObject({ n: '2', input_fidelity: 'high' });
  });

  it('images.edit with a file the SDK could not type (toFile without type) still works: the app types it from its bytes', async () => {
    const response = await client.images.edit({ model: 'gpt-image-1.5', prompt: 'x', image: await toFile(inputPng, 'upload') });

    expect(response.data).toHaveLength(1);
    expect(stack.emulator.requests[0]?.files).toEqual([expect.objectContaining({ filename: 'upload.png', contentType: 'image/png' })]);
  });

  it('surfaces a refusal as the SDK error for its status, with our code, and spends nothing upstream', async () => {
    const refusal = client.images.edit({ model: 'gpt-image-1.5', prompt: 'x', image: await png(), mask: await toFile(maskPng(WIDTH, HEIGHT, 3), 'mask.png', { type: 'image/png' }) });

    await expect(refusal).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(refusal).rejects.toMatchObject({ status: 400, code: 'InvalidMask', error: { target: 'mask' } });
    expect(stack.emulator.requests).toHaveLength(0);
  });
});
