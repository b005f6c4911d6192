import { BlobServiceClient } from '@azure/storage-blob';
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import type { RunningEmulator } from '../../emulator/server';
import { costOf, DEFAULT_PRICE_TABLE, roundCost } from '../../src/domain/pricing';
import { tokensFromUsage } from '../../src/domain/usage';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { deliverInboxEvent } from '../helpers/blob-events';
import { readJsonBlob } from '../helpers/blobs';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { inputPng } from './edits-fixtures';

// Who spent what, through the local stack: callers from `user` and from sign-in headers, usage in
// Azurite's table service from the emulator's usage objects, budgets before spend, the report.

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

interface ImagesBody {
  id: string;
  usage: Record<string, unknown>;
  size: string;
  quality: string;
  data: unknown[];
}

interface Report {
  from: string;
  to: string;
  currency: string;
  totals: Record<string, number>;
  rows: (Record<string, number> & { day: string; caller: string; model: string })[];
}

const uniqueTable = () => `usage${randomBytes(6).toString('hex')}`;
const today = () => new Date().toISOString().slice(0, 10);

function generate(host: TestFunctionsHost, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${host.url}/api/images/generations`, {
    method: 'POST',
    headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ quality: 'low', size: '1024x1024', ...body }),
  });
}

async function report(host: TestFunctionsHost, query = '', key = host.masterKey): Promise<Report> {
  const response = await fetch(`${host.url}/api/usage?from=${today()}&to=${today()}${query}`, { headers: { 'x-functions-key': key } });
  expect(response.status).toBe(200);
  return (await response.json()) as Report;
}

/** What the price table makes of the usage objects the caller got: what the report must add up to. */
function expectedTotals(bodies: readonly ImagesBody[]) {
  const sum = { images: 0, textInputTokens: 0, imageInputTokens: 0, imageOutputTokens: 0, cost: 0 };
  for (const body of bodies) {
    const tokens = tokensFromUsage(body.usage);
    sum.images += body.data.length;
    sum.textInputTokens += tokens.textInput;
    sum.imageInputTokens += tokens.imageInput;
    sum.imageOutputTokens += tokens.imageOutput;
    sum.cost = roundCost(sum.cost + costOf('gpt-image-1.5', { tokens, images: body.data.length, size: body.size, quality: body.quality }, DEFAULT_PRICE_TABLE));
  }
  return { calls: bodies.length, ...sum };
}

/** RFC 4180, as a spreadsheet reads it: quoted fields may hold commas, quotes (doubled) and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        field += '"';
        index++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\r' && text[index + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      index++;
    } else field += char;
  }
  expect(quoted).toBe(false);
  expect(field).toBe('');
  return rows;
}

/** Sign-in headers as App Service Authentication sets them. */
function principalHeaders(name: string, roles: readonly string[] = []): Record<string, string> {
  const claims = [
    { typ: 'name', val: name },
    { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: '00000000-0000-0000-0000-00000000a11c' },
    ...roles.map((role) => ({ typ: 'roles', val: role })),
  ];
  return {
    'x-ms-client-principal': Buffer.from(JSON.stringify({ auth_typ: 'aad', name_typ: 'name', role_typ: 'roles', claims })).toString('base64'),
    'x-ms-client-principal-name': name,
    'x-ms-client-principal-id': '00000000-0000-0000-0000-00000000a11c',
    'x-ms-client-principal-idp': 'aad',
  };
}

describe('usage, cost and budgets with function keys (CALLER_AUTH=key)', () => {
  const inboxName = uniqueContainerName('usage-inbox');
  const outputsName = uniqueContainerName('usage-outputs');
  const storage = BlobServiceClient.fromConnectionString(testStorageConnectionString());
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;
  let emulator: RunningEmulator;

  beforeAll(async () => {
    stack = await startAppStack({
      settings: {
        USAGE_TABLE: uniqueTable(),
        // A queue of its own: on the run's shared default queue this worker would run (and meter)
        // the jobs other test files leave there.
        JOBS_QUEUE: uniqueContainerName('usage-jobs-q'),
        INBOX_CONTAINER: inboxName,
        OUTPUTS_CONTAINER: outputsName,
        AZURE_OPENAI_MAX_RETRIES: '0',
        BUDGETS: JSON.stringify([
          { caller: 'user:ben', daily: { images: 1 } },
          { caller: 'user:carol', daily: { images: 3 } },
          { caller: 'inbox:capped', daily: { images: 0 } },
        ]),
      },
      host: { runQueueTriggers: true, blobTriggers: 'webhook' },
    });
    ({ host, emulator } = stack);
  });

  afterAll(() => stack?.close());

  beforeEach(() => emulator.reset());

  it("charges each request to its caller, and the report's totals are the sum of the requests' usage", async () => {
    const bodies: ImagesBody[] = [];
    for (const body of [{ user: 'ana', n: 2 }, { user: 'ana' }, { user: 'ben' }, {}]) {
      const response = await generate(host, { prompt: 'a lighthouse at dusk', ...body });
      expect(response.status).toBe(200);
      bodies.push((await response.json()) as ImagesBody);
    }

    const all = await report(host);
    const byCaller = (caller: string) => all.rows.filter((row) => row.caller === caller);
    expect(byCaller('user:ana')).toEqual([expect.objectContaining({ day: today(), model: 'gpt-image-1.5', ...expectedTotals(bodies.slice(0, 2)) })]);
    expect(byCaller('user:ben')).toEqual([expect.objectContaining(expectedTotals(bodies.slice(2, 3)))]);
    expect(byCaller('unattributed')).toEqual([expect.objectContaining(expectedTotals(bodies.slice(3)))]);
    expect(all.currency).toBe('USD');
    // Every token the emulator reported is in the report, priced: nothing counted twice, nothing lost.
    const anaOnly = await report(host, '&caller=user:ana&groupBy=caller');
    expect(anaOnly.rows).toEqual([{ caller: 'user:ana', failedCalls: 0, textOutputTokens: 0, ...expectedTotals(bodies.slice(0, 2)) }]);
    expect(anaOnly.totals).toEqual(expect.objectContaining(expectedTotals(bodies.slice(0, 2))));
    expect(expectedTotals(bodies.slice(0, 2)).cost).toBeGreaterThan(0);
    // And one telemetry line per request, in the invocation's log (Application Insights in Azure).
    const events = host.logs.filter((line) => line.includes('ImageRequest {')).map((line) => JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>);
    expect(events.filter((event) => event['caller'] === 'user:ana')).toEqual([
      expect.objectContaining({ outcome: 'succeeded', model: 'gpt-image-1.5', images: 2, budget: 'none', throttled: false, upstreamLatencyInMs: expect.any(Number) as number }),
      expect.objectContaining({ outcome: 'succeeded', images: 1 }),
    ]);
  });

  it('refuses the request that would exceed a budget before the upstream is called, saying the limit, the spend and the reset', async () => {
    const response = await generate(host, { prompt: 'one more', user: 'ben' });

    expect(response.status).toBe(429);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe('BudgetExceeded');
    const tomorrow = new Date(`${today()}T00:00:00Z`);
    tomorrow.setUTCDate(tomorrow.getUTCDate() + 1);
    expect(body.error.details).toMatchObject({ caller: 'user:ben', period: 'day', unit: 'images', limit: 1, spent: 1, requested: 1, resetsAt: tomorrow.toISOString() });
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(response.headers.get('retry-after'))).toBeLessThanOrEqual(86_400);
    expect(emulator.requests).toHaveLength(0);
  });

  it('lets concurrent requests near a limit through only as far as the limit, counting those in flight', async () => {
    const responses = await Promise.all(Array.from({ length: 6 }, (_, index) => generate(host, { prompt: `tile ${index}`, user: 'carol' })));

    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
    expect(emulator.requests.filter((request) => (request.body as { user?: string }).user === 'carol')).toHaveLength(3);
    const carol = await report(host, '&caller=user:carol&groupBy=caller');
    expect(carol.totals).toMatchObject({ calls: 3, images: 3 });
  });

  it('attributes a job to its caller and counts it once, however often it is submitted and polled', async () => {
    const key = `dana-${randomBytes(4).toString('hex')}`;
    const first = await generate(host, { prompt: 'a job for dana', user: 'dana' }, { prefer: 'respond-async', 'idempotency-key': key });
    expect(first.status).toBe(202);
    const again = await generate(host, { prompt: 'a job for dana', user: 'dana' }, { prefer: 'respond-async', 'idempotency-key': key });
    expect([200, 202]).toContain(again.status);
    const location = first.headers.get('location') ?? '';
    let result: Response;
    for (let attempt = 0; ; attempt++) {
      result = await fetch(location);
      if (result.status !== 202 || attempt > 200) break;
      await sleep(100);
    }
    expect(result.status).toBe(200);
    const { id } = (await result.json()) as ImagesBody;
    // A replay after the end answers from the record, again without a call.
    expect((await generate(host, { prompt: 'a job for dana', user: 'dana' }, { 'idempotency-key': key })).status).toBe(200);

    expect(emulator.requests).toHaveLength(1);
    const dana = await report(host, '&caller=user:dana&groupBy=caller');
    expect(dana.totals).toMatchObject({ calls: 1, images: 1 });
    const record = await readJsonBlob<{ request: { caller: string } }>(
      storage.getContainerClient(process.env['IMAGES_CONTAINER'] ?? '').getBlobClient(`${id}/request.json`),
    );
    expect(record.request.caller).toBe('user:dana');
  });

  it("charges an inbox edit to its uploader's folder and counts it once when the event comes twice", async () => {
    const blob = storage.getContainerClient(inboxName).getBlockBlobClient('team-a/door.png');
    await blob.upload(inputPng, inputPng.length, { metadata: { prompt: 'paint the door red', quality: 'low' } });

    expect((await deliverInboxEvent(host, blob.url)).status).toBe(202);
    expect((await deliverInboxEvent(host, blob.url)).status).toBe(202);

    expect(emulator.requests).toHaveLength(1);
    const team = await report(host, '&caller=inbox:team-a&groupBy=caller,model');
    expect(team.rows).toEqual([expect.objectContaining({ caller: 'inbox:team-a', model: 'gpt-image-1.5', calls: 1, images: 1 })]);
    expect(team.totals['imageInputTokens']).toBeGreaterThan(0);
  });

  it('writes a failed manifest for an inbox edit over its budget, without calling the upstream', async () => {
    const blob = storage.getContainerClient(inboxName).getBlockBlobClient('capped/door.png');
    const { etag = '' } = await blob.upload(inputPng, inputPng.length, { metadata: { prompt: 'paint the door blue' } });

    expect((await deliverInboxEvent(host, blob.url)).status).toBe(202);

    const manifest = await readJsonBlob<{ status: string; error: { code: string; details: Record<string, unknown> } }>(
      storage.getContainerClient(outputsName).getBlobClient(`capped/door.png/${etag.replace(/[^A-Za-z0-9]/g, '')}/manifest.json`),
    );
    expect(manifest).toMatchObject({ status: 'failed', error: { code: 'BudgetExceeded', details: { caller: 'inbox:capped', limit: 0 } } });
    expect(emulator.requests).toHaveLength(0);
  });

  it('serves the report as CSV a spreadsheet reads back field for field, with formula-like names defused', async () => {
    for (const user of ['Smith, "J"', '=HYPERLINK("x")']) {
      expect((await generate(host, { prompt: 'a csv row', user })).status).toBe(200);
    }

    const response = await fetch(`${host.url}/api/usage?from=${today()}&to=${today()}&format=csv&groupBy=caller`, { headers: { 'x-functions-key': host.masterKey } });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const rows = parseCsv(await response.text());
    expect(rows[0]).toEqual(['caller', 'calls', 'failedCalls', 'images', 'textInputTokens', 'imageInputTokens', 'imageOutputTokens', 'textOutputTokens', 'cost', 'currency']);
    const json = await report(host, '&groupBy=caller');
    expect(rows.slice(1)).toHaveLength(json.rows.length);
    const smith = rows.find((row) => row[0] === 'user:Smith, "J"');
    expect(smith?.slice(1, 4)).toEqual(['1', '0', '1']);
    expect(rows.some((row) => row[0] === `'user:=HYPERLINK("x")`)).toBe(false);
    expect(rows.map((row) => row[0])).toContain('user:=HYPERLINK("x")');
    expect(rows.every((row) => row.length === rows[0]?.length)).toBe(true);
    expect(Number(smith?.[8])).toBe(json.rows.find((row) => row.caller === 'user:Smith, "J"')?.cost);
  });

  it('gives the report to the master key only', async () => {
    const withFunctionKey = await fetch(`${host.url}/api/usage`, { headers: { 'x-functions-key': host.functionKey } });
    expect(withFunctionKey.status).toBe(401);
    expect((await fetch(`${host.url}/api/usage`)).status).toBe(401);
  });

  it('refuses sign-in headers that nothing in front of the app vouches for, before any spend', async () => {
    const response = await generate(host, { prompt: 'who am I' }, principalHeaders('mallory@contoso.com'));

    expect(response.status).toBe(401);
    expect(((await response.json()) as ErrorBody).error.code).toBe('UntrustedPrincipalHeaders');
    expect(emulator.requests).toHaveLength(0);
  });
});

describe('usage when the usage table cannot be reached for a while', () => {
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;
  let proxy: TableProxy | undefined;

  beforeAll(async () => {
    // Blobs and queues as usual; tables through a proxy to Azurite's that refuses connections until told.
    const connectionString = testStorageConnectionString();
    proxy = await startTableProxy(new URL(/TableEndpoint=([^;]+)/.exec(connectionString)?.[1] ?? ''));
    stack = await startAppStack({
      settings: {
        ImagesStorage: connectionString.replace(/TableEndpoint=[^;]+/, `TableEndpoint=http://127.0.0.1:${proxy.port}/devstoreaccount1`),
        USAGE_TABLE: uniqueTable(),
        USAGE_QUEUE: uniqueContainerName('usage-retry-q'),
        JOBS_QUEUE: uniqueContainerName('usage-down-jobs-q'),
        BUDGETS: '[{"caller": "*", "daily": {"images": 100}}]',
      },
      host: { runQueueTriggers: true, queueTriggerSettings: { visibilityTimeoutInSeconds: 1 } },
    });
    ({ host } = stack);
  });

  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
  });

  it('still answers, and writes the usage once the table is back, once', async () => {
    proxy?.refuse(true);
    const response = await generate(host, { prompt: 'the table is down', user: 'erin' });

    expect(response.status).toBe(200);
    const { id } = (await response.json()) as ImagesBody;
    expect(host.logs.find((line) => line.includes('ImageRequest {'))).toContain('"budget":"unchecked"');
    expect(host.logs.some((line) => line.includes(`The usage of request ${id} goes to the retry queue`))).toBe(true);

    proxy?.refuse(false);
    const deadline = Date.now() + 60_000;
    let erin = await report(host, '&caller=user:erin&groupBy=caller');
    while (erin.totals['calls'] === 0 && Date.now() < deadline) {
      await sleep(250);
      erin = await report(host, '&caller=user:erin&groupBy=caller');
    }
    expect(erin.totals).toMatchObject({ calls: 1, images: 1 });
    expect(host.logs.some((line) => line.includes(`Usage of request ${id} written on retry`))).toBe(true);
    expect(host.logs.some((line) => line.includes('UsageNotRecorded'))).toBe(false);
  }, 90_000);
});

interface TableProxy {
  readonly port: number;
  /** While true, every connection is dropped at once, as by a table service that is down. */
  refuse(refusing: boolean): void;
  close(): Promise<void>;
}

/** A TCP proxy to Azurite's table service on a free loopback port, that can play a table service that is down. */
async function startTableProxy(target: URL): Promise<TableProxy> {
  let refusing = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    refuse(value) {
      refusing = value;
      // Kept-alive connections would otherwise carry on past the outage.
      if (value) for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('callers signed in through App Service Authentication (CALLER_AUTH=key+entra)', () => {
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;

  beforeAll(async () => {
    stack = await startAppStack({ settings: { USAGE_TABLE: uniqueTable(), CALLER_AUTH: 'key+entra' } });
    ({ host } = stack);
  });

  afterAll(() => stack?.close());

  it('charges the signed-in principal, whatever the user field says, and a key caller by user', async () => {
    expect((await generate(host, { prompt: 'signed in', user: 'someone-else' }, principalHeaders('alice@contoso.com'))).status).toBe(200);
    expect((await generate(host, { prompt: 'with the key only', user: 'bob' })).status).toBe(200);

    const rows = (await report(host, '&groupBy=caller')).rows.map((row) => [row.caller, row.calls]);
    expect(rows).toEqual([
      ['alice@contoso.com', 1],
      ['user:bob', 1],
    ]);
  });

  it('refuses a principal header that is not what App Service Authentication sends', async () => {
    const response = await generate(host, { prompt: 'forged' }, { 'x-ms-client-principal': 'not base64 json', 'x-ms-client-principal-name': 'eve' });

    expect(response.status).toBe(401);
    expect(((await response.json()) as ErrorBody).error.code).toBe('InvalidPrincipal');
  });
});

describe('sign-in required (CALLER_AUTH=entra)', () => {
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;

  beforeAll(async () => {
    stack = await startAppStack({ settings: { USAGE_TABLE: uniqueTable(), CALLER_AUTH: 'entra', BUDGETS: '[{"caller": "*@contoso.com", "shared": true, "daily": {"images": 1}}]' } });
    ({ host } = stack);
  });

  afterAll(() => stack?.close());

  const call = (headers: Record<string, string>) =>
    fetch(`${host.url}/api/images/generations`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"prompt": "no key", "quality": "low"}' });

  it('takes a signed-in caller without a key, and refuses one who is not signed in', async () => {
    expect((await call(principalHeaders('alice@contoso.com'))).status).toBe(200);

    const anonymous = await call({});
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as ErrorBody).error.code).toBe('SignInRequired');
  });

  it('asks the same of the other routes a function key used to open: the models, the subscriptions', async () => {
    expect((await fetch(`${host.url}/api/models`, { headers: principalHeaders('alice@contoso.com') })).status).toBe(200);

    const anonymous = await fetch(`${host.url}/api/models`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as ErrorBody).error.code).toBe('SignInRequired');
  });

  it('holds a shared budget across every caller its pattern matches', async () => {
    const response = await call(principalHeaders('bob@contoso.com'));

    expect(response.status).toBe(429);
    expect(((await response.json()) as ErrorBody).error.details).toMatchObject({ caller: 'bob@contoso.com', budget: '*@contoso.com', shared: true, spent: 1 });
  });

  it('gives the report to principals holding the admin role only', async () => {
    const admin = await fetch(`${host.url}/api/usage?groupBy=caller`, { headers: principalHeaders('carol@contoso.com', ['ImageGen.Admin']) });
    expect(admin.status).toBe(200);
    expect(((await admin.json()) as Report).rows.map((row) => row.caller)).toEqual(['alice@contoso.com']);

    const notAdmin = await fetch(`${host.url}/api/usage`, { headers: principalHeaders('alice@contoso.com') });
    expect(notAdmin.status).toBe(403);
    expect(((await notAdmin.json()) as ErrorBody).error.code).toBe('AdminRoleRequired');
  });
});
