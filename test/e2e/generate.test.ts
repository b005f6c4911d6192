import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';

import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { sniffImage } from '../../src/domain/image-format';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { appTestEnv, startTestFunctionsHost } from '../helpers/functions-host';

// The generate path as a caller sees it: real HTTP into the app served like `npm start`, the
// emulator as Azure OpenAI, Azurite as Blob Storage, and the links downloaded for real.

interface ImagesResponse {
  created: number;
  id: string;
  model: string;
  size: string;
  quality: string;
  output_format: string;
  data: {
    url: string;
    b64_json?: string;
    revised_prompt?: string;
    blob_name: string;
    content_type: string;
    bytes: number;
    width: number;
    height: number;
    expires_at: string;
  }[];
  usage?: Record<string, unknown>;
}

interface ErrorResponse {
  error: { code: string; message: string; target?: string; details?: unknown };
}

function containerClient(name: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(name);
}

async function committedBlobNames(container: ContainerClient): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat()) names.push(blob.name);
  return names.sort();
}

async function download(url: string): Promise<{ status: number; contentType: string | null; bytes: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, contentType: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()) };
}

function post(host: TestFunctionsHost, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${host.url}/api/images/generations`, {
    method: 'POST',
    headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function startHost(emulator: RunningEmulator, container: string, settings: Record<string, string> = {}): Promise<TestFunctionsHost> {
  return startTestFunctionsHost({ env: { ...appTestEnv({ emulatorUrl: emulator.url, imagesContainer: container }), ...settings } });
}

describe('POST /api/images/generations through the local stack', () => {
  const containerName = uniqueContainerName('e2e-generate');
  const container = containerClient(containerName);
  let emulator: RunningEmulator;
  let host: TestFunctionsHost;

  beforeAll(async () => {
    emulator = await startEmulator();
    host = await startHost(emulator, containerName, { AZURE_OPENAI_MAX_RETRIES: '1' });
  });

  afterAll(async () => {
    await host?.close();
    await emulator?.close();
  });

  beforeEach(() => emulator.reset());

  it('stores each image in Blob Storage and answers with working read-only links', async () => {
    const response = await post(host, { prompt: 'a lighthouse at dusk', n: 2, size: '1024x1536', quality: 'low', output_format: 'jpeg', user: 'zoë@contoso' });

    expect(response.status).toBe(200);
    const body = (await response.json()) as ImagesResponse;
    expect(response.headers.get('x-request-id')).toBe(body.id);
    expect(body).toMatchObject({ model: 'gpt-image-1.5', size: '1024x1536', quality: 'low', output_format: 'jpeg' });
    expect(typeof body.usage?.['total_tokens']).toBe('number');
    expect(body.data.map((image) => image.blob_name)).toEqual([`${body.id}/0.jpeg`, `${body.id}/1.jpeg`]);

    for (const image of body.data) {
      const downloaded = await download(image.url);
      expect(downloaded.status).toBe(200);
      expect(downloaded.contentType).toBe('image/jpeg');
      expect(downloaded.bytes.length).toBe(image.bytes);
      expect(sniffImage(downloaded.bytes)).toMatchObject({ type: 'jpeg', width: 1024, height: 1536 });
      expect(image).toMatchObject({ content_type: 'image/jpeg', width: 1024, height: 1536 });
      expect(new URL(image.url).searchParams.get('sp')).toBe('r');
      expect(Date.parse(image.expires_at) - Date.now()).toBeGreaterThan(23 * 3_600_000);

      const properties = await container.getBlobClient(image.blob_name).getProperties();
      expect(properties.metadata).toEqual({
        model: 'gpt-image-1.5',
        size: '1024x1536',
        quality: 'low',
        format: 'jpeg',
        requestid: body.id,
        user: encodeURIComponent('zoë@contoso'),
        // Key callers are told apart by `user`: the caller charged for the image.
        caller: encodeURIComponent('user:zoë@contoso'),
      });
      expect(properties.cacheControl).toContain('immutable');
    }
    const [first, second] = await Promise.all(body.data.map(async (image) => (await download(image.url)).bytes));
    expect(first?.equals(second ?? Buffer.alloc(0))).toBe(false);
    expect(emulator.requests).toHaveLength(1);
  });

  it('keeps the whole request and response beside the images', async () => {
    const prompt = 'ein Leuchtturm im Nebel — mit Möwen, '.repeat(20);
    const body = (await (await post(host, { prompt, model: 'gpt-image-1' })).json()) as ImagesResponse;

    const record = JSON.parse((await container.getBlobClient(`${body.id}/request.json`).downloadToBuffer()).toString('utf8')) as {
      id: string;
      request: { prompt: string; model: string };
      response: { usage: unknown };
      images: { blobName: string }[];
    };
    expect(record).toMatchObject({ id: body.id, request: { prompt, model: 'gpt-image-1' }, images: [{ blobName: `${body.id}/0.png` }] });
    expect(record.response.usage).toEqual(body.usage);
  });

  it('returns the bytes inline as well when asked for b64_json', async () => {
    const body = (await (await post(host, { prompt: 'a red kite', response_format: 'b64_json', size: '1024x1024' })).json()) as ImagesResponse;

    const [image] = body.data;
    if (!image?.b64_json) throw new Error('no b64_json in the response');
    expect(Buffer.from(image.b64_json, 'base64').equals((await download(image.url)).bytes)).toBe(true);
  });

  it('refuses to let a link write, list or reach another blob', async () => {
    const body = (await (await post(host, { prompt: 'a blue door' })).json()) as ImagesResponse;
    const url = new URL(body.data[0]?.url ?? '');

    const overwrite = await fetch(url, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'x' });
    const otherBlob = await fetch(url.href.replace('/0.png?', '/request.json?'));

    expect(overwrite.status).toBe(403);
    expect(otherBlob.status).toBe(403);
  });

  it.each<[string, unknown, Record<string, string>, number, string, string | undefined]>([
    ['no prompt', { n: 1 }, {}, 400, 'MissingParameter', 'prompt'],
    ['an empty prompt', { prompt: '   ' }, {}, 400, 'InvalidParameter', 'prompt'],
    ['an unknown model', { prompt: 'x', model: 'dall-e-2' }, {}, 400, 'UnknownModel', 'model'],
    ['too many images', { prompt: 'x', n: 11 }, {}, 400, 'InvalidParameter', 'n'],
    ['a size the model cannot draw', { prompt: 'x', size: '512x512' }, {}, 400, 'InvalidParameter', 'size'],
    ['compression for PNG', { prompt: 'x', output_compression: 50 }, {}, 400, 'InvalidParameter', 'output_compression'],
    ['a parameter the model does not take', { prompt: 'x', style: 'vivid' }, {}, 400, 'UnsupportedParameter', 'style'],
    ['a misspelt parameter', { prompt: 'x', qualty: 'high' }, {}, 400, 'UnknownParameter', 'qualty'],
    ['broken JSON', '{"prompt": "x"', {}, 400, 'InvalidJson', undefined],
    ['a form body', 'prompt=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'UnsupportedMediaType', undefined],
    ['a body over the limit', { prompt: 'x'.repeat(2 * 1024 * 1024) }, {}, 413, 'PayloadTooLarge', undefined],
  ])('refuses %s before calling the upstream', async (_case, body, headers, status, code, target) => {
    const response = await post(host, body, headers);

    expect(response.status).toBe(status);
    const error = ((await response.json()) as ErrorResponse).error;
    expect(error.code).toBe(code);
    if (target !== undefined) expect(error.target).toBe(target);
    expect(error.message.length).toBeGreaterThan(10);
    expect(response.headers.get('x-ms-error-code')).toBe(code);
    expect(emulator.requests).toHaveLength(0);
  });

  it('needs the function key', async () => {
    const response = await fetch(`${host.url}/api/images/generations`, { method: 'POST', body: JSON.stringify({ prompt: 'x' }) });

    expect(response.status).toBe(401);
    expect(emulator.requests).toHaveLength(0);
  });

  it.each([
    ['prompt', 'input'],
    ['output', 'output'],
  ])('turns a content-filter refusal of the %s into 400 contentFilter, without retrying or storing', async (_what, stage) => {
    const before = await committedBlobNames(container);
    const response = await post(host, { prompt: `a harmless cat [emulator:filter-${stage}]` });

    expect(response.status).toBe(400);
    const error = ((await response.json()) as ErrorResponse).error;
    expect(error.code).toBe('contentFilter');
    expect(error.details).toEqual(expect.objectContaining({ stage }));
    expect(emulator.requests).toHaveLength(1);
    expect(await committedBlobNames(container)).toEqual(before);
  });

  it('answers 502 when the upstream keeps failing', async () => {
    emulator.enqueueFaults({ kind: 'status', status: 500 }, { kind: 'status', status: 503 });

    const response = await post(host, { prompt: 'unlucky' });

    expect(response.status).toBe(502);
    expect(((await response.json()) as ErrorResponse).error.code).toBe('UpstreamError');
    expect(emulator.requests).toHaveLength(2);
  });

  it.each(['truncate', 'malformed'] as const)('answers 502 and leaves no blob behind when the upstream body is %s', async (kind) => {
    const before = await committedBlobNames(container);
    emulator.enqueueFaults({ kind });

    const response = await post(host, { prompt: 'almost', n: 2 });

    expect(response.status).toBe(502);
    expect(((await response.json()) as ErrorResponse).error.code).toMatch(/^Upstream(InvalidResponse|Unavailable)$/);
    expect(await committedBlobNames(container)).toEqual(before);
  });

  it('answers health checks without a key', async () => {
    const response = await fetch(`${host.url}/api/health`);

    expect(response.status).toBe(200);
  });
});

describe('generation when the upstream times a request out (408)', () => {
  let emulator: RunningEmulator;
  let host: TestFunctionsHost;

  beforeAll(async () => {
    emulator = await startEmulator();
    host = await startHost(emulator, uniqueContainerName('e2e-408'), { AZURE_OPENAI_MAX_RETRIES: '1' });
  });

  afterAll(async () => {
    await host?.close();
    await emulator?.close();
  });

  it('retries it like a 5xx, instead of answering that the request was bad', async () => {
    emulator.enqueueFaults({ kind: 'status', status: 408 });

    const response = await post(host, { prompt: 'patient' });

    expect(response.status).toBe(200);
    expect(emulator.requests.map((request) => request.status)).toEqual([408, 200]);
  });
});

describe('generation against a misconfigured upstream', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator({ apiKeys: ['the-right-key'] });
  });

  beforeEach(() => emulator.reset());

  afterAll(async () => {
    await emulator?.close();
  });

  it('answers 504 when the upstream does not finish within AZURE_OPENAI_TIMEOUT_MS', async () => {
    const host = await startHost(emulator, uniqueContainerName('e2e-timeout'), { AZURE_OPENAI_API_KEY: 'the-right-key', AZURE_OPENAI_TIMEOUT_MS: '1000' });
    try {
      const response = await post(host, { prompt: 'slow [emulator:timeout]' });

      expect(response.status).toBe(504);
      expect(((await response.json()) as ErrorResponse).error.code).toBe('UpstreamTimeout');
    } finally {
      await host.close();
    }
  });

  it('reports a rejected key as a configuration error without echoing it', async () => {
    const host = await startHost(emulator, uniqueContainerName('e2e-badkey'), { AZURE_OPENAI_API_KEY: 'wrong-key-123' });
    try {
      const response = await post(host, { prompt: 'x' });
      const text = await response.text();

      expect(response.status).toBe(502);
      expect((JSON.parse(text) as ErrorResponse).error.code).toBe('UpstreamAuthenticationFailed');
      expect(text).not.toContain('wrong-key-123');
      expect(host.logs.join('\n')).not.toContain('wrong-key-123');
      expect(emulator.requests).toHaveLength(1);
    } finally {
      await host.close();
    }
  });

  it('reports a missing deployment as a configuration error', async () => {
    const host = await startHost(emulator, uniqueContainerName('e2e-nodeploy'), {
      AZURE_OPENAI_API_KEY: 'the-right-key',
      AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1.5=not-deployed',
    });
    try {
      const response = await post(host, { prompt: 'x' });

      expect(response.status).toBe(502);
      expect(((await response.json()) as ErrorResponse).error.code).toBe('UpstreamDeploymentNotFound');
    } finally {
      await host.close();
    }
  });

  it('answers 500 ConfigurationError, and health 503, when a setting is missing, without revealing which', async () => {
    const host = await startHost(emulator, uniqueContainerName('e2e-noconfig'), { AZURE_OPENAI_DEPLOYMENTS: '' });
    try {
      const response = await post(host, { prompt: 'x' });
      const health = await fetch(`${host.url}/api/health`);
      const body = (await response.json()) as ErrorResponse;

      expect(response.status).toBe(500);
      expect(body.error.code).toBe('ConfigurationError');
      expect(body.error.message).not.toContain('AZURE_OPENAI_DEPLOYMENTS');
      expect(health.status).toBe(503);
      expect(host.logs.join('\n')).toContain('AZURE_OPENAI_DEPLOYMENTS');
    } finally {
      await host.close();
    }
  });
});

describe('generation on the /openai/v1 flavour', () => {
  it('calls the v1 route with the deployment as the model and stores the image', async () => {
    const emulator = await startEmulator({ deployments: { 'img-prod': 'gpt-image-2' } });
    const containerName = uniqueContainerName('e2e-v1');
    const host = await startHost(emulator, containerName, {
      AZURE_OPENAI_API_FLAVOR: 'v1',
      AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-2=img-prod',
      AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-2',
    });
    try {
      const response = await post(host, { prompt: 'a wide panorama', size: '2048x1152' });

      expect(response.status).toBe(200);
      const body = (await response.json()) as ImagesResponse;
      expect(body.data[0]).toMatchObject({ width: 2048, height: 1152 });
      expect(emulator.requests[0]).toMatchObject({ path: '/openai/v1/images/generations', body: { model: 'img-prod' } });
      expect(await committedBlobNames(containerClient(containerName))).toEqual([`${body.id}/0.png`, `${body.id}/request.json`]);
    } finally {
      await host.close();
      await emulator.close();
    }
  });
});
