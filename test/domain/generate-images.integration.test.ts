import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { createHash } from 'node:crypto';

import { AzureOpenAIImagesClient } from '../../src/adapters/azure-openai-images-client';
import { BlobImageStore } from '../../src/adapters/blob-image-store';
import { SharedKeySasSigner } from '../../src/adapters/blob-sas';
import { defaultCaller } from '../../src/domain/callers';
import type { GenerateImagesCommand, GenerateImagesDependencies } from '../../src/domain/generate-images';
import { generateImages } from '../../src/domain/generate-images';
import type { Clock } from '../../src/domain/ports';
import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { generate } from '../emulator/helpers';
import { makeTestMetering } from '../fakes/in-memory-usage';

const PROMPT = 'A lighthouse in a storm, seen from the sea';
const clock: Clock = { now: () => new Date() };
// Megabyte buffers are compared by digest: jest's toEqual walks them byte by byte, for minutes.
const digest = (bytes: Buffer | undefined) => (bytes === undefined ? undefined : createHash('sha256').update(bytes).digest('hex'));

/**
 * The streaming path for real: the emulator's noise PNGs (megabytes of base64 each) through the
 * undici client, the scanner and the decoder into Azurite, with blocks small enough and an upload
 * budget tight enough that every image spans many blocks and writers have to wait for each other.
 */
describe('generateImages from the emulator into Azurite', () => {
  let emulator: RunningEmulator;
  let container: ContainerClient;
  let dependencies: GenerateImagesDependencies;
  let nextId = 0;

  beforeAll(async () => {
    emulator = await startEmulator({ imageDetail: 'noise' });
    const service = BlobServiceClient.fromConnectionString(testStorageConnectionString());
    if (!(service.credential instanceof StorageSharedKeyCredential)) throw new Error('Azurite connection string without a key');
    container = service.getContainerClient(uniqueContainerName('generate-streaming'));
    await container.create();
    dependencies = {
      imageModel: new AzureOpenAIImagesClient({
        endpoint: emulator.url,
        apiFlavor: 'deployment',
        apiVersion: '2025-04-01-preview',
        auth: { mode: 'key', apiKey: 'emulator-key' },
        timeoutInMs: 60_000,
        maxRetries: 0,
      }),
      imageStore: new BlobImageStore({
        container,
        sasSigner: new SharedKeySasSigner(service.credential, container.url, clock),
        sasLifetimeInMs: 60_000,
        clock,
        blockSizeInBytes: 256 * 1024,
        maxUploadBytesInFlight: 512 * 1024,
      }),
      clock,
      ids: { newId: () => `request-${++nextId}` },
      deploymentFor: (model) => model,
      metering: makeTestMetering({ clock }).metering,
    };
  });

  afterAll(async () => {
    await emulator.close();
    await container.deleteIfExists();
  });

  beforeEach(() => emulator.reset());

  const command = (n: number): GenerateImagesCommand => ({ prompt: PROMPT, model: 'gpt-image-1', options: { n, size: '1024x1024' }, includeBase64: false, caller: defaultCaller('unattributed') });

  /** What the upstream sends for the same prompt: the emulator answers the same bytes every time. */
  async function upstreamImages(n: number): Promise<Buffer[]> {
    const response = await generate(emulator.url, { prompt: PROMPT, n, size: '1024x1024' });
    const images = (response.json as { data: { b64_json: string }[] }).data.map((item) => Buffer.from(item.b64_json, 'base64'));
    expect(images).toHaveLength(n);
    return images;
  }

  async function blobNames(prefix: string): Promise<string[]> {
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix })) names.push(blob.name);
    return names;
  }

  it('stores exactly the bytes the upstream sent for every image, and the record beside them', async () => {
    const result = await generateImages(command(3), dependencies);
    const expected = await upstreamImages(3);

    expect(expected[0]?.length).toBeGreaterThan(2 * 1024 * 1024); // realistic weight: many blocks per image
    for (const [index, image] of result.images.entries()) {
      expect(image).toMatchObject({ blobName: `${result.requestId}/${index}.png`, bytes: expected[index]?.length, width: 1024, height: 1024 });
      expect(digest(await container.getBlobClient(image.blobName).downloadToBuffer())).toBe(digest(expected[index]));
    }
    const record = JSON.parse((await container.getBlobClient(result.recordBlobName).downloadToBuffer()).toString('utf8')) as { images: unknown[] };
    expect(record.images).toEqual(result.images.map((image) => expect.objectContaining({ blobName: image.blobName, bytes: image.bytes, width: 1024 }) as unknown));
  });

  it('keeps concurrent requests apart while they share one upload budget', async () => {
    const results = await Promise.all([1, 2, 1, 2].map((n) => generateImages(command(n), dependencies)));
    const expected = await upstreamImages(2);

    for (const result of results) {
      for (const [index, image] of result.images.entries()) {
        expect(digest(await container.getBlobClient(image.blobName).downloadToBuffer())).toBe(digest(expected[index]));
      }
    }
  });

  it.each(['truncate', 'malformed'] as const)('ends a %s upstream body in 502 UpstreamInvalidResponse and leaves no blob or record behind', async (kind) => {
    emulator.enqueueFaults({ kind });
    const requestId = `request-${nextId + 1}`;

    await expect(generateImages(command(2), dependencies)).rejects.toMatchObject({ code: 'UpstreamInvalidResponse', status: 502 });

    expect(await blobNames(`${requestId}/`)).toEqual([]);
  });
});
