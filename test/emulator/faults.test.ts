import { request } from 'undici';
import { z } from 'zod';

import type { EmulatorFault, RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { KEY, call, deploymentUrl, errorOf, generate, imagesOf, readPng } from './helpers';

const ok = { prompt: 'a quiet pond', quality: 'low' };

describe('emulator faults', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());
  beforeEach(() => emulator.reset());

  describe('queued faults', () => {
    it('answers 429 with retry-after headers and the Azure rate-limit body, once', async () => {
      emulator.enqueueFaults({ kind: 'status', status: 429, retryAfterSeconds: 2 });
      const throttled = await generate(emulator.url, ok);
      expect(throttled.status).toBe(429);
      expect(throttled.headers['retry-after']).toBe('2');
      expect(throttled.headers['retry-after-ms']).toBe('2000');
      expect(errorOf(throttled).code).toBe('429');
      expect(errorOf(throttled).message).toContain(
        'Requests to the Images_Generations Operation under Azure OpenAI API version 2025-04-01-preview have exceeded call rate limit',
      );
      expect(errorOf(throttled).message).toContain('Please retry after 2 seconds.');
      expect((await generate(emulator.url, ok)).status).toBe(200);
    });

    it('derives retry-after from retryAfterMs, and says one second when nothing was asked', async () => {
      emulator.enqueueFaults({ kind: 'status', status: 429, retryAfterMs: 1500 }, { kind: 'status', status: 429 });
      const precise = await generate(emulator.url, ok);
      const plain = await generate(emulator.url, ok);
      expect([precise.headers['retry-after'], precise.headers['retry-after-ms']]).toEqual(['2', '1500']);
      expect([plain.headers['retry-after'], plain.headers['retry-after-ms']]).toEqual(['1', '1000']);
    });

    it('answers the OpenAI rate-limit body on the OpenAI route', async () => {
      emulator.enqueueFaults({ kind: 'status', status: 429 });
      const result = await call(`${emulator.url}/v1/images/generations`, {
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-image-1', ...ok }),
      });
      expect(result.status).toBe(429);
      expect(errorOf(result)).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
    });

    it.each([
      [500, 'InternalServerError'],
      [502, 'BadGateway'],
      [503, 'ServiceUnavailable'],
      [408, 'Timeout'],
    ] as const)('answers %i with the Azure %s body', async (status, code) => {
      emulator.enqueueFaults({ kind: 'status', status });
      const result = await generate(emulator.url, ok);
      expect(result.status).toBe(status);
      expect(errorOf(result).code).toBe(code);
      expect(result.headers['retry-after']).toBeUndefined();
      expect(result.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('adds retry-after to a 503 when asked', async () => {
      emulator.enqueueFaults({ kind: 'status', status: 503, retryAfterSeconds: 5 });
      const result = await generate(emulator.url, ok);
      expect([result.status, result.headers['retry-after'], result.headers['retry-after-ms']]).toEqual([503, '5', '5000']);
    });

    it('answers 403 Forbidden', async () => {
      emulator.enqueueFaults({ kind: 'forbidden' });
      const result = await generate(emulator.url, ok);
      expect(result.status).toBe(403);
      expect(errorOf(result).code).toBe('Forbidden');
    });

    it('answers a scripted client error with exactly the body given, once', async () => {
      const error = { code: 'invalid_value', param: 'size', type: 'invalid_request_error', message: "Invalid value: 'x'.", extra: { kept: true } };
      emulator.enqueueFaults({ kind: 'error', status: 422, error });
      const result = await generate(emulator.url, ok);
      expect(result.status).toBe(422);
      expect(result.json).toEqual({ error });
      expect((await generate(emulator.url, ok)).status).toBe(200);
    });

    it('holds a timeout request until the client gives up, then serves the next one', async () => {
      emulator.enqueueFaults({ kind: 'timeout' });
      await expect(generateWithSignal(emulator.url, AbortSignal.timeout(200))).rejects.toThrow(/abort|timeout/i);
      expect(emulator.requests[0]?.status).toBe(0);
      expect((await generate(emulator.url, ok)).status).toBe(200);
    });

    it('resets the connection without a response', async () => {
      emulator.enqueueFaults({ kind: 'reset' });
      expect(await failureCode(generate(emulator.url, ok))).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
      expect((await generate(emulator.url, ok)).status).toBe(200);
    });

    it('truncates the 200 body: headers and part of the JSON arrive, then the socket closes', async () => {
      emulator.enqueueFaults({ kind: 'truncate' });
      const response = await request(deploymentUrl(emulator.url, 'gpt-image-1'), {
        method: 'POST',
        headers: { 'api-key': KEY, 'content-type': 'application/json' },
        body: JSON.stringify(ok),
      });
      expect(response.statusCode).toBe(200);
      const declared = Number(response.headers['content-length']);
      let received = '';
      await expect(
        (async () => {
          for await (const chunk of response.body) received += String(chunk);
        })(),
      ).rejects.toThrow();
      expect(received.startsWith('{"created":')).toBe(true);
      expect(received).toContain('"b64_json":"');
      expect(received.length).toBeGreaterThan(0);
      expect(received.length).toBeLessThan(declared);
    });

    it('sends a complete 200 whose JSON is broken', async () => {
      emulator.enqueueFaults({ kind: 'malformed' });
      const result = await generate(emulator.url, ok);
      expect(result.status).toBe(200);
      expect(result.text.startsWith('{"created":')).toBe(true);
      expect(result.json).toBeUndefined();
      expect(() => JSON.parse(result.text) as unknown).toThrow(SyntaxError);
    });

    const contentFilterBody = z.object({ created: z.number().optional(), error: z.object({ code: z.string(), message: z.string() }).loose() });

    it.each([
      ['input', 'Your task failed as a result of our safety system.'],
      ['output', 'Generated image was filtered as a result of our safety system.'],
    ] as const)('answers the Azure contentFilter body for the %s stage by default', async (stage, message) => {
      emulator.enqueueFaults({ kind: 'content-filter', stage });
      const result = await generate(emulator.url, ok);
      expect(result.status).toBe(400);
      const body = contentFilterBody.parse(result.json);
      expect(body.created).toEqual(expect.any(Number));
      expect(body.error).toEqual({ code: 'contentFilter', message });
    });

    it.each(['input', 'output'] as const)('answers moderation_blocked with moderation_stage %s', async (stage) => {
      emulator.enqueueFaults({ kind: 'content-filter', stage, style: 'moderation_blocked' });
      const result = await generate(emulator.url, ok);
      expect(result.status).toBe(400);
      const error = errorOf(result);
      expect(error).toMatchObject({ code: 'moderation_blocked', type: 'image_generation_user_error', param: '', moderation_details: { moderation_stage: stage } });
      expect(error.message).toContain(`include the request ID ${String(result.headers['x-request-id'])}`);
    });

    it.each(['input', 'output'] as const)('answers the DALL-E content_policy_violation body for the %s stage', async (stage) => {
      emulator.enqueueFaults({ kind: 'content-filter', stage, style: 'content_policy_violation' });
      const result = await generate(emulator.url, ok);
      expect(result.status).toBe(400);
      const error = errorOf(result);
      expect(error).toMatchObject({ code: 'content_policy_violation', type: 'invalid_request_error', inner_error: { code: 'ResponsibleAIPolicyViolation' } });
      expect(JSON.stringify(error)).toContain(stage === 'output' ? 'revised_prompt' : 'jailbreak');
    });

    it('chooses the style a real deployment would: OpenAI moderation_blocked, DALL-E content_policy_violation', async () => {
      emulator.enqueueFaults({ kind: 'content-filter', stage: 'input' }, { kind: 'content-filter', stage: 'input' });
      const openai = await call(`${emulator.url}/v1/images/generations`, {
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-image-1', ...ok }),
      });
      const dallE = await generate(emulator.url, { prompt: 'x' }, 'dall-e-3');
      expect(errorOf(openai)).toMatchObject({ code: 'moderation_blocked', param: null });
      expect(errorOf(dallE).code).toBe('content_policy_violation');
    });

    it('applies faults after auth and consumes them only when a request reaches them', async () => {
      emulator.enqueueFaults({ kind: 'status', status: 500 });
      const refused = await generate(emulator.url, ok, 'gpt-image-1', { 'api-key': 'wrong' });
      const faulted = await generate(emulator.url, ok);
      expect([refused.status, faulted.status]).toEqual([401, 500]);
    });

    it('runs validation before a queued content filter', async () => {
      emulator.enqueueFaults({ kind: 'content-filter', stage: 'input' });
      const result = await generate(emulator.url, { prompt: 'x', size: 'huge' });
      expect(errorOf(result).param).toBe('size');
    });

    it('refuses malformed faults from in-process callers', () => {
      const bad: unknown = { kind: 'status', status: 404 };
      expect(() => emulator.enqueueFaults(bad as EmulatorFault)).toThrow();
    });
  });

  describe('prompt directives', () => {
    it('fails every attempt while the prompt says [emulator:429], with its retry-after', async () => {
      const body = { prompt: 'a pond [emulator:429:retry-after=2]', quality: 'low' };
      const first = await generate(emulator.url, body);
      const retry = await generate(emulator.url, body);
      for (const result of [first, retry]) {
        expect(result.status).toBe(429);
        expect([result.headers['retry-after'], result.headers['retry-after-ms']]).toEqual(['2', '2000']);
      }
      expect((await generate(emulator.url, { prompt: 'a pond [emulator:429]' })).headers['retry-after']).toBe('1');
    });

    it.each([
      ['[emulator:500]', 500],
      ['[emulator:503]', 503],
      ['[emulator:filter-input]', 400],
      ['[emulator:filter-output]', 400],
      ['[emulator:408]', 408],
      ['[emulator:forbidden]', 403],
      ['[emulator:malformed]', 200],
      ['[EMULATOR:Moderation-Input]', 400],
    ])('answers %s with %i', async (directive, status) => {
      const result = await generate(emulator.url, { prompt: `a pond ${directive}`, quality: 'low' });
      expect(result.status).toBe(status);
      if (directive.includes('malformed')) expect(result.json).toBeUndefined();
      if (directive.includes('Moderation')) expect(errorOf(result).code).toBe('moderation_blocked');
      if (directive.includes('filter')) {
        expect(errorOf(result).code).toBe('contentFilter');
        expect(errorOf(result).message).toContain(directive.includes('output') ? 'Generated image was filtered' : 'Your task failed');
      }
    });

    it('holds [emulator:timeout] and resets [emulator:reset]', async () => {
      await expect(
        call(deploymentUrl(emulator.url, 'gpt-image-1'), {
          headers: { 'api-key': KEY, 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: 'x [emulator:timeout]' }),
          signal: AbortSignal.timeout(200),
        }),
      ).rejects.toThrow(/abort|timeout/i);
      expect(await failureCode(generate(emulator.url, { prompt: 'x [emulator:reset]' }))).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    });

    it('delays a request by [emulator:slow=300] and still answers it', async () => {
      const started = Date.now();
      const result = await generate(emulator.url, { prompt: 'a pond [emulator:slow=300]', quality: 'low' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
      expect(result.status).toBe(200);
      expect(readPng(imagesOf(result)[0] ?? Buffer.alloc(0)).width).toBe(1024);
    });

    it('refuses an unknown directive with a message that lists the known ones', async () => {
      const result = await generate(emulator.url, { prompt: 'x [emulator:explode]' });
      expect(result.status).toBe(400);
      expect(errorOf(result).code).toBe('invalid_emulator_directive');
      expect(errorOf(result).message).toContain('filter-output');
    });

    it('takes the same words from the x-emulator-fault header', async () => {
      const unavailable = await generate(emulator.url, ok, 'gpt-image-1', { 'x-emulator-fault': '503' });
      const moderated = await generate(emulator.url, ok, 'gpt-image-1', { 'x-emulator-fault': 'filter-output:moderation_blocked' });
      const throttled = await generate(emulator.url, ok, 'gpt-image-1', { 'x-emulator-fault': '[emulator:429:retry-after-ms=250]' });
      expect(unavailable.status).toBe(503);
      expect(errorOf(moderated)).toMatchObject({ code: 'moderation_blocked', moderation_details: { moderation_stage: 'output' } });
      expect([throttled.status, throttled.headers['retry-after-ms'], throttled.headers['retry-after']]).toEqual([429, '250', '1']);
    });

    it('lets a queued fault win over directives, and directives apply again afterwards', async () => {
      emulator.enqueueFaults({ kind: 'forbidden' });
      const body = { prompt: 'x [emulator:500]' };
      expect((await generate(emulator.url, body)).status).toBe(403);
      expect((await generate(emulator.url, body)).status).toBe(500);
    });
  });

  describe('control plane', () => {
    const faultsUrl = (): string => `${emulator.url}/_emulator/faults`;

    it('queues faults posted as JSON and applies them in order', async () => {
      const posted = await call(faultsUrl(), {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ kind: 'status', status: 502 }, { kind: 'forbidden' }]),
      });
      expect(posted.status).toBe(200);
      expect(posted.json).toEqual({ queued: 2 });
      expect((await generate(emulator.url, ok)).status).toBe(502);
      expect((await generate(emulator.url, ok)).status).toBe(403);
      expect((await generate(emulator.url, ok)).status).toBe(200);
    });

    it('refuses faults that do not match the schema, naming the problem', async () => {
      const posted = await call(faultsUrl(), {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ kind: 'status', status: 418 }]),
      });
      expect(posted.status).toBe(400);
      expect(JSON.stringify(posted.json)).toContain('status');
      const notJson = await call(faultsUrl(), { body: 'nope' });
      expect(notJson.status).toBe(400);
      expect((await generate(emulator.url, ok)).status).toBe(200);
    });

    it('lists the API requests (not its own), and forgets them and queued faults on reset', async () => {
      await generate(emulator.url, ok);
      await call(`${emulator.url}/nowhere`);
      const listed = await call(`${emulator.url}/_emulator/requests`, { method: 'GET' });
      const records = z.array(z.object({ path: z.string(), operation: z.string(), status: z.number() }).loose()).parse(listed.json);
      expect(records.map((record) => [record.operation, record.status])).toEqual([
        ['generations', 200],
        ['unknown', 404],
      ]);

      emulator.enqueueFaults({ kind: 'forbidden' });
      expect((await call(`${emulator.url}/_emulator/reset`)).status).toBe(204);
      expect(emulator.requests).toHaveLength(0);
      expect((await generate(emulator.url, ok)).status).toBe(200);
    });

    it('answers a health check and 404 for unknown control paths', async () => {
      const health = await call(`${emulator.url}/_emulator/health`, { method: 'GET' });
      expect(health.status).toBe(200);
      expect(health.json).toMatchObject({ status: 'ok', deployments: { 'gpt-image-2': 'gpt-image-2' } });
      expect((await call(`${emulator.url}/_emulator/nothing`, { method: 'GET' })).status).toBe(404);
    });
  });

  it('closes while a timeout fault holds a request', async () => {
    const holding = await startEmulator();
    holding.enqueueFaults({ kind: 'timeout' });
    const pending = generate(holding.url, ok);
    await waitUntil(() => holding.requests.length === 1);
    await holding.close();
    await expect(pending).rejects.toThrow();
  });
});

function generateWithSignal(base: string, signal: AbortSignal): Promise<unknown> {
  return call(deploymentUrl(base, 'gpt-image-1'), {
    headers: { 'api-key': KEY, 'content-type': 'application/json' },
    body: JSON.stringify(ok),
    signal,
  });
}

/** The error code a failed call rejects with ('' when it did not fail). */
async function failureCode(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return '';
  } catch (error: unknown) {
    return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'no code';
  }
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
