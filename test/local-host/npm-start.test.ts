import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { BlobServiceClient } from '@azure/storage-blob';

import { getFreePort } from '../../local-host/ports';
import { readJsonBlob } from '../helpers/blobs';
import { makePng } from '../helpers/images';
import type { NpmStartProcess, StackPorts } from '../helpers/npm-start';
import { buildOnce, copyProjectForStart, freeStackPorts, startLikeNpmStart } from '../helpers/npm-start';
import { pollLikePowerAutomate } from '../helpers/power-automate';

// The README's first command, as a user runs it: the compiled local host starts Azurite, the
// emulator and every trigger (HTTP, queue, blob), and the three product paths work through it.

const FUNCTION_KEY = 'npm-start-test-key';

describe('npm start (dist/local-host/main.js)', () => {
  let stack: NpmStartProcess | undefined;
  let ports: StackPorts;
  let stateDir: string;
  let apiUrl = '';
  let connectionString = '';

  beforeAll(async () => {
    await buildOnce();
    const free = await freeStackPorts();
    ports = free.ports;
    stateDir = mkdtempSync(join(tmpdir(), 'npm-start-state-'));
    stack = await startLikeNpmStart({
      env: { ...free.env, LOCAL_STATE_DIR: stateDir, LOCAL_FUNCTION_KEY: FUNCTION_KEY, AZURITE_DATA: 'memory', JOBS_RETRY_AFTER_SECONDS: '1' },
    });
    apiUrl = /ready on (\S+)/.exec(stack.output())?.[1] ?? '';
    connectionString = /^ {2}storage: (\S+)$/m.exec(stack.output())?.[1] ?? '';
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const headers = { 'x-functions-key': FUNCTION_KEY, 'content-type': 'application/json' };

  it('lists every function, with the queue and blob triggers it runs', () => {
    for (const name of ['images-generate', 'images-edit', 'jobs-get', 'jobs-worker', 'jobs-poison', 'inbox-edit', 'health-get']) expect(stack?.output()).toContain(`${name}:`);
    expect(stack?.output()).not.toContain('not run by the local host');
  });

  it("runs Azurite on the ports asked for, reports them, and prints a storage connection string that reaches it", async () => {
    for (const port of [ports.blob, ports.queue, ports.table]) expect(stack?.output()).toContain(`http://127.0.0.1:${port}/devstoreaccount1`);
    expect(connectionString).toContain(`BlobEndpoint=http://127.0.0.1:${ports.blob}/devstoreaccount1`);

    const containers: string[] = [];
    for await (const container of BlobServiceClient.fromConnectionString(connectionString).listContainers()) containers.push(container.name);
    expect(containers).toEqual(expect.arrayContaining(['images', 'inbox', 'outputs', 'jobs']));
  });

  it('writes where it runs, its key and its storage into LOCAL_STATE_DIR for the project CLI', () => {
    const running: unknown = JSON.parse(readFileSync(join(stateDir, 'running-stack.json'), 'utf8'));

    expect(running).toMatchObject({ pid: stack?.child.pid, appUrl: apiUrl.replace(/\/api$/, ''), functionKey: FUNCTION_KEY, storageConnectionString: connectionString });
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
    const storage = BlobServiceClient.fromConnectionString(connectionString);
    const upload = await storage
      .getContainerClient('inbox')
      .getBlockBlobClient('smoke/photo.png')
      .upload(makePng(64, 64), makePng(64, 64).length, { metadata: { prompt: 'make it blue' } });
    const manifest = storage.getContainerClient('outputs').getBlobClient(`smoke/photo.png/${(upload.etag ?? '').replace(/[^A-Za-z0-9]/g, '')}/manifest.json`);

    const deadline = Date.now() + 20_000;
    while (!(await manifest.exists())) {
      if (Date.now() > deadline) throw new Error(`no manifest:\n${stack?.output() ?? ''}`);
      await sleep(100);
    }
    expect(await readJsonBlob<{ status: string }>(manifest)).toMatchObject({ status: 'succeeded' });
  });

  it('removes its running-stack.json when it stops', async () => {
    await stack?.stop();

    expect(existsSync(join(stateDir, 'running-stack.json'))).toBe(false);
  });
});

describe('npm start and EMULATOR_PORT', () => {
  let project: ReturnType<typeof copyProjectForStart> | undefined;
  let stack: NpmStartProcess | undefined;

  beforeAll(() => buildOnce(), 180_000);

  afterEach(async () => {
    await stack?.stop();
    project?.remove();
    stack = undefined;
    project = undefined;
  });

  it("starts the emulator on EMULATOR_PORT even when local.settings.json names the emulator's usual address", async () => {
    const example = JSON.parse(readFileSync(join(__dirname, '..', '..', 'local.settings.example.json'), 'utf8')) as { Values: Record<string, string> };
    const settingsPort = await getFreePort();
    project = copyProjectForStart({ ...example, Values: { ...example.Values, AZURE_OPENAI_ENDPOINT: `http://127.0.0.1:${settingsPort}` } });
    const { env, ports } = await freeStackPorts();

    stack = await startLikeNpmStart({
      projectRoot: project.root,
      env: { ...env, LOCAL_STATE_DIR: join(project.root, '.azurite'), LOCAL_FUNCTION_KEY: FUNCTION_KEY, AZURITE_DATA: 'memory' },
    });
    const apiUrl = /ready on (\S+)/.exec(stack.output())?.[1] ?? '';
    const response = await fetch(`${apiUrl}/images/generations`, { method: 'POST', headers: { 'x-functions-key': FUNCTION_KEY, 'content-type': 'application/json' }, body: '{"prompt":"a fox"}' });

    expect(stack.output()).toContain(`emulator on http://127.0.0.1:${ports.emulator}`);
    expect(stack.output()).toMatch(/EMULATOR_PORT.*local\.settings\.json/);
    expect(response.status).toBe(200);
  });

  it('says why EMULATOR_PORT is ignored when AZURE_OPENAI_ENDPOINT names a real resource', async () => {
    const { env } = await freeStackPorts();
    const stateDir = mkdtempSync(join(tmpdir(), 'npm-start-state-'));
    project = { root: stateDir, remove: () => rmSync(stateDir, { recursive: true, force: true }) };

    stack = await startLikeNpmStart({
      env: { ...env, LOCAL_STATE_DIR: stateDir, AZURITE_DATA: 'memory', AZURE_OPENAI_ENDPOINT: 'https://example.openai.azure.com', AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1.5' },
    });

    expect(stack.output()).toMatch(/EMULATOR_PORT=\d+ is ignored: AZURE_OPENAI_ENDPOINT/);
    expect(stack.output()).not.toContain('emulator on');
  });
});
