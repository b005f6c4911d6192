import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';

import type * as FunctionsCore from '../../local-host/functions-core';
import type { RunningFunctionsHost } from '../../local-host/http-host';
import { startFunctionsHost } from '../../local-host/http-host';
import type { CapturedApp } from '../../local-host/registry';
import { captureFunctionApp } from '../../local-host/registry';

// jest has its own module registry, so the host's require hook cannot reach it: the recording core
// is installed as a virtual module instead (the factory must not touch this file's bindings).
jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

const FUNCTION_KEY = 'test-function-key';
const MAX_BODY = 64 * 1024;
const APP_STARTS = Symbol.for('test.local-host.echo-functions.app-starts');

let app: CapturedApp;
let host: RunningFunctionsHost;
const logs: string[] = [];

beforeAll(async () => {
  app = captureFunctionApp(() => jest.requireActual('./fixtures/echo-functions'));
  host = await startFunctionsHost({
    registrations: app.functions,
    hooks: app.hooks,
    functionKey: FUNCTION_KEY,
    maxRequestBodyBytes: MAX_BODY,
    log: (line) => logs.push(line),
  });
});

afterAll(async () => {
  await host?.close();
});

const api = (path: string): string => `${host.url}/api/${path}`;

interface Echo {
  method: string;
  url: string;
  params: Record<string, string>;
  query: Record<string, string>;
  tags: string[];
  contentType: string | null;
  custom: string | null;
  body: string;
  invocationId: string;
  functionName: string;
  triggerType: string;
}

describe('local HTTP host', () => {
  it('ran the appStart hook once before serving', () => {
    expect(Reflect.get(globalThis, APP_STARTS)).toBe(1);
  });

  it('passes route params, query, headers and a JSON body to the function with the key in x-functions-key', async () => {
    const response = await fetch(api('echo/42/more?size=1024x1024&tag=a&tag=b'), {
      method: 'POST',
      headers: { 'x-functions-key': FUNCTION_KEY, 'content-type': 'application/json', 'x-custom': 'yes' },
      body: JSON.stringify({ prompt: 'a fox' }),
    });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const echo = (await response.json()) as Echo;
    expect(echo).toMatchObject({
      method: 'POST',
      params: { id: '42', extra: 'more' },
      query: { size: '1024x1024' },
      tags: ['a', 'b'],
      contentType: 'application/json',
      custom: 'yes',
      body: '{"prompt":"a fox"}',
      functionName: 'echo',
      triggerType: 'httpTrigger',
    });
    expect(echo.url).toBe(api('echo/42/more?size=1024x1024&tag=a&tag=b'));
    expect(echo.invocationId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('leaves an optional route parameter out when the path omits it', async () => {
    const response = await fetch(api('echo/7'), { method: 'PUT', headers: { 'x-functions-key': FUNCTION_KEY }, body: 'x' });

    expect(response.status).toBe(200);
    expect(((await response.json()) as Echo).params).toEqual({ id: '7' });
  });

  it('accepts the function key as ?code=', async () => {
    const response = await fetch(api(`echo/1?code=${FUNCTION_KEY}`), { method: 'POST', body: 'hi' });

    expect(response.status).toBe(200);
    expect(((await response.json()) as Echo).body).toBe('hi');
  });

  it.each([
    ['no key', {}, ''],
    ['a wrong header key', { 'x-functions-key': 'nope' }, ''],
    ['a wrong ?code=', {}, '?code=nope'],
  ])('answers 401 with an empty body to %s', async (_case, headers: Record<string, string>, query) => {
    const response = await fetch(api(`echo/1${query}`), { method: 'POST', headers, body: 'hi' });

    expect(response.status).toBe(401);
    expect(await response.text()).toBe('');
  });

  it('round-trips a binary body and binary response without altering a byte', async () => {
    const sent = randomBytes(48 * 1024);

    const response = await fetch(api('binary'), { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: sent });

    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    expect(response.headers.get('x-length')).toBe(String(sent.byteLength));
    const received = Buffer.from(await response.arrayBuffer());
    expect(received.equals(Buffer.from(sent).reverse())).toBe(true);
  });

  it('streams a ReadableStream response body', async () => {
    const response = await fetch(api('stream/5'));

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain');
    expect(await response.text()).toBe('chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n');
  });

  it('serves anonymous routes without a key, with the function name as the default route', async () => {
    const get = await fetch(api('ping'));
    const post = await fetch(api('ping'), { method: 'POST', body: '' });

    expect([get.status, await get.text()]).toEqual([200, 'pong']);
    expect([post.status, await post.text()]).toEqual([200, 'pong']);
  });

  it('prefers a literal route segment over a parameter', async () => {
    const special = await fetch(api('items/special'));
    const other = await fetch(api('items/other'));

    expect(await special.text()).toBe('special');
    expect(await other.json()).toEqual({ id: 'other' });
  });

  it('answers 405 with Allow listing the methods of every function on that route', async () => {
    const response = await fetch(api('items/1'), { method: 'PATCH', body: '' });

    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('DELETE, GET');
    expect(await response.json()).toMatchObject({ error: { code: 'MethodNotAllowed' } });
  });

  it.each(['api/nowhere', 'api/stream/not-a-number', 'elsewhere'])('answers 404 JSON for /%s', async (path) => {
    const response = await fetch(`${host.url}/${path}`);

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'NotFound', message: expect.stringContaining('No function') as unknown } });
  });

  it('answers 413 when content-length is over the cap, before the function runs', async () => {
    const before = logs.filter((line) => line.includes('echoing')).length;

    const response = await fetch(api('echo/1'), { method: 'POST', headers: { 'x-functions-key': FUNCTION_KEY }, body: randomBytes(MAX_BODY + 1) });

    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'RequestEntityTooLarge' } });
    expect(logs.filter((line) => line.includes('echoing'))).toHaveLength(before);
  });

  it('answers 413 when a chunked body grows over the cap', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(api('binary'), { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = randomBytes(16 * 1024);
      for (let written = 0; written <= MAX_BODY; written += chunk.byteLength) req.write(chunk);
      req.end();
    });

    expect(status).toBe(413);
  });

  it('answers 500 with the invocation id when the function throws, and logs the failure once', async () => {
    const response = await fetch(api('boom'));

    expect(response.status).toBe(500);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('InternalError');
    const invocationId = /invocation ([0-9a-f-]{36})/.exec(body.error.message)?.[1];
    expect(invocationId).toBeDefined();
    const failures = logs.filter((line) => line.includes(`invocation ${invocationId ?? '?'} failed`));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain('kaboom');
  });

  it('writes every cookie of the response as its own set-cookie header', async () => {
    const response = await fetch(api('cookies'));

    expect(response.headers.getSetCookie()).toEqual(['a=1; Path=/; HttpOnly', 'b=2; SameSite=Lax']);
    expect(await response.text()).toBe('with cookies');
  });

  it('prefixes function logs with the function name and never logs a key, a SAS signature or an account key', async () => {
    await fetch(api('logs'));
    await fetch(api(`echo/1?code=${FUNCTION_KEY}`), { method: 'POST', body: 'x' });

    const text = logs.join('\n');
    expect(text).toContain('[logs] warning: download at https://acct.blob.core.windows.net/images/a.png?sv=2025-11-05&sp=r&sig=REDACTED&se=x');
    expect(text).toContain('AccountKey=REDACTED');
    expect(text).toMatch(/POST \/api\/echo\/1\?code=REDACTED 200 \d+ms echo invocation=[0-9a-f-]{36}/);
    expect(text).not.toContain(FUNCTION_KEY);
    expect(text).not.toContain('SECRETSIGNATURE');
    expect(text).not.toContain('SECRETACCOUNTKEY');
  });
});

describe('local HTTP host lifecycle', () => {
  it('refuses connections after close()', async () => {
    const other = await startFunctionsHost({ registrations: app.functions, log: () => undefined });
    const response = await fetch(`${other.url}/api/ping`);
    expect(response.status).toBe(200);
    await response.text();

    await other.close();

    await expect(fetch(`${other.url}/api/ping`)).rejects.toThrow();
  });

  it('generates a function key when none is given', async () => {
    const other = await startFunctionsHost({ registrations: app.functions, log: () => undefined });
    try {
      expect(other.functionKey.length).toBeGreaterThanOrEqual(20);
      const response = await fetch(`${other.url}/api/items/1`, { method: 'DELETE', headers: { 'x-functions-key': other.functionKey } });
      expect(response.status).toBe(204);
    } finally {
      await other.close();
    }
  });
});
