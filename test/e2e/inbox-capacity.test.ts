import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';

import type { RunningEmulator } from '../../emulator/server';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { readJsonBlob } from '../helpers/blobs';
import { deliverInboxEvent } from '../helpers/blob-events';
import type { CallbackReceiver } from '../helpers/callback-receiver';
import { startCallbackReceiver } from '../helpers/callback-receiver';
import type { TestFunctionsHost } from '../helpers/functions-host';

// An inbox upload that arrives while the upstream has no room: the trigger hands it to the jobs
// worker, and whoever finishes the job finishes the upload's bookkeeping (manifest, outcome,
// subscribers), exactly as when the trigger runs the edit itself. The emulator enforces a quota of
// one image per six-second "minute", and the app learns it from the answers' x-ratelimit headers.

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const HOUSE = readFileSync(join(__dirname, '..', '..', 'samples', 'house.png'));
const MODEL = 'gpt-image-1.5';

interface Manifest {
  status: string;
  jobId?: string;
  jobToken?: string;
  source?: { name: string; etag: string };
  images?: { blobName: string; url: string }[];
  error?: { code: string };
}

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutInMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutInMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('inbox uploads deferred for capacity', () => {
  const names = {
    inbox: uniqueContainerName('cap-inbox'),
    outputs: uniqueContainerName('cap-outputs'),
    jobs: uniqueContainerName('cap-jobs'),
    callbacks: uniqueContainerName('cap-callbacks'),
  };
  const storage = BlobServiceClient.fromConnectionString(testStorageConnectionString());
  const callbackQueue = QueueServiceClient.fromConnectionString(testStorageConnectionString()).getQueueClient(names.callbacks);
  let inbox: ContainerClient;
  let outputs: ContainerClient;
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;
  let emulator: RunningEmulator;
  let receiver: CallbackReceiver;

  beforeAll(async () => {
    receiver = await startCallbackReceiver();
    stack = await startAppStack({
      emulator: { quotas: { [MODEL]: { imagesPerMinute: 1 } }, minuteMs: 6_000 },
      settings: {
        CALLBACK_SIGNING_SECRET: SECRET,
        CALLBACK_ALLOW_LOOPBACK: 'true',
        INBOX_CONTAINER: names.inbox,
        OUTPUTS_CONTAINER: names.outputs,
        JOBS_CONTAINER: names.jobs,
        CALLBACKS_QUEUE: names.callbacks,
      },
      host: { runQueueTriggers: true, blobTriggers: 'webhook' },
    });
    ({ host, emulator } = stack);
    inbox = storage.getContainerClient(names.inbox);
    outputs = storage.getContainerClient(names.outputs);
    const subscribed = await fetch(`${host.url}/api/subscriptions`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
      body: JSON.stringify({ callbackUrl: `${receiver.url}/flow`, folder: 'capacity' }),
    });
    expect(subscribed.status).toBe(201);
  });

  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  });

  beforeEach(() => receiver.reset());

  const editsSent = () => emulator.requests.filter((request) => request.operation === 'edits' && request.status === 200).length;

  /** Spends the model's whole quota with a generation, waiting for room first if an earlier test left none. */
  async function useUpCapacity(): Promise<void> {
    await waitUntil(async () => {
      const response = await fetch(`${host.url}/api/images/generations`, {
        method: 'POST',
        headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'spend the quota', quality: 'low' }),
      });
      if (response.status !== 200 && response.status !== 429) throw new Error(`the generation answered ${response.status}`);
      return response.status === 200;
    }, 'room for the generation that uses up the quota');
  }

  async function uploadWhileFull(name: string, prompt: string): Promise<{ prefix: string }> {
    await useUpCapacity();
    const blob = inbox.getBlockBlobClient(name);
    const uploaded = await blob.upload(HOUSE, HOUSE.length, { metadata: { prompt: encodeURIComponent(prompt), quality: 'low' } });
    const editsBefore = editsSent();
    expect((await deliverInboxEvent(host, blob.url)).status).toBe(202);
    // The trigger did not pay for a 429 it could see coming: the edit waits in the jobs queue.
    expect(editsSent()).toBe(editsBefore);
    return { prefix: `${name}/${(uploaded.etag ?? '').replace(/[^A-Za-z0-9]/g, '')}` };
  }

  async function readManifest(prefix: string): Promise<Manifest | undefined> {
    const blob = outputs.getBlobClient(`${prefix}/manifest.json`);
    return (await blob.exists()) ? readJsonBlob<Manifest>(blob) : undefined;
  }

  async function manifestsUnder(name: string): Promise<string[]> {
    const found: string[] = [];
    for await (const blob of outputs.listBlobsFlat({ prefix: `${name}/` })) if (blob.name.endsWith('/manifest.json')) found.push(blob.name);
    return found;
  }

  it('finishes an upload deferred for capacity once room returns: one manifest, the outcome, the subscriber told, no second edit on redelivery', async () => {
    const name = 'capacity/house.png';
    const { prefix } = await uploadWhileFull(name, 'paint the front door red');
    const waiting = await readManifest(prefix);
    const triggerLog = host.logs.filter((line) => line.includes(`"${name}"`));

    await waitUntil(() => outputs.getBlobClient(`${prefix}/request.json`).exists(), `the jobs worker to store the edit of ${name}`);
    // The job is done; give its bookkeeping a generous while to land, then look at all of it at once.
    await waitUntil(async () => (await readManifest(prefix))?.status === 'succeeded' && receiver.received.length > 0, `the bookkeeping of ${name}`, 20_000).catch(
      () => undefined,
    );
    const manifest = await readManifest(prefix);
    const metadata = (await inbox.getBlobClient(name).getProperties()).metadata ?? {};

    expect({
      waiting: waiting && { status: waiting.status, source: waiting.source?.name },
      saysItWaits: triggerLog.some((line) => line.includes(`job ${waiting?.jobId ?? '?'} waits for upstream capacity`)),
      saysAnotherInvocationRunsIt: triggerLog.some((line) => line.includes('being run by another invocation')),
      manifests: await manifestsUnder(name),
      manifest: manifest && { status: manifest.status, source: manifest.source?.name, images: manifest.images?.length ?? 0 },
      outcome: { status: metadata['imagegen_status'], job: metadata['imagegen_job'], output: metadata['imagegen_output'] },
      notified: receiver.received.map((callback) => ({
        event: callback.headers['imagegen-event'],
        manifest: (new Webhook(SECRET).verify(callback.body, callback.headers) as Manifest).status,
      })),
    }).toEqual({
      waiting: { status: 'queued', source: name },
      saysItWaits: true,
      saysAnotherInvocationRunsIt: false,
      manifests: [`${prefix}/manifest.json`],
      manifest: { status: 'succeeded', source: name, images: 1 },
      outcome: { status: 'succeeded', job: waiting?.jobId, output: prefix },
      notified: [{ event: 'inbox.edited', manifest: 'succeeded' }],
    });
    expect(manifest?.jobId).toBe(waiting?.jobId);
    expect((await fetch(manifest?.images?.[0]?.url ?? '')).status).toBe(200);
    expect((await fetch(`${host.url}/api/jobs/${manifest?.jobId ?? ''}/status?token=${manifest?.jobToken ?? ''}`)).status).toBe(200);

    // Event Grid delivers the same event again: nothing is edited, written or sent a second time.
    const edits = editsSent();
    expect((await deliverInboxEvent(host, inbox.getBlobClient(name).url)).status).toBe(202);
    expect(editsSent()).toBe(edits);
    expect((await callbackQueue.getProperties()).approximateMessagesCount).toBe(0);
    expect(await manifestsUnder(name)).toEqual([`${prefix}/manifest.json`]);
    expect(receiver.received).toHaveLength(1);
  }, 120_000);

  it('ends a deferred upload the upstream then refuses in a failed manifest, recorded and told, as the trigger itself would', async () => {
    const name = 'capacity/refused.png';
    const { prefix } = await uploadWhileFull(name, 'paint a forbidden door [emulator:filter-input]');

    // A refused edit stores no images, so the end shows in the manifest alone.
    await waitUntil(async () => (await readManifest(prefix))?.status !== 'queued', `the jobs worker to end ${name}`).catch(() => undefined);
    await waitUntil(() => receiver.received.length > 0, `the subscriber to hear of ${name}`, 20_000).catch(() => undefined);
    const manifest = await readManifest(prefix);
    const metadata = (await inbox.getBlobClient(name).getProperties()).metadata ?? {};

    expect({
      manifest: manifest && { status: manifest.status, error: manifest.error?.code },
      outcome: { status: metadata['imagegen_status'], error: metadata['imagegen_error'], job: metadata['imagegen_job'] },
      notified: receiver.received.map((callback) => (new Webhook(SECRET).verify(callback.body, callback.headers) as Manifest).error?.code),
    }).toEqual({
      manifest: { status: 'failed', error: 'contentFilter' },
      outcome: { status: 'failed', error: 'contentFilter', job: manifest?.jobId },
      notified: ['contentFilter'],
    });
  }, 120_000);
});
