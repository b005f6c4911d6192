import { ContentFilterError, UpstreamThrottledError } from '../../src/domain/errors';
import { withErrorHandling } from '../../src/http/error-response';
import { createGenerateImagesHandler } from '../../src/http/generate-images-handler';
import type { FakeServices } from '../fakes/services';
import { makeFakeServices } from '../fakes/services';
import { jsonRequest, makeContext } from '../helpers/http';
import { makePng } from '../helpers/images';

const url = 'http://localhost/api/images/generations';

type ResponseBody = Record<string, unknown> & { error?: { code: string; message: string; target?: string; details?: { target: string }[] } };

async function call(services: FakeServices, body: unknown, headers: Record<string, string> = {}) {
  const handler = withErrorHandling(createGenerateImagesHandler(() => Promise.resolve(services)));
  const response = await handler(jsonRequest(url, body, headers), makeContext());
  return { status: response.status, headers: response.headers as Record<string, string>, body: response.jsonBody as ResponseBody };
}

describe('POST /images/generations handler', () => {
  it('answers in the upstream shape with links and per-image facts, and stores image, metadata and record', async () => {
    const services = makeFakeServices();
    services.imageModel.willReturn(makePng(64, 48), makePng(64, 48, [1, 2, 3]));

    const response = await call(services, { prompt: 'a fox', n: 2, user: 'zoë@example.com' });

    expect(response.status).toBe(200);
    expect(response.headers['x-request-id']).toBe('request-1');
    expect(response.body).toEqual({
      created: 1_700_000_000,
      id: 'request-1',
      model: 'gpt-image-1.5',
      size: '64x48',
      quality: 'high',
      output_format: 'png',
      usage: { total_tokens: 1 },
      data: [0, 1].map((index) => ({
        url: `https://store.example/request-1/${index}.png?sig=fake`,
        blob_name: `request-1/${index}.png`,
        content_type: 'image/png',
        bytes: expect.any(Number) as number,
        width: 64,
        height: 48,
        expires_at: '2030-01-01T00:00:00.000Z',
      })),
    });
    expect(services.imageModel.calls[0]?.request).toMatchObject({ model: 'gpt-image-1.5', deployment: 'img15', prompt: 'a fox', n: 2 });
    expect(services.imageStore.blobs.get('request-1/0.png')?.metadata).toEqual({
      model: 'gpt-image-1.5',
      size: '64x48',
      quality: 'high',
      format: 'png',
      requestid: 'request-1',
      user: 'zo%C3%AB%40example.com',
      caller: 'user%3Azo%C3%AB%40example.com',
    });
    expect(services.imageStore.records.get('request-1/request.json')).toMatchObject({
      id: 'request-1',
      request: { prompt: 'a fox', user: 'zoë@example.com', n: 2 },
      images: [{ blobName: 'request-1/0.png' }, { blobName: 'request-1/1.png' }],
    });
  });

  it('returns the bytes inline as well when response_format is b64_json', async () => {
    const services = makeFakeServices();
    const image = makePng(16, 16);
    services.imageModel.willReturn(image);
    const response = await call(services, { prompt: 'a fox', response_format: 'b64_json' });
    expect(response.body).toMatchObject({ data: [{ b64_json: image.toString('base64') }] });
  });

  it('treats null fields as absent, as Power Automate sends them', async () => {
    const services = makeFakeServices();
    services.imageModel.willReturn(makePng(8, 8));
    const response = await call(services, { prompt: 'a fox', size: null, quality: null });
    expect(response.status).toBe(200);
  });

  it.each([
    ['missing prompt', { n: 1 }, 400, 'MissingParameter', 'prompt'],
    ['empty prompt', { prompt: '  ' }, 400, 'InvalidParameter', 'prompt'],
    ['n=0', { prompt: 'x', n: 0 }, 400, 'InvalidParameter', 'n'],
    ['n=11', { prompt: 'x', n: 11 }, 400, 'InvalidParameter', 'n'],
    ['n=1.5', { prompt: 'x', n: 1.5 }, 400, 'InvalidParameter', 'n'],
    ['unknown size', { prompt: 'x', size: '800x600' }, 400, 'InvalidParameter', 'size'],
    ['jpeg + transparent', { prompt: 'x', output_format: 'jpeg', background: 'transparent' }, 400, 'InvalidParameter', 'background'],
    ['compression out of range', { prompt: 'x', output_format: 'jpeg', output_compression: 101 }, 400, 'InvalidParameter', 'output_compression'],
    ['webp', { prompt: 'x', output_format: 'webp' }, 400, 'InvalidParameter', 'output_format'],
    ['unknown model', { prompt: 'x', model: 'gpt-image-1' }, 400, 'UnknownModel', 'model'],
    ['unknown parameter', { prompt: 'x', colour: 'red' }, 400, 'UnknownParameter', 'colour'],
    ['style on a gpt-image model', { prompt: 'x', style: 'vivid' }, 400, 'UnsupportedParameter', 'style'],
    ['n=2 on dall-e-3', { prompt: 'x', model: 'dall-e-3', n: 2 }, 400, 'InvalidParameter', 'n'],
    ['a body that is not an object', [1, 2], 400, 'InvalidRequest', 'body'],
  ])('refuses %s with %i %s before any upstream call', async (_name, body, status, code, target) => {
    const services = makeFakeServices();
    const response = await call(services, body);
    expect(response.status).toBe(status);
    expect(response.headers['x-ms-error-code']).toBe(code);
    expect(response.body).toMatchObject({ error: { code, target } });
    expect(typeof response.body.error?.message).toBe('string');
    expect(services.imageModel.calls).toHaveLength(0);
  });

  it('lists every problem when there are several', async () => {
    const services = makeFakeServices();
    const response = await call(services, { prompt: 'x', n: 0, output_compression: 500, extra: true });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: { code: 'InvalidRequest' } });
    const details = response.body.error?.details ?? [];
    expect(details.map((detail) => detail.target).sort()).toEqual(['extra', 'n', 'output_compression']);
  });

  it('refuses malformed JSON with 400 InvalidJson', async () => {
    const response = await call(makeFakeServices(), '{"prompt": "x",');
    expect(response).toMatchObject({ status: 400, body: { error: { code: 'InvalidJson' } } });
  });

  it('refuses a body that is not JSON with 415', async () => {
    const response = await call(makeFakeServices(), 'prompt=x', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(response).toMatchObject({ status: 415, body: { error: { code: 'UnsupportedMediaType' } } });
  });

  it('refuses a body larger than the limit with 413', async () => {
    const services = makeFakeServices({ MAX_JSON_BODY_BYTES: '2048' });
    const response = await call(services, { prompt: 'x'.repeat(5000) });
    expect(response).toMatchObject({ status: 413, body: { error: { code: 'PayloadTooLarge' } } });
  });

  it('passes a content filter refusal on as 400 contentFilter and keeps nothing', async () => {
    const services = makeFakeServices();
    services.imageModel.willFail(new ContentFilterError('The prompt was blocked.', { upstreamCode: 'moderation_blocked', stage: 'input' }));
    const response = await call(services, { prompt: 'x' });
    expect(response).toMatchObject({
      status: 400,
      body: { error: { code: 'contentFilter', details: { upstreamCode: 'moderation_blocked', stage: 'input' } } },
    });
    expect(services.imageStore.blobs.size).toBe(0);
  });

  it('renders throttling as 429 with Retry-After', async () => {
    const services = makeFakeServices();
    services.imageModel.willFail(new UpstreamThrottledError('slow down', 7));
    const response = await call(services, { prompt: 'x' });
    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('7');
  });

  it('discards staged images when the upstream sends something that is not the requested format', async () => {
    const services = makeFakeServices();
    services.imageModel.willReturn(makePng(8, 8));
    const response = await call(services, { prompt: 'x', output_format: 'jpeg' });
    expect(response).toMatchObject({ status: 502, body: { error: { code: 'UpstreamInvalidResponse' } } });
    expect(services.imageStore.discarded).toBe(1);
    expect(services.imageStore.blobs.size).toBe(0);
  });

  it('hides unexpected errors behind the invocation id', async () => {
    const services = makeFakeServices();
    services.imageModel.willFail(new Error('socket details nobody should see'));
    const response = await call(services, { prompt: 'x' });
    expect(response).toMatchObject({ status: 500, body: { error: { code: 'InternalError', message: expect.stringContaining('invocation-1') as string } } });
    expect(JSON.stringify(response.body)).not.toContain('socket details');
  });
});
