import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import type { RunningEmulator } from '../../emulator/server';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { deliverInboxEvent } from '../helpers/blob-events';
import { readJsonBlob } from '../helpers/blobs';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { inputPng } from '../e2e/edits-fixtures';

// Finding 1 of the attack run: the storage SDK resolves `..` in a blob name, so an inbox event for
// `inbox/..%2Fjobs%2Fsecprobe%2Fprobe.png` made the handler read `jobs/secprobe/probe.png`, write its
// manifest into `jobs` and set metadata there; aimed at a job record, it changed the record's ETag.

interface Manifest {
  status: string;
  source: { name: string };
  error?: { code: string; message: string };
}

async function allBlobs(container: ContainerClient): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for await (const item of container.listBlobsFlat()) found.set(item.name, item.properties.etag ?? '');
  return found;
}

describe('inbox events whose blob names climb out of the inbox', () => {
  const storage = BlobServiceClient.fromConnectionString(testStorageConnectionString());
  const inboxName = uniqueContainerName('sec-inbox');
  const outputsName = uniqueContainerName('sec-outputs');
  const jobsName = uniqueContainerName('sec-jobs');
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;
  let emulator: RunningEmulator;
  let jobs: ContainerClient;
  let outputs: ContainerClient;

  beforeAll(async () => {
    stack = await startAppStack({
      settings: { INBOX_CONTAINER: inboxName, OUTPUTS_CONTAINER: outputsName, JOBS_CONTAINER: jobsName, AZURE_OPENAI_MAX_RETRIES: '0' },
      host: { blobTriggers: 'webhook' },
    });
    ({ host, emulator } = stack);
    jobs = storage.getContainerClient(jobsName);
    outputs = storage.getContainerClient(outputsName);
  });

  afterAll(() => stack?.close());

  /** Delivers one BlobCreated event for `encodedName` (as it appears in the event's URL) through the host's webhook. */
  async function deliver(encodedName: string): Promise<void> {
    const response = await deliverInboxEvent(host, `${storage.getContainerClient(inboxName).url}/${encodedName}`);
    expect(response.status).toBe(202);
  }

  async function rejectionManifest(name: string): Promise<Manifest> {
    const blob = outputs.getBlobClient(`_rejected/${createHash('sha256').update(name).digest('hex')}/manifest.json`);
    for (const deadline = Date.now() + 20_000; !(await blob.exists()); await sleep(100)) {
      if (Date.now() > deadline) throw new Error(`no rejection manifest for ${JSON.stringify(name)}`);
    }
    return readJsonBlob<Manifest>(blob);
  }

  it('refuses the exact event of the attack run: nothing read, written or changed in another container', async () => {
    const probe = jobs.getBlockBlobClient('secprobe/probe.png');
    await probe.upload(inputPng, inputPng.length, { metadata: { prompt: 'paint it red' } });
    const before = await allBlobs(jobs);

    // The webhook answers once the invocation (and the host's retries) are over.
    await deliver(`..%2F${jobsName}%2Fsecprobe%2Fprobe.png`);

    expect((await probe.getProperties()).metadata).toEqual({ prompt: 'paint it red' });
    expect(await allBlobs(jobs)).toEqual(before);
    expect(emulator.requests).toHaveLength(0);
    const manifest = await rejectionManifest(`../${jobsName}/secprobe/probe.png`);
    expect(manifest).toMatchObject({ status: 'failed', source: { name: `../${jobsName}/secprobe/probe.png` }, error: { code: 'InvalidBlobName' } });
  });

  it("leaves a job's record alone when an event names it", async () => {
    const submitted = await fetch(`${host.url}/api/images/generations?async=true`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a record to stall' }),
    });
    const { id } = (await submitted.json()) as { id: string };
    const record = jobs.getBlobClient(`jobs/${id}.json`);
    const etag = (await record.getProperties()).etag;

    await deliver(`..%2F${jobsName}%2Fjobs%2F${id}.json`);

    expect((await record.getProperties()).etag).toBe(etag);
    expect([...(await allBlobs(jobs)).keys()].filter((name) => name.includes('manifest'))).toEqual([]);
    const manifest = await rejectionManifest(`../${jobsName}/jobs/${id}.json`);
    expect(manifest.error?.code).toBe('InvalidBlobName');
  });

  it.each([
    ['a dot segment', 'photos%2F.%2Fdoor.png', 'photos/./door.png'],
    ['an empty segment', 'photos%2F%2Fdoor.png', 'photos//door.png'],
    ['a backslash', 'photos%5C..%5Cdoor.png', 'photos\\..\\door.png'],
    ['a control character', 'photos%2Fdo%0Aor.png', 'photos/do\nor.png'],
  ])('refuses an upload name with %s with a failed InvalidBlobName manifest', async (_label, encoded, name) => {
    await deliver(encoded);

    const manifest = await rejectionManifest(name);
    expect(manifest).toMatchObject({ status: 'failed', error: { code: 'InvalidBlobName' } });
    expect(manifest.error?.message).not.toContain(name);
  });
});
