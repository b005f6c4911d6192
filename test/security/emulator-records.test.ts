import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { appTestEnv, startTestFunctionsHost } from '../helpers/functions-host';

// Finding 5 of the attack run: the emulator's GET /_emulator/requests served the `api-key` header in
// plain text to anyone who could reach its port.

const API_KEY = 'emulator-key-7f3a9c1d2e4b6a8c0e1f3a5b7c9d1e3f';

/** A JWT-shaped token (the emulator does not check signatures). */
const jwt = [{ alg: 'RS256' }, { aud: 'https://cognitiveservices.azure.com', exp: Math.floor(Date.now() / 1000) + 3600 }]
  .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
  .concat('c2lnbmF0dXJlLW9mLWEtcmVhbC10b2tlbg')
  .join('.');

describe('the emulator records', () => {
  let emulator: RunningEmulator;
  let host: TestFunctionsHost | undefined;

  beforeAll(async () => {
    emulator = await startEmulator({ apiKeys: [API_KEY] });
    host = await startTestFunctionsHost({ env: appTestEnv({ emulatorUrl: emulator.url, apiKey: API_KEY }) });
  });
  afterAll(async () => {
    await host?.close();
    await emulator.close();
  });

  it('keep neither the api-key nor the Authorization header, in memory or over HTTP', async () => {
    const viaApp = await fetch(`${host?.url ?? ''}/api/images/generations`, {
      method: 'POST',
      headers: { 'x-functions-key': host?.functionKey ?? '', 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a lighthouse', quality: 'low' }),
    });
    expect(viaApp.status).toBe(200);
    for (const authorization of [`Bearer ${API_KEY}`, `Bearer ${jwt}`]) {
      const direct = await fetch(`${emulator.url}/openai/v1/images/generations`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-image-1', prompt: 'a lighthouse', quality: 'low' }),
      });
      expect(direct.status).toBe(200);
    }

    const served = await (await fetch(`${emulator.url}/_emulator/requests`)).text();
    const kept = JSON.stringify(emulator.requests);

    for (const text of [served, kept]) {
      expect(text).not.toContain(API_KEY);
      expect(text).not.toContain(jwt.split('.')[1]);
      expect(text).not.toContain('c2lnbmF0dXJl');
    }
    const records = JSON.parse(served) as { headers: Record<string, string> }[];
    expect(records.map((record) => [record.headers['api-key'], record.headers['authorization']])).toEqual([
      ['[redacted]', undefined],
      [undefined, 'Bearer [redacted]'],
      [undefined, 'Bearer [redacted]'],
    ]);
  });
});
