import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { setTimeout as sleep } from 'node:timers/promises';

import { blobCreatedEvent } from '../../local-host/blob-trigger';
import type { RunningEmulator } from '../../emulator/server';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { readJsonBlob } from '../helpers/blobs';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { makePng, patternSamples } from '../emulator/helpers';
import { downloadPng, expectedMaskedEdit, inputPng, maskPng, sha256 } from './edits-fixtures';

// Uploads into the inbox, edited by the Event Grid blob trigger as the local host simulates it (a
// watcher that sends the BlobCreated events Event Grid would), results and manifests in outputs.

interface Manifest {
  status: string;
  jobId?: string;
  jobToken?: string;
  source: { name: string; etag: string };
  images?: { blobName: string; url: string }[];
  error?: { code: string; message: string };
}

const PRESET_PROMPT = 'put the product on a white background';

describe('blob-triggered edits through the local stack', () => {
  const storage = BlobServiceClient.fromConnectionString(testStorageConnectionString());
  const inboxName = uniqueContainerName('e2e-inbox');
  const outputsName = uniqueContainerName('e2e-outputs');
  let inbox: ContainerClient;
  let outputs: ContainerClient;
  let stack: AppStack | undefined;
  let emulator: RunningEmulator;
  let host: TestFunctionsHost;

  beforeAll(async () => {
    stack = await startAppStack({
      settings: {
        INBOX_CONTAINER: inboxName,
        OUTPUTS_CONTAINER: outputsName,
        INBOX_PRESETS: JSON.stringify({ 'product-shots': { prompt: PRESET_PROMPT, quality: 'low' } }),
        AZURE_OPENAI_MAX_RETRIES: '0',
      },
      host: { blobTriggers: 'watch' },
    });
    ({ emulator, host } = stack);
    inbox = storage.getContainerClient(inboxName);
    outputs = storage.getContainerClient(outputsName);
  });

  afterAll(() => stack?.close());

  beforeEach(() => emulator.reset());

  async function upload(name: string, bytes: Buffer | string, metadata: Record<string, string> = {}): Promise<string> {
    const response = await inbox.getBlockBlobClient(name).upload(bytes, Buffer.byteLength(bytes), { metadata });
    return response.etag ?? '';
  }

  async function manifestOf(name: string, etag: string, wanted: (manifest: Manifest) => boolean = () => true): Promise<Manifest> {
    const blob = outputs.getBlobClient(`${name}/${etag.replace(/[^A-Za-z0-9]/g, '')}/manifest.json`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (await blob.exists()) {
        const manifest = await readJsonBlob<Manifest>(blob);
        if (wanted(manifest)) return manifest;
      }
      if (Date.now() > deadline) throw new Error(`no manifest for ${name} (${etag})`);
      await sleep(100);
    }
  }

  /** Lets the watcher and the invocations it started settle. */
  const settle = () => sleep(1_500);

  it('edits an image whose metadata carries the prompt, exactly once, and records the outcome everywhere', async () => {
    const etag = await upload('photos/door.png', inputPng, { prompt: 'paint%20the%20door%20red', quality: 'low' });

    const manifest = await manifestOf('photos/door.png', etag);
    await settle();

    expect(manifest).toMatchObject({ status: 'succeeded', source: { name: 'photos/door.png', etag } });
    expect(manifest.images?.[0]?.blobName).toMatch(/^photos\/door\.png\/[A-Za-z0-9]+\/0\.png$/);
    const result = await downloadPng(manifest.images?.[0]?.url ?? '');
    expect(result.width).toBe(96);
    expect(emulator.requests).toHaveLength(1);
    expect(emulator.requests[0]?.body).toMatchObject({ prompt: 'paint the door red', quality: 'low' });
    expect(emulator.requests[0]?.files?.[0]?.sha256).toBe(sha256(inputPng));

    const metadata = (await inbox.getBlobClient('photos/door.png').getProperties()).metadata ?? {};
    expect(metadata).toMatchObject({ prompt: 'paint%20the%20door%20red', imagegen_status: 'succeeded', imagegen_job: manifest.jobId });
    const job = await fetch(`${host.url}/api/jobs/${manifest.jobId ?? ''}?token=${manifest.jobToken ?? ''}`);
    expect(job.status).toBe(200);
  });

  it("edits an image under a preset's folder with the preset's prompt", async () => {
    const etag = await upload('product-shots/shoe.png', inputPng);

    const manifest = await manifestOf('product-shots/shoe.png', etag);

    expect(manifest.status).toBe('succeeded');
    expect(emulator.requests[0]?.body).toMatchObject({ prompt: PRESET_PROMPT, quality: 'low' });
  });

  it('edits several images and a mask named by a JSON ticket, leaving the _inputs alone', async () => {
    const prompt = 'a tidy desk';
    const mask = maskPng();
    await upload('batch/_inputs/a.png', inputPng);
    await upload('batch/_inputs/mask.png', mask);
    await settle();
    expect(emulator.requests).toHaveLength(0);

    const etag = await upload('batch/ticket.json', JSON.stringify({ prompt, images: ['_inputs/a.png', '_inputs/a.png'], mask: '_inputs/mask.png' }));
    const manifest = await manifestOf('batch/ticket.json', etag);

    expect(manifest.status).toBe('succeeded');
    expect(emulator.requests).toHaveLength(1);
    expect(emulator.requests[0]?.files?.map((file) => file.sha256)).toEqual([sha256(inputPng), sha256(inputPng), sha256(mask)]);
    const result = await downloadPng(manifest.images?.[0]?.url ?? '');
    expect(Buffer.from(result.samples).equals(expectedMaskedEdit(prompt))).toBe(true);
  });

  it('makes no second upstream call for a repeated event or an overwrite with the same bytes, but edits a new version', async () => {
    const name = 'photos/repeat.png';
    const etag = await upload(name, inputPng, { prompt: 'once only' });
    await manifestOf(name, etag);
    await settle();

    const event = blobCreatedEvent(inbox.getBlobClient(name).url, { etag });
    for (let delivery = 0; delivery < 2; delivery++) {
      const response = await fetch(`${host.url}/runtime/webhooks/blobs?functionName=Host.Functions.inbox-edit&code=${host.functionKey}`, {
        method: 'POST',
        headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
        body: JSON.stringify([event]),
      });
      expect(response.status).toBe(202);
    }
    await upload(name, inputPng, { prompt: 'once only' });
    await settle();
    expect(emulator.requests).toHaveLength(1);

    const newEtag = await upload(name, variantPng(1), { prompt: 'once only' });
    const manifest = await manifestOf(name, newEtag);
    expect(manifest.status).toBe('succeeded');
    expect(emulator.requests).toHaveLength(2);
  });

  it('finishes an edit whose first attempt failed on the host retry, with a working job link', async () => {
    emulator.enqueueFaults({ kind: 'status', status: 503 });
    const etag = await upload('photos/second-try.png', variantPng(3), { prompt: 'try again' });

    const manifest = await manifestOf('photos/second-try.png', etag, (found) => found.status === 'succeeded');

    expect(emulator.requests.map((request) => request.status)).toEqual([503, 200]);
    const job = await fetch(`${host.url}/api/jobs/${manifest.jobId ?? ''}?token=${manifest.jobToken ?? ''}`);
    expect(job.status).toBe(200);
  });

  it.each([
    ['a text file', 'notes/readme.txt', 'not an image', { prompt: 'x' }, 'UnsupportedImageType'],
    ['an image without a prompt', 'loose/photo.png', inputPng, {}, 'MissingPrompt'],
    ['a ticket that is not JSON', 'bad/ticket.json', '{"prompt": ', {}, 'InvalidTicket'],
    ['a ticket without images', 'bad/empty-ticket.json', JSON.stringify({ prompt: 'x' }), {}, 'MissingParameter'],
    ['a ticket naming a missing image', 'bad/missing-ticket.json', JSON.stringify({ prompt: 'x', images: ['nope.png'] }), {}, 'InputBlobNotFound'],
    ['a model this app does not serve', 'bad/dalle.png', inputPng, { prompt: 'x', model: 'dall-e-3' }, 'UnknownModel'],
  ] as const)('ends %s in a failed manifest with its code, without retries or upstream calls', async (_case, name, bytes, metadata, code) => {
    const etag = await upload(name, typeof bytes === 'string' ? bytes : Buffer.from(bytes), { ...metadata });

    const manifest = await manifestOf(name, etag);
    await settle();

    expect(manifest).toMatchObject({ status: 'failed', error: { code } });
    expect((await inbox.getBlobClient(name).getProperties()).metadata).toMatchObject({ imagegen_status: 'failed', imagegen_error: code });
    expect(emulator.requests).toHaveLength(0);
  });

  it('writes one failed manifest per upload version, though recording the outcome gives the blob a new ETag', async () => {
    const name = 'loose/once.png';
    const etag = await upload(name, variantPng(11));
    await manifestOf(name, etag);

    // The watcher, like any observer of ETags, sees the outcome written into the metadata as a
    // change and delivers the blob once more; that delivery must find the upload already handled.
    const deliveries = () => host.logs.filter((line) => line.includes(`/blobs/${name} done`)).length;
    await waitFor(() => deliveries() >= 2, `a second delivery of ${name}`);

    const manifests: string[] = [];
    for await (const blob of outputs.listBlobsFlat({ prefix: `${name}/` })) if (blob.name.endsWith('/manifest.json')) manifests.push(blob.name);
    expect(manifests).toEqual([`${name}/${etag.replace(/[^A-Za-z0-9]/g, '')}/manifest.json`]);
    expect((await inbox.getBlobClient(name).getProperties()).metadata).toMatchObject({ imagegen_status: 'failed', imagegen_error: 'MissingPrompt' });
  });

  it('records a transient failure, lets the host retry, and ends in the poison queue', async () => {
    const name = 'photos/flaky.png';
    const etag = await upload(name, variantPng(7), { prompt: 'doomed [emulator:503]' });

    const manifest = await manifestOf(name, etag, (found) => found.status === 'retrying');
    const poison = QueueServiceClient.fromConnectionString(testStorageConnectionString()).getQueueClient('webjobs-blobtrigger-poison');
    await poison.createIfNotExists();
    let poisoned = false;
    for (let attempt = 0; attempt < 100 && !poisoned; attempt++) {
      const peeked = await poison.peekMessages({ numberOfMessages: 32 });
      poisoned = peeked.peekedMessageItems.some((message) => Buffer.from(message.messageText, 'base64').toString('utf8').includes('flaky.png'));
      if (!poisoned) await sleep(100);
    }

    expect(manifest.error?.code).toBe('UpstreamError');
    expect(poisoned).toBe(true);
    expect(emulator.requests.length).toBeGreaterThanOrEqual(2);
  });
});

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Another valid PNG of the input's size: the input's pattern with its first sample changed. */
function variantPng(seed: number): Buffer {
  const samples = patternSamples(96, 64, 3);
  samples[0] = (samples[0] ?? 0) ^ seed;
  return makePng(96, 64, 3, samples);
}
