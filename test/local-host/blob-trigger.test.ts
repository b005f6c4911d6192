import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';

import { blobCreatedEvent } from '../../local-host/blob-trigger';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { startTestFunctionsHost } from '../helpers/functions-host';
import { blobInvocations } from './fixtures/blob-functions';

const FIXTURE = join(__dirname, 'fixtures', 'blob-functions.ts');

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('Event Grid blob triggers on the local host', () => {
  const containerName = uniqueContainerName('blob-trigger');
  const container = BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(containerName);
  let host: TestFunctionsHost;

  beforeAll(async () => {
    await container.create();
    await container.getBlockBlobClient('before-start.txt').upload('old', 3);
    host = await startTestFunctionsHost({
      functionModules: [FIXTURE],
      env: { FIXTURE_CONTAINER: containerName, FixtureStorage: testStorageConnectionString(), AzureWebJobsStorage: testStorageConnectionString() },
      blobTriggers: 'watch',
    });
  });

  afterAll(async () => {
    await host?.close();
    await container.deleteIfExists();
  });

  const invocationsFor = (name: string) => blobInvocations().filter((call) => call.triggerMetadata['name'] === name);
  const webhook = (body: unknown, eventType = 'Notification', key = host.functionKey) =>
    fetch(`${host.url}/runtime/webhooks/blobs?functionName=Host.Functions.fixture-blob&code=${key}`, {
      method: 'POST',
      headers: { 'aeg-event-type': eventType, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('turns a new blob and each rewrite into one invocation with the trigger metadata, ignoring what was there before', async () => {
    const blob = container.getBlockBlobClient('photos/new.txt');
    await blob.upload('first', 5, { metadata: { prompt: 'make it blue' } });
    await until(() => invocationsFor('photos/new.txt').length === 1, 'the first invocation');
    await blob.upload('second', 6);
    await until(() => invocationsFor('photos/new.txt').length === 2, 'the rewrite');
    await sleep(600);

    const [first, second] = invocationsFor('photos/new.txt');
    expect(first?.content).toBe('first');
    expect(first?.triggerMetadata).toMatchObject({ blobTrigger: `${containerName}/photos/new.txt`, metadata: { prompt: 'make it blue' } });
    expect(String(first?.triggerMetadata['uri'])).toContain(`/${containerName}/photos/new.txt`);
    expect(second?.content).toBe('second');
    expect(invocationsFor('photos/new.txt')).toHaveLength(2);
    expect(invocationsFor('before-start.txt')).toHaveLength(0);
  });

  it('serves the Event Grid webhook: the validation handshake, hand-delivered events, and the key', async () => {
    const validation = await webhook([{ eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: { validationCode: 'abc-123' } }], 'SubscriptionValidation');
    expect(validation.status).toBe(200);
    expect(await validation.json()).toEqual({ validationResponse: 'abc-123' });

    const unauthorized = await webhook([], 'Notification', 'wrong-key');
    expect(unauthorized.status).toBe(401);

    const delivered = await webhook([blobCreatedEvent(container.getBlobClient('before-start.txt').url)]);
    expect(delivered.status).toBe(202);
    expect(invocationsFor('before-start.txt').map((call) => call.content)).toEqual(['old']);
  });

  it('retries a failing invocation and then writes the poison message the host would', async () => {
    await container.getBlockBlobClient('fail-me.txt').upload('x', 1);

    const response = await webhook([blobCreatedEvent(container.getBlobClient('fail-me.txt').url)]);

    expect(response.status).toBe(202);
    expect(invocationsFor('fail-me.txt').length).toBeGreaterThanOrEqual(2);
    const poison = QueueServiceClient.fromConnectionString(testStorageConnectionString()).getQueueClient('webjobs-blobtrigger-poison');
    const messages = (await poison.receiveMessages({ numberOfMessages: 32 })).receivedMessageItems.map(
      (message) => JSON.parse(Buffer.from(message.messageText, 'base64').toString('utf8')) as Record<string, unknown>,
    );
    expect(messages).toContainEqual(expect.objectContaining({ FunctionId: 'Host.Functions.fixture-blob', ContainerName: containerName, BlobName: 'fail-me.txt' }));
  });
});
