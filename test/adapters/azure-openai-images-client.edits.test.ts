import { createHash } from 'node:crypto';

import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { AzureOpenAIImagesClient } from '../../src/adapters/azure-openai-images-client';
import { UpstreamBadRequestError } from '../../src/domain/errors';
import type { ImageByteWriter, ImageUpload } from '../../src/domain/ports';
import { makePng as makeRgbaPng } from '../emulator/helpers';
import { makePng } from '../helpers/images';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** An upload split into uneven chunks, as the app holds inputs: the client must never need them joined. */
function upload(bytes: Buffer, fileName: string, contentType = 'image/png'): ImageUpload {
  const content = [bytes.subarray(0, 7), bytes.subarray(7, 100), bytes.subarray(100)];
  return { fileName, contentType, size: bytes.length, content };
}

function collectingSink() {
  const images: Buffer[][] = [];
  return {
    images,
    sink: {
      openImage: (index: number): ImageByteWriter => {
        images[index] = [];
        return {
          write: (chunk) => {
            images[index]?.push(Buffer.from(chunk));
            return Promise.resolve();
          },
          end: () => Promise.resolve(),
        };
      },
    },
  };
}

describe('AzureOpenAIImagesClient.editImages against the emulator', () => {
  let emulator: RunningEmulator;
  const input = makePng(48, 32);

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());
  beforeEach(() => emulator.reset());

  const client = (apiFlavor: 'deployment' | 'v1' = 'deployment') =>
    new AzureOpenAIImagesClient({
      endpoint: emulator.url,
      apiFlavor,
      apiVersion: '2025-04-01-preview',
      auth: { mode: 'key', apiKey: 'emulator-key' },
      timeoutInMs: 10_000,
      maxRetries: 2,
      minRetryDelayInMs: 10,
    });

  it('sends fields and typed, named file parts, and streams the edited image into the sink', async () => {
    const { images, sink } = collectingSink();

    const result = await client().editImages(
      { model: 'gpt-image-1.5', deployment: 'gpt-image-1.5', prompt: 'a hat', n: 1, quality: 'low', inputFidelity: 'high', images: [upload(input, 'in.png')] },
      sink,
      { requestId: 'req-7' },
    );

    expect(result.size).toBe('48x32');
    expect(Buffer.concat(images[0] ?? []).subarray(1, 4).toString('latin1')).toBe('PNG');
    const [request] = emulator.requests;
    expect(request).toMatchObject({
      path: '/openai/deployments/gpt-image-1.5/images/edits?api-version=2025-04-01-preview',
      status: 200,
      body: { prompt: 'a hat', n: '1', quality: 'low', input_fidelity: 'high', model: 'gpt-image-1.5' },
      files: [{ field: 'image', filename: 'in.png', contentType: 'image/png', size: input.length, sha256: sha256(input) }],
    });
    expect(request?.headers['content-length']).toBeDefined();
    expect(request?.headers['x-ms-client-request-id']).toBe('req-7');
  });

  it('names several images image[] and the mask mask, and routes v1 by the deployment in the body', async () => {
    const mask = makeRgbaPng(48, 32, 4, new Uint8Array(48 * 32 * 4).fill(255));
    const { sink } = collectingSink();

    await client('v1').editImages(
      { model: 'gpt-image-1', deployment: 'gpt-image-1', prompt: 'x', n: 1, images: [upload(input, 'a.png'), upload(input, 'b.png')], mask: upload(mask, 'mask.png') },
      sink,
    );

    expect(emulator.requests[0]).toMatchObject({
      path: '/openai/v1/images/edits',
      status: 200,
      body: { model: 'gpt-image-1' },
      files: [
        { field: 'image[]', filename: 'a.png' },
        { field: 'image[]', filename: 'b.png' },
        { field: 'mask', filename: 'mask.png', sha256: sha256(mask) },
      ],
    });
  });

  it('replays the whole multipart body on a retry', async () => {
    emulator.enqueueFaults({ kind: 'status', status: 503, retryAfterMs: 10 });
    const { images, sink } = collectingSink();

    await client().editImages({ model: 'gpt-image-1.5', deployment: 'gpt-image-1.5', prompt: 'x', n: 1, images: [upload(input, 'in.png')] }, sink);

    expect(emulator.requests.map((request) => request.status)).toEqual([503, 200]);
    expect(emulator.requests[1]?.files).toEqual([expect.objectContaining({ size: input.length, sha256: sha256(input) })]);
    expect(images).toHaveLength(1);
  });

  it('maps an upstream refusal of the inputs to UpstreamBadRequest naming the field', async () => {
    const { sink } = collectingSink();
    const refusal = client().editImages(
      { model: 'gpt-image-1.5', deployment: 'gpt-image-1.5', prompt: 'x', n: 1, images: [upload(input, 'in.png', 'application/octet-stream')] },
      sink,
    );

    await expect(refusal).rejects.toBeInstanceOf(UpstreamBadRequestError);
    await expect(refusal).rejects.toMatchObject({ target: 'image' });
    expect(emulator.requests).toHaveLength(1);
  });
});
