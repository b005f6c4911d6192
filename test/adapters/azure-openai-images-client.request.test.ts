import type { AccessToken, TokenCredential } from '@azure/identity';
import { MockAgent } from 'undici';

import { AzureOpenAIImagesClient, retryAfterInMs } from '../../src/adapters/azure-openai-images-client';
import type { ImageByteWriter } from '../../src/domain/ports';
import { makePng } from '../helpers/images';

const endpoint = 'https://res.openai.azure.com';
const image = makePng(4, 4);
const okBody = JSON.stringify({ created: 1, data: [{ b64_json: image.toString('base64') }] });

function collectingSink() {
  const received: Buffer[] = [];
  const writer: ImageByteWriter = {
    write: (chunk) => {
      received.push(Buffer.from(chunk));
      return Promise.resolve();
    },
    end: () => Promise.resolve(),
  };
  return { received, sink: { openImage: () => writer } };
}

class StaticTokenCredential implements TokenCredential {
  readonly scopes: (string | string[])[] = [];
  getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(scopes);
    return Promise.resolve({ token: 'entra-token', expiresOnTimestamp: Date.now() + 3_600_000 });
  }
}

describe('AzureOpenAIImagesClient request shape', () => {
  let agent: MockAgent;
  beforeEach(() => {
    agent = new MockAgent();
    agent.disableNetConnect();
  });
  afterEach(async () => {
    agent.assertNoPendingInterceptors();
    await agent.close();
  });

  it('calls the deployment path with api-version and the api-key header, and never sends response_format to gpt-image', async () => {
    let sentBody: unknown;
    agent
      .get(endpoint)
      .intercept({
        path: '/openai/deployments/img%2015/images/generations?api-version=2025-04-01-preview',
        method: 'POST',
        headers: { 'api-key': 'secret-key', 'content-type': 'application/json', 'x-ms-client-request-id': 'req-1' },
        body: (body) => {
          sentBody = JSON.parse(body) as unknown;
          return true;
        },
      })
      .reply(200, okBody);
    const client = new AzureOpenAIImagesClient({ endpoint, apiFlavor: 'deployment', apiVersion: '2025-04-01-preview', auth: { mode: 'key', apiKey: 'secret-key' }, timeoutInMs: 5_000, maxRetries: 0, dispatcher: agent });
    const { received, sink } = collectingSink();

    await client.generateImages({ model: 'gpt-image-1.5', deployment: 'img 15', prompt: 'a fox', n: 1, size: '1024x1024' }, sink, { requestId: 'req-1' });

    expect(Buffer.concat(received)).toEqual(image);
    expect(sentBody).toEqual({ prompt: 'a fox', n: 1, model: 'gpt-image-1.5', size: '1024x1024' });
  });

  it('calls the v1 path with the deployment as model and an Entra ID bearer token for the Cognitive Services scope', async () => {
    let sentBody: unknown;
    agent
      .get(endpoint)
      .intercept({
        path: '/openai/v1/images/generations',
        method: 'POST',
        headers: { authorization: 'Bearer entra-token' },
        body: (body) => {
          sentBody = JSON.parse(body) as unknown;
          return true;
        },
      })
      .reply(200, okBody);
    const credential = new StaticTokenCredential();
    const client = new AzureOpenAIImagesClient({
      endpoint,
      apiFlavor: 'v1',
      apiVersion: 'ignored',
      auth: { mode: 'token', credential, scope: 'https://cognitiveservices.azure.com/.default' },
      timeoutInMs: 5_000,
      maxRetries: 0,
      dispatcher: agent,
    });

    await client.generateImages({ model: 'gpt-image-2', deployment: 'img2', prompt: 'a fox', n: 1 }, collectingSink().sink);

    expect(sentBody).toMatchObject({ model: 'img2' });
    expect(credential.scopes).toEqual(['https://cognitiveservices.azure.com/.default']);
  });

  it('asks dall-e-3 for base64 so that it never answers with a URL', async () => {
    let sentBody: unknown;
    agent
      .get(endpoint)
      .intercept({
        path: /images\/generations/,
        method: 'POST',
        body: (body) => {
          sentBody = JSON.parse(body) as unknown;
          return true;
        },
      })
      .reply(200, okBody);
    const client = new AzureOpenAIImagesClient({ endpoint, apiFlavor: 'deployment', apiVersion: 'v', auth: { mode: 'key', apiKey: 'k' }, timeoutInMs: 5_000, maxRetries: 0, dispatcher: agent });
    await client.generateImages({ model: 'dall-e-3', deployment: 'd3', prompt: 'a fox', n: 1, style: 'vivid' }, collectingSink().sink);
    expect(sentBody).toMatchObject({ response_format: 'b64_json', style: 'vivid' });
  });

  it('reports a credential failure as a configuration error without the token', async () => {
    const failing: TokenCredential = { getToken: () => Promise.reject(new Error('IMDS unreachable')) };
    const client = new AzureOpenAIImagesClient({
      endpoint,
      apiFlavor: 'deployment',
      apiVersion: 'v',
      auth: { mode: 'token', credential: failing, scope: 'https://cognitiveservices.azure.com/.default' },
      timeoutInMs: 5_000,
      maxRetries: 0,
      dispatcher: agent,
    });
    await expect(client.generateImages({ model: 'gpt-image-1', deployment: 'd', prompt: 'x', n: 1 }, collectingSink().sink)).rejects.toMatchObject({
      code: 'UpstreamAuthenticationFailed',
      status: 502,
    });
  });
});

describe('retryAfterInMs', () => {
  it('prefers retry-after-ms, then retry-after seconds, then an HTTP date', () => {
    expect(retryAfterInMs({ 'retry-after-ms': '1500', 'retry-after': '9' })).toBe(1500);
    expect(retryAfterInMs({ 'retry-after': '2' })).toBe(2000);
    expect(retryAfterInMs({ 'retry-after': new Date(10_000).toUTCString() }, 7_000)).toBe(3000);
    expect(retryAfterInMs({ 'retry-after': 'soon' })).toBeUndefined();
    expect(retryAfterInMs({})).toBeUndefined();
  });
});
