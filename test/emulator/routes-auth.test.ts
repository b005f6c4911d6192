import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { API_VERSION, KEY, call, deploymentUrl, errorOf, generate, imagesOf, jwt, readPng } from './helpers';

const AZURE_KEY_401 =
  'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.';
const TOKEN_401 = {
  statusCode: 401,
  message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.',
};
const json = { 'content-type': 'application/json' };
const prompt = JSON.stringify({ prompt: 'a lighthouse at dusk', size: '1024x1024', quality: 'low' });

describe('emulator routes and auth', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator({ deployments: { 'gpt-image-1': 'gpt-image-1', img2: 'gpt-image-2', dalle: 'dall-e-3' } });
  });
  afterAll(() => emulator.close());
  beforeEach(() => emulator.reset());

  describe('route flavours', () => {
    it('answers the Azure deployment route with an api-key', async () => {
      const result = await call(deploymentUrl(emulator.url, 'gpt-image-1'), { headers: { 'api-key': KEY, ...json }, body: prompt });
      expect(result.status).toBe(200);
      const [image] = imagesOf(result);
      expect(readPng(image ?? Buffer.alloc(0))).toMatchObject({ width: 1024, height: 1024 });
    });

    it('answers the Azure v1 route with the deployment named in the body, by api-key or by key as bearer', async () => {
      const body = JSON.stringify({ model: 'img2', prompt: 'a lighthouse', size: '2048x1152' });
      const byKey = await call(`${emulator.url}/openai/v1/images/generations?api-version=preview`, { headers: { 'api-key': KEY, ...json }, body });
      const byBearer = await call(`${emulator.url}/openai/v1/images/generations`, { headers: { authorization: `Bearer ${KEY}`, ...json }, body });
      expect([byKey.status, byBearer.status]).toEqual([200, 200]);
      expect(readPng(imagesOf(byBearer)[0] ?? Buffer.alloc(0))).toMatchObject({ width: 2048, height: 1152 });
      expect(emulator.requests.map((record) => [record.deployment, record.model])).toEqual([
        ['img2', 'gpt-image-2'],
        ['img2', 'gpt-image-2'],
      ]);
    });

    it('answers the OpenAI route with a model id or a deployment name', async () => {
      const byModel = await call(`${emulator.url}/v1/images/generations`, {
        headers: { authorization: `Bearer ${KEY}`, ...json },
        body: JSON.stringify({ model: 'gpt-image-2', prompt: 'a lighthouse' }),
      });
      const byDeployment = await call(`${emulator.url}/v1/images/generations`, {
        headers: { authorization: `Bearer ${KEY}`, ...json },
        body: JSON.stringify({ model: 'img2', prompt: 'a lighthouse' }),
      });
      expect([byModel.status, byDeployment.status]).toEqual([200, 200]);
      expect(emulator.requests.map((record) => record.deployment)).toEqual(['img2', 'img2']);
    });

    it('returns the Azure 404 for unknown paths and methods', async () => {
      for (const [method, path] of [
        ['POST', '/openai/deployments/gpt-image-1/chat/completions?api-version=2024-10-21'],
        ['POST', '/images/generations'],
        ['GET', `/openai/deployments/gpt-image-1/images/generations?api-version=${API_VERSION}`],
      ] as const) {
        const result = await call(`${emulator.url}${path}`, { method, headers: { 'api-key': KEY } });
        expect(result.status).toBe(404);
        expect(result.json).toEqual({ error: { code: '404', message: 'Resource not found' } });
      }
    });

    it('returns the Azure 404 when the deployment route has no api-version', async () => {
      const result = await call(deploymentUrl(emulator.url, 'gpt-image-1', 'generations', null), { headers: { 'api-key': KEY, ...json }, body: prompt });
      expect(result.status).toBe(404);
      expect(result.json).toEqual({ error: { code: '404', message: 'Resource not found' } });
    });

    it('returns DeploymentNotFound for an unknown deployment on the dated and v1 routes', async () => {
      const dated = await call(deploymentUrl(emulator.url, 'nope'), { headers: { 'api-key': KEY, ...json }, body: prompt });
      const v1 = await call(`${emulator.url}/openai/v1/images/generations`, {
        headers: { 'api-key': KEY, ...json },
        body: JSON.stringify({ model: 'nope', prompt: 'x' }),
      });
      for (const result of [dated, v1]) {
        expect(result.status).toBe(404);
        expect(errorOf(result).code).toBe('DeploymentNotFound');
      }
    });

    it('returns model_not_found for an unknown model on the OpenAI route', async () => {
      const result = await call(`${emulator.url}/v1/images/generations`, {
        headers: { authorization: `Bearer ${KEY}`, ...json },
        body: JSON.stringify({ model: 'dall-e-2', prompt: 'x' }),
      });
      expect(result.status).toBe(404);
      expect(errorOf(result)).toMatchObject({ code: 'model_not_found', type: 'invalid_request_error' });
    });

    it('returns 400 missing_required_parameter when a v1 request names no model', async () => {
      const result = await call(`${emulator.url}/openai/v1/images/generations`, { headers: { 'api-key': KEY, ...json }, body: prompt });
      expect(result.status).toBe(400);
      expect(errorOf(result)).toMatchObject({ code: 'missing_required_parameter', param: 'model' });
    });

    it('returns 400 OperationNotSupported for edits on a DALL-E 3 deployment', async () => {
      const result = await call(deploymentUrl(emulator.url, 'dalle', 'edits'), {
        headers: { 'api-key': KEY, 'content-type': 'multipart/form-data; boundary=x' },
        body: '--x--\r\n',
      });
      expect(result.status).toBe(400);
      expect(errorOf(result).code).toBe('OperationNotSupported');
      expect(errorOf(result).message).toContain('imagesEdit operation does not work with the specified model, dall-e-3');
    });

    it('sends the Azure headers on successes and errors alike', async () => {
      const ok = await generate(emulator.url, { prompt: 'x', quality: 'low' }, 'gpt-image-1', { 'x-ms-client-request-id': 'client-1' });
      const missing = await call(`${emulator.url}/nowhere`);
      for (const result of [ok, missing]) {
        expect(result.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
        expect(result.headers['apim-request-id']).toMatch(/^[0-9a-f-]{36}$/);
        expect(result.headers['x-ms-region']).toBe('East US 2');
        expect(Number(result.headers['x-ratelimit-remaining-requests'])).toBeGreaterThan(0);
        expect(Number(result.headers['x-ratelimit-remaining-tokens'])).toBeGreaterThan(0);
        expect(result.headers['content-type']).toBe('application/json; charset=UTF-8');
      }
      expect(ok.headers['x-ms-client-request-id']).toBe('client-1');
    });
  });

  describe('auth', () => {
    const dated = (headers: Record<string, string>) => call(deploymentUrl(emulator.url, 'gpt-image-1'), { headers: { ...json, ...headers }, body: prompt });
    const v1 = (headers: Record<string, string>) =>
      call(`${emulator.url}/openai/v1/images/generations`, {
        headers: { ...json, ...headers },
        body: JSON.stringify({ model: 'gpt-image-1', prompt: 'x', quality: 'low' }),
      });

    it('returns the Azure key 401 without credentials or with a wrong api-key', async () => {
      for (const result of [await dated({}), await dated({ 'api-key': 'wrong' })]) {
        expect(result.status).toBe(401);
        expect(result.json).toEqual({ error: { code: '401', message: AZURE_KEY_401 } });
      }
    });

    it('refuses a key sent as bearer on the dated route with the token 401', async () => {
      const result = await dated({ authorization: `Bearer ${KEY}` });
      expect(result.status).toBe(401);
      expect(result.json).toEqual(TOKEN_401);
    });

    it('accepts Entra ID tokens for Cognitive Services (dated) and Azure AI (v1)', async () => {
      const future = Math.floor(Date.now() / 1000) + 3600;
      expect((await dated({ authorization: `Bearer ${jwt({ aud: 'https://cognitiveservices.azure.com', exp: future })}` })).status).toBe(200);
      expect((await v1({ authorization: `Bearer ${jwt({ aud: ['https://ai.azure.com'], exp: future })}` })).status).toBe(200);
      expect((await dated({ authorization: `Bearer ${jwt({ sub: 'no audience' })}` })).status).toBe(200);
    });

    it('returns the token 401 for a wrong audience or an expired token', async () => {
      const wrongAudience = await dated({ authorization: `Bearer ${jwt({ aud: 'https://storage.azure.com' })}` });
      const expired = await dated({ authorization: `Bearer ${jwt({ aud: 'https://cognitiveservices.azure.com', exp: 1000 })}` });
      for (const result of [wrongAudience, expired]) {
        expect(result.status).toBe(401);
        expect(result.json).toEqual(TOKEN_401);
      }
    });

    it('lets a wrong api-key fail even next to a good token', async () => {
      const result = await dated({ 'api-key': 'wrong', authorization: `Bearer ${jwt({ aud: 'https://cognitiveservices.azure.com' })}` });
      expect(result.status).toBe(401);
    });

    it('returns the OpenAI 401 bodies on the OpenAI route', async () => {
      const body = JSON.stringify({ model: 'gpt-image-1', prompt: 'x' });
      const wrong = await call(`${emulator.url}/v1/images/generations`, { headers: { authorization: 'Bearer sk-wrong-key-123456', ...json }, body });
      const none = await call(`${emulator.url}/v1/images/generations`, { headers: json, body });
      expect(wrong.status).toBe(401);
      expect(errorOf(wrong)).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error', param: null });
      expect(errorOf(wrong).message).not.toContain('sk-wrong-key-123456');
      expect(none.status).toBe(401);
      expect(errorOf(none)).toMatchObject({ code: null });
    });

    it('refuses tokens when acceptBearerTokens is false, and honours custom keys', async () => {
      const strict = await startEmulator({ apiKeys: ['k1', 'k2'], acceptBearerTokens: false });
      try {
        const url = deploymentUrl(strict.url, 'gpt-image-1');
        const token = await call(url, { headers: { ...json, authorization: `Bearer ${jwt({ aud: 'https://cognitiveservices.azure.com' })}` }, body: prompt });
        const second = await call(url, { headers: { ...json, 'api-key': 'k2' }, body: prompt });
        const defaultKey = await call(url, { headers: { ...json, 'api-key': KEY }, body: prompt });
        expect([token.status, second.status, defaultKey.status]).toEqual([401, 200, 401]);
      } finally {
        await strict.close();
      }
    });

    it('records each API request with its outcome, and no credential', async () => {
      const token = jwt({ aud: 'https://cognitiveservices.azure.com' });
      const ok = await dated({ authorization: `Bearer ${token}` });
      await dated({ 'api-key': 'wrong' });
      await call(`${emulator.url}/_emulator/health`, { method: 'GET' });
      const records = emulator.requests;
      expect(records).toHaveLength(2);
      expect(records[0]).toMatchObject({
        method: 'POST',
        path: `/openai/deployments/gpt-image-1/images/generations?api-version=${API_VERSION}`,
        deployment: 'gpt-image-1',
        model: 'gpt-image-1',
        operation: 'generations',
        status: 200,
        requestId: ok.headers['x-request-id'],
        body: { prompt: 'a lighthouse at dusk', size: '1024x1024', quality: 'low' },
      });
      expect(records[0]?.headers.authorization).toBe('Bearer [redacted]');
      expect(records[1]).toMatchObject({ status: 401, headers: { 'api-key': '[redacted]' } });
    });
  });
});
