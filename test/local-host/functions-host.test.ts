import { join } from 'node:path';

import { BlobServiceClient } from '@azure/storage-blob';

import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { appTestEnv, startTestFunctionsHost } from '../helpers/functions-host';

const SETTINGS_FIXTURE = join(__dirname, 'fixtures', 'settings-functions.ts');

describe('startTestFunctionsHost', () => {
  afterEach(() => {
    delete process.env['FIXTURE_GREETING'];
  });

  it('gives the functions its env on the first request and restores process.env on close', async () => {
    const host = await startTestFunctionsHost({ functionModules: [SETTINGS_FIXTURE], env: { FIXTURE_GREETING: 'hello' } });
    try {
      const response = await fetch(`${host.url}/api/greeting`, { headers: { 'x-functions-key': host.functionKey } });

      expect(response.status).toBe(200);
      expect(await response.text()).toBe('hello');
    } finally {
      await host.close();
    }
    expect(process.env['FIXTURE_GREETING']).toBeUndefined();
  });

  it('loads the functions afresh for each host, so cached settings do not leak between hosts', async () => {
    process.env['FIXTURE_GREETING'] = 'from the outside';
    const greetings: string[] = [];
    for (const greeting of ['bonjour', 'hola']) {
      const host = await startTestFunctionsHost({ functionModules: [SETTINGS_FIXTURE], env: { FIXTURE_GREETING: greeting } });
      try {
        const response = await fetch(`${host.url}/api/greeting?code=${host.functionKey}`);
        greetings.push(await response.text());
      } finally {
        await host.close();
      }
    }

    expect(greetings).toEqual(['bonjour', 'hola']);
    expect(process.env['FIXTURE_GREETING']).toBe('from the outside');
  });

  it('keeps the function key requirement of the registration', async () => {
    const host = await startTestFunctionsHost({ functionModules: [SETTINGS_FIXTURE], functionKey: 'k1' });
    try {
      const response = await fetch(`${host.url}/api/greeting`);

      expect(response.status).toBe(401);
      expect(host.functionKey).toBe('k1');
    } finally {
      await host.close();
    }
  });
});

describe('startTestFunctionsHost with the real app', () => {
  let emulator: RunningEmulator | undefined;
  let host: TestFunctionsHost | undefined;
  const container = uniqueContainerName('local-host-smoke');

  beforeAll(async () => {
    emulator = await startEmulator();
    host = await startTestFunctionsHost({ env: appTestEnv({ emulatorUrl: emulator.url, imagesContainer: container }) });
  });

  afterAll(async () => {
    await host?.close();
    await emulator?.close();
  });

  it('creates the configured container in Azurite before serving', async () => {
    const exists = await BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(container).exists();

    expect(exists).toBe(true);
  });

  it('serves the app: health is anonymous, generations need the function key', async () => {
    if (host === undefined) throw new Error('host did not start');

    const health = await fetch(`${host.url}/api/health`);
    const unauthorized = await fetch(`${host.url}/api/images/generations`, { method: 'POST', body: '{}' });

    expect(health.status).toBe(200);
    expect(unauthorized.status).toBe(401);
  });

  it('generates an image through the emulator and stores it in Azurite', async () => {
    if (host === undefined || emulator === undefined) throw new Error('host did not start');

    const response = await fetch(`${host.url}/api/images/generations`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a watercolor fox', size: '1024x1024' }),
    });

    expect(response.status).toBe(200);
    expect(emulator.requests.filter((request) => request.operation === 'generations')).toHaveLength(1);
    const blobs: string[] = [];
    const containerClient = BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(container);
    for await (const blob of containerClient.listBlobsFlat()) blobs.push(blob.name);
    expect(blobs.length).toBeGreaterThanOrEqual(1);
  });
});
