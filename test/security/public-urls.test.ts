import { request } from 'node:http';

import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';

// Finding 3 of the attack run: `Location`, `Operation-Location`, `statusUrl` and the OpenAPI `host`
// were built from the request's Host header, so `Host: evil.example` sent the job's token to that host
// in the very links we hand out.

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http, because fetch will not send a Host header of our choosing. */
function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const call = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    call.on('error', reject);
    call.end(options.body);
  });
}

const SPOOFED = { host: 'evil.example', 'x-forwarded-host': 'evil-forwarded.example', 'x-forwarded-proto': 'http', forwarded: 'host=evil-forwarded.example' };

describe.each([
  ['a configured PUBLIC_BASE_URL', { PUBLIC_BASE_URL: 'https://images.contoso.example/' }, () => 'https://images.contoso.example'],
  ['the listening address by default', {}, (stack: AppStack) => stack.host.url],
])('absolute links with %s', (_label, settings, expectedBase) => {
  let stack: AppStack | undefined;
  let base: string;

  beforeAll(async () => {
    stack = await startAppStack({ settings });
    base = expectedBase(stack);
  });
  afterAll(() => stack?.close());

  it('ignore Host and X-Forwarded-* in Location, Operation-Location and statusUrl', async () => {
    const host = stack?.host;
    const accepted = await send(`${host?.url ?? ''}/api/images/generations?async=true`, {
      method: 'POST',
      headers: { ...SPOOFED, 'x-functions-key': host?.functionKey ?? '', 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a harbour' }),
    });

    expect(accepted.status).toBe(202);
    const { id, statusUrl, resultUrl } = JSON.parse(accepted.body) as { id: string; statusUrl: string; resultUrl: string };
    const expected = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/api/jobs/${id}\\?token=[A-Za-z0-9_-]+$`);
    expect(resultUrl).toMatch(expected);
    expect(statusUrl).toBe(resultUrl.replace('?', '/status?'));
    expect(accepted.headers['location']).toBe(resultUrl);
    expect(accepted.headers['operation-location']).toBe(resultUrl);

    const polled = await send(`${host?.url ?? ''}${new URL(resultUrl).pathname}${new URL(resultUrl).search}`, { headers: SPOOFED });
    expect(polled.status).toBe(202);
    expect(polled.headers['location']).toBe(resultUrl);
  });

  it('ignore Host in the OpenAPI document', async () => {
    const swagger = await send(`${stack?.host.url ?? ''}/api/swagger.json`, { headers: SPOOFED });
    const document = JSON.parse(swagger.body) as { host: string; basePath: string; schemes: string[] };
    const expected = new URL(base);
    expect(document).toMatchObject({ host: expected.host, basePath: '/api', schemes: [expected.protocol.replace(':', '')] });
  });
});
