import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { createServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';

import { inputPng } from '../e2e/edits-fixtures';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { deliverInboxEvent } from '../helpers/blob-events';
import { readJsonBlob } from '../helpers/blobs';

// The attack classes that held in the attack run, replayed so that a regression fails CI: wrong
// keys and tokens, tampered SAS links, every form of URL as an image source (SSRF), traversal in blob
// references, ticket names and upload file names, oversized and deeply nested bodies, and secrets in
// the log. Each drives the app over HTTP against Azurite and the emulator.

interface ErrorBody {
  error: { code: string; message: string; target?: string };
}

const MAX_EDIT_BODY_BYTES = 256 * 1024;

describe('attacks that must keep failing', () => {
  const storage = BlobServiceClient.fromConnectionString(testStorageConnectionString());
  const names = {
    IMAGES_CONTAINER: uniqueContainerName('sec-held-images'),
    INBOX_CONTAINER: uniqueContainerName('sec-held-inbox'),
    OUTPUTS_CONTAINER: uniqueContainerName('sec-held-outputs'),
    JOBS_CONTAINER: uniqueContainerName('sec-held-jobs'),
  };
  let stack: AppStack | undefined;
  let api: string;
  let key: string;
  let jobs: ContainerClient;
  // An "internal" service an SSRF would reach: it counts every request it gets.
  let internal: Server;
  let internalHits = 0;
  let internalUrl: string;
  /** Every secret the app handed out or holds during this file: none may reach its log. */
  const secrets = new Set<string>();

  beforeAll(async () => {
    internal = createServer((_request, response) => {
      internalHits++;
      response.end('secret metadata');
    });
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
    internalUrl = `http://127.0.0.1:${(internal.address() as AddressInfo).port}`;
    stack = await startAppStack({
      settings: { ...names, MAX_EDIT_BODY_BYTES: String(MAX_EDIT_BODY_BYTES), AZURE_OPENAI_MAX_RETRIES: '0' },
      host: { blobTriggers: 'webhook' },
    });
    api = `${stack.host.url}/api`;
    key = stack.host.functionKey;
    secrets.add(key);
    jobs = storage.getContainerClient(names.JOBS_CONTAINER);
  });

  afterAll(async () => {
    await stack?.close();
    await new Promise((resolve) => internal.close(resolve));
  });

  beforeEach(() => {
    stack?.emulator.reset();
    internalHits = 0;
  });

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${api}${path}`, { method: 'POST', headers: { 'x-functions-key': key, 'content-type': 'application/json', ...headers }, body });
  const errorOf = async (response: Response) => ((await response.json()) as ErrorBody).error;

  describe('keys and tokens', () => {
    it.each([
      ['no key', {}, ''],
      ['a wrong key', { 'x-functions-key': 'wrong' }, ''],
      ['a wrong key in the query', {}, '?code=wrong'],
      ['an empty key', { 'x-functions-key': '' }, ''],
    ])('refuses %s with 401 and calls nothing', async (_label, headers, query) => {
      const response = await fetch(`${api}/images/generations${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ prompt: 'x' }),
      });
      expect(response.status).toBe(401);
      expect(stack?.emulator.requests).toHaveLength(0);
    });

    it('refuses the blob webhook without the key', async () => {
      const response = await fetch(`${stack?.host.url ?? ''}/runtime/webhooks/blobs?functionName=Host.Functions.inbox-edit&code=wrong`, {
        method: 'POST',
        headers: { 'aeg-event-type': 'Notification' },
        body: '[]',
      });
      expect(response.status).toBe(401);
    });

    it("answers a wrong, missing or another job's token exactly like a missing job", async () => {
      const first = (await (await post('/images/generations?async=true', JSON.stringify({ prompt: 'one' }))).json()) as { id: string; statusUrl: string };
      const second = (await (await post('/images/generations?async=true', JSON.stringify({ prompt: 'two' }))).json()) as { statusUrl: string };
      const otherToken = new URL(second.statusUrl).searchParams.get('token') ?? '';
      secrets.add(new URL(first.statusUrl).searchParams.get('token') ?? '').add(otherToken);

      const answers = await Promise.all(
        [`?token=${otherToken}`, '?token=', '', `?token=${'A'.repeat(32)}`].map(async (query) => {
          const response = await fetch(`${api}/jobs/${first.id}${query}`);
          return [response.status, (await errorOf(response)).code];
        }),
      );
      const missing = await fetch(`${api}/jobs/00000000-0000-0000-0000-000000000000?token=${otherToken}`);
      expect(answers).toEqual(Array.from({ length: 4 }, () => [404, 'JobNotFound']));
      expect([missing.status, (await errorOf(missing)).code]).toEqual([404, 'JobNotFound']);
    });
  });

  describe('SAS links', () => {
    let link: URL;

    beforeAll(async () => {
      const generated = (await (await post('/images/generations', JSON.stringify({ prompt: 'a signed picture', quality: 'low' }))).json()) as { data: { url: string }[] };
      link = new URL(generated.data[0]?.url ?? '');
      secrets.add(link.searchParams.get('sig') ?? '');
    });

    const tampered = (change: (url: URL) => void): string => {
      const url = new URL(link);
      change(url);
      return url.toString();
    };

    it('are read-only, for one blob, until they expire', async () => {
      expect(link.searchParams.get('sp')).toBe('r');
      const lifetime = Date.parse(link.searchParams.get('se') ?? '') - Date.now();
      expect(lifetime).toBeGreaterThan(0);
      expect(lifetime).toBeLessThanOrEqual(24 * 3_600_000);
      expect((await fetch(link)).status).toBe(200);
    });

    it.each([
      ['a changed signature', (url: URL) => url.searchParams.set('sig', `${(url.searchParams.get('sig') ?? '').slice(0, -4)}AAA=`)],
      ['a later expiry', (url: URL) => url.searchParams.set('se', new Date(Date.now() + 365 * 24 * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z'))],
      ['more permissions', (url: URL) => url.searchParams.set('sp', 'rwd')],
      ['another blob of the same job', (url: URL) => (url.pathname = url.pathname.replace(/\/[^/]+$/, '/request.json'))],
      ['another container', (url: URL) => (url.pathname = url.pathname.replace(names.IMAGES_CONTAINER, names.JOBS_CONTAINER))],
    ])('refuse %s with 403', async (_label, change) => {
      expect((await fetch(tampered(change))).status).toBe(403);
    });

    it('refuse writes and deletes', async () => {
      const write = await fetch(link, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'overwritten' });
      const remove = await fetch(link, { method: 'DELETE' });
      expect([write.status, remove.status]).toEqual([403, 403]);
      expect((await fetch(link)).status).toBe(200);
    });
  });

  describe('image sources that would make the app fetch something (SSRF)', () => {
    // INTERNAL stands for the internal service's host:port, known once it listens.
    it.each([
      'http://INTERNAL/latest/meta-data/',
      'http://169.254.169.254/metadata/instance?api-version=2021-02-01',
      'HTTPS://INTERNAL/x.png',
      'file:///etc/passwd',
      'ftp://INTERNAL/x.png',
      '//INTERNAL/x.png',
      'data:text/uri-list,http://INTERNAL/x.png',
      { url: 'http://INTERNAL/x.png' },
      { image_url: 'http://INTERNAL/x.png' },
      { image_url: { url: 'http://INTERNAL/x.png' } },
      { blob: 'http://INTERNAL/x.png' },
      { blob: 'images/http://INTERNAL/x.png' },
      { $content: 'http://INTERNAL/x.png' },
    ])('refuses %j with 400 and fetches nothing', async (source) => {
      const body = JSON.stringify({ prompt: 'x', images: [source] }).replaceAll('INTERNAL', new URL(internalUrl).host);
      const response = await post('/images/edits', body);
      expect(response.status).toBe(400);
      expect(internalHits).toBe(0);
      expect(stack?.emulator.requests).toHaveLength(0);
    });

    it('refuses a URL sent as a multipart image field', async () => {
      const form = new FormData();
      form.set('prompt', 'x');
      form.set('image', `${internalUrl}/x.png`);
      const response = await fetch(`${api}/images/edits`, { method: 'POST', headers: { 'x-functions-key': key }, body: form });
      expect(response.status).toBe(400);
      expect(internalHits).toBe(0);
    });
  });

  describe('traversal in blob names', () => {
    beforeAll(async () => {
      await jobs.getBlockBlobClient('secret/probe.png').upload(inputPng, inputPng.length);
    });

    it.each([
      `inbox/../${names.JOBS_CONTAINER}/secret/probe.png`,
      `images/../../${names.JOBS_CONTAINER}/secret/probe.png`,
      'inbox/a/../../x.png',
      'inbox/./x.png',
      'inbox//x.png',
      'inbox/a\\..\\..\\x.png',
      'inbox/x.png.',
      `jobs/secret/probe.png`,
      `${names.JOBS_CONTAINER}/secret/probe.png`,
      '../jobs/secret/probe.png',
    ])('refuses the reference %j', async (blob) => {
      const response = await post('/images/edits', JSON.stringify({ prompt: 'x', images: [{ blob }] }));
      expect(response.status).toBe(400);
      expect(await errorOf(response)).toMatchObject({ code: 'InvalidBlobReference', target: 'images[0].blob' });
      expect(stack?.emulator.requests).toHaveLength(0);
    });

    it('reads a percent-encoded dot segment as the literal name it is', async () => {
      const response = await post('/images/edits', JSON.stringify({ prompt: 'x', images: [{ blob: `inbox/%2e%2e/${names.JOBS_CONTAINER}/secret/probe.png` }] }));
      expect(response.status).toBe(400);
      expect((await errorOf(response)).code).toBe('InputBlobNotFound');
    });

    it('refuses a ticket whose images climb out of the inbox, reading nothing', async () => {
      const inbox = storage.getContainerClient(names.INBOX_CONTAINER);
      const ticket = JSON.stringify({ prompt: 'x', images: [`../../${names.JOBS_CONTAINER}/secret/probe.png`], mask: '/../secret.png' });
      const etag = (await inbox.getBlockBlobClient('batch/ticket.json').upload(ticket, ticket.length)).etag ?? '';
      if (!stack) throw new Error('no stack');
      expect((await deliverInboxEvent(stack.host, inbox.getBlobClient('batch/ticket.json').url)).status).toBe(202);

      const outputs = storage.getContainerClient(names.OUTPUTS_CONTAINER);
      const manifest = await readJsonBlob<{ status: string; error: { code: string; target: string } }>(
        outputs.getBlobClient(`batch/ticket.json/${etag.replace(/[^A-Za-z0-9]/g, '')}/manifest.json`),
      );
      expect(manifest).toMatchObject({ status: 'failed', error: { code: 'InvalidBlobName', target: 'images[0]' } });
      expect(stack?.emulator.requests).toHaveLength(0);
    });

    it("keeps an upload's file name from choosing where its bytes are stored", async () => {
      const form = new FormData();
      form.set('prompt', 'a file name that climbs');
      form.set('image', new Blob([inputPng], { type: 'image/png' }), '../../idempotency/forged.json');
      const response = await fetch(`${api}/images/edits?async=true`, { method: 'POST', headers: { 'x-functions-key': key }, body: form });
      expect(response.status).toBe(202);
      const { id } = (await response.json()) as { id: string };

      const stored: string[] = [];
      for await (const item of jobs.listBlobsFlat()) stored.push(item.name);
      expect(stored.filter((name) => name.includes(id))).toEqual([`inputs/${id}/0-forged.png`, `jobs/${id}.json`]);
      expect(stored.filter((name) => name.startsWith('idempotency/'))).toEqual([]);
    });
  });

  describe('bodies', () => {
    it('refuses a JSON body over the limit, by its declared length and as it streams', async () => {
      const big = JSON.stringify({ prompt: 'x'.repeat(2 * 1024 * 1024) });
      const declared = await post('/images/generations', big);
      const streamed = await fetch(`${api}/images/generations`, {
        method: 'POST',
        headers: { 'x-functions-key': key, 'content-type': 'application/json' },
        body: new Blob([big]).stream(),
        duplex: 'half',
      });
      expect([declared.status, streamed.status]).toEqual([413, 413]);
      expect(stack?.emulator.requests).toHaveLength(0);
    });

    it('refuses an edit over MAX_EDIT_BODY_BYTES', async () => {
      const form = new FormData();
      form.set('prompt', 'x');
      form.set('image', new Blob([Buffer.alloc(MAX_EDIT_BODY_BYTES + 1024, 1)], { type: 'image/png' }), 'big.png');
      const response = await fetch(`${api}/images/edits`, { method: 'POST', headers: { 'x-functions-key': key }, body: form });
      expect(response.status).toBe(413);
    });

    it('refuses deeply nested JSON with a 400 and keeps serving', async () => {
      const depth = 200_000;
      const nested = `{"prompt": ${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const broken = `{"prompt": ${'['.repeat(depth)}x`;
      const valid = await post('/images/generations', nested);
      const invalid = await post('/images/generations', broken);

      expect([valid.status, invalid.status]).toEqual([400, 400]);
      expect((await errorOf(valid)).target).toBe('prompt');
      expect((await errorOf(invalid)).message).toContain(`line 1, column ${depth + 12}`);
      expect((await fetch(`${api}/health`)).status).toBe(200);
    });
  });

  // Last: it reads the log of everything above.
  it('leaves no key, token or signature in the log', () => {
    const log = stack?.host.logs.join('\n') ?? '';
    expect(log.length).toBeGreaterThan(0);
    // The function key, two job tokens and a SAS signature at least.
    expect(secrets.size).toBeGreaterThanOrEqual(4);
    const leaked = [...secrets, 'emulator-key'].filter((secret) => secret !== '' && log.includes(secret));
    expect(leaked).toEqual([]);
  });
});
