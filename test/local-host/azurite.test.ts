import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BlobServiceClient } from '@azure/storage-blob';

import type { RunningAzurite } from '../../local-host/azurite';
import { isDevelopmentStorage, startAzurite } from '../../local-host/azurite';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function roundTrip(connectionString: string, container: string, text: string): Promise<string> {
  const containerClient = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container);
  await containerClient.createIfNotExists();
  const blob = containerClient.getBlockBlobClient('hello.txt');
  await blob.uploadData(Buffer.from(text), { blobHTTPHeaders: { blobContentType: 'text/plain' } });
  return (await blob.downloadToBuffer()).toString('utf8');
}

describe('startAzurite', () => {
  const running: RunningAzurite[] = [];
  const temporaryDirs: string[] = [];

  afterAll(async () => {
    await Promise.all(running.map((azurite) => azurite.stop()));
    for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('starts in memory on free ports, stores a blob, and leaves no process after stop()', async () => {
    const azurite = await startAzurite();
    running.push(azurite);

    expect(azurite.blobEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    expect(new Set([azurite.blobEndpoint, azurite.queueEndpoint, azurite.tableEndpoint]).size).toBe(3);
    expect(isDevelopmentStorage(azurite.connectionString)).toBe(true);
    expect(await roundTrip(azurite.connectionString, 'launcher', 'hello azurite')).toBe('hello azurite');
    expect(isAlive(azurite.pid)).toBe(true);

    await azurite.stop();

    expect(isAlive(azurite.pid)).toBe(false);
    await expect(azurite.stop()).resolves.toBeUndefined();
  });

  it('keeps blobs across restarts when given a data folder', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'azurite-data-'));
    temporaryDirs.push(dataDir);
    const first = await startAzurite({ dataDir });
    running.push(first);
    await roundTrip(first.connectionString, 'kept', 'still here');
    await first.stop();

    const second = await startAzurite({ dataDir });
    running.push(second);
    const blob = BlobServiceClient.fromConnectionString(second.connectionString).getContainerClient('kept').getBlobClient('hello.txt');

    expect((await blob.downloadToBuffer()).toString('utf8')).toBe('still here');
    await second.stop();
    expect(isAlive(second.pid)).toBe(false);
  });

  it("fails with Azurite's own words when a port is taken", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      await expect(startAzurite({ blobPort: port, startTimeoutInMs: 15_000 })).rejects.toThrow(/exited .*before it was ready[\s\S]*Azurite said:[\s\S]*EADDRINUSE/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

describe('the shared test Azurite', () => {
  it('is reachable through TEST_AZURITE_CONNECTION_STRING', async () => {
    expect(await roundTrip(testStorageConnectionString(), uniqueContainerName('shared-azurite'), 'shared')).toBe('shared');
  });

  it('hands out valid, distinct container names', () => {
    const names = [uniqueContainerName('My_Test  Prefix--x'), uniqueContainerName('My_Test  Prefix--x'), uniqueContainerName('')];

    for (const name of names) expect(name).toMatch(/^(?!-)(?!.*--)[a-z0-9-]{3,63}(?<!-)$/);
    expect(new Set(names).size).toBe(3);
  });
});
