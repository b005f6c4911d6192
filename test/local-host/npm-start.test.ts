import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { BlobServiceClient } from '@azure/storage-blob';

import { devStorageConnectionString } from '../../local-host/azurite';
import { getFreePort } from '../../local-host/ports';
import { readJsonBlob } from '../helpers/blobs';
import { makePng } from '../helpers/images';
import { pollLikePowerAutomate } from '../helpers/power-automate';

// The README's first command, as a user runs it: the compiled local host starts Azurite, the
// emulator and every trigger (HTTP, queue, blob), and the three product paths work through it.

const PROJECT_ROOT = join(__dirname, '..', '..');
const FUNCTION_KEY = 'npm-start-test-key';

describe('npm start (dist/local-host/main.js)', () => {
  let child: ChildProcess | undefined;
  let output = '';
  let apiUrl = '';
  let blobEndpoint = '';

  beforeAll(async () => {
    execFileSync('npm', ['run', '-s', 'build'], { cwd: PROJECT_ROOT, stdio: 'ignore' });
    const [port, emulatorPort] = [await getFreePort(), await getFreePort()];
    child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'local-host', 'main.js')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, PORT: String(port), EMULATOR_PORT: String(emulatorPort), LOCAL_FUNCTION_KEY: FUNCTION_KEY, AZURITE_DATA: 'memory', JOBS_RETRY_AFTER_SECONDS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const deadline = Date.now() + 60_000;
    while (!output.includes('ready on')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not get ready:\n${output}`);
      await sleep(100);
    }
    apiUrl = /ready on (\S+)/.exec(output)?.[1] ?? '';
    blobEndpoint = /Azurite \(pid \d+\) blob (\S+),/.exec(output)?.[1] ?? '';
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  });

  const headers = { 'x-functions-key': FUNCTION_KEY, 'content-type': 'application/json' };

  it('lists every function, with the queue and blob triggers it runs', () => {
    for (const name of ['images-generate', 'images-edit', 'jobs-get', 'jobs-worker', 'jobs-poison', 'inbox-edit', 'health-get']) expect(output).toContain(`${name}:`);
    expect(output).not.toContain('not run by the local host');
  });

  it('generates an image and links to it', async () => {
    const response = await fetch(`${apiUrl}/images/generations`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a watercolor fox' }) });

    expect(response.status).toBe(200);
    const body = (await response.json()) as { data: { url: string }[] };
    expect((await fetch(body.data[0]?.url ?? '')).status).toBe(200);
  });

  it('runs an async job through its queue worker', async () => {
    const start = await fetch(`${apiUrl}/images/generations?async=true`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'queued fox' }) });

    const { final } = await pollLikePowerAutomate(start);

    expect(start.status).toBe(202);
    expect(final.status).toBe(200);
  });

  it('edits an image uploaded to the inbox', async () => {
    const storage = BlobServiceClient.fromConnectionString(
      devStorageConnectionString({ blobEndpoint, queueEndpoint: blobEndpoint, tableEndpoint: blobEndpoint }),
    );
    const upload = await storage
      .getContainerClient('inbox')
      .getBlockBlobClient('smoke/photo.png')
      .upload(makePng(64, 64), makePng(64, 64).length, { metadata: { prompt: 'make it blue' } });
    const manifest = storage.getContainerClient('outputs').getBlobClient(`smoke/photo.png/${(upload.etag ?? '').replace(/[^A-Za-z0-9]/g, '')}/manifest.json`);

    const deadline = Date.now() + 20_000;
    while (!(await manifest.exists())) {
      if (Date.now() > deadline) throw new Error(`no manifest:\n${output}`);
      await sleep(100);
    }
    expect(await readJsonBlob<{ status: string }>(manifest)).toMatchObject({ status: 'succeeded' });
  });
});
