import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isDevelopmentStorage } from '../../local-host/azurite';
import { redactSecrets } from '../../local-host/log';
import { emulatorAppSettings, mergeSettings, readLocalSettings } from '../../local-host/settings';

describe('local settings', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'local-settings-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads Values and Host.LocalHttpPort like func start', () => {
    writeFileSync(join(dir, 'local.settings.json'), JSON.stringify({ IsEncrypted: false, Values: { A: 'x', N: 3 }, Host: { LocalHttpPort: 7072 } }));

    expect(readLocalSettings(dir)).toEqual({ path: join(dir, 'local.settings.json'), values: { A: 'x', N: '3' }, localHttpPort: 7072 });
  });

  it('is optional', () => {
    expect(readLocalSettings(dir)).toBeUndefined();
  });

  it('refuses an encrypted file and non-string values with the file name in the message', () => {
    writeFileSync(join(dir, 'local.settings.json'), JSON.stringify({ IsEncrypted: true, Values: {} }));
    expect(() => readLocalSettings(dir)).toThrow(/local\.settings\.json is encrypted/);

    writeFileSync(join(dir, 'local.settings.json'), JSON.stringify({ Values: { A: { nested: true } } }));
    expect(() => readLocalSettings(dir)).toThrow(/"Values\.A" must be a string/);
  });

  it('lets later layers win: defaults < local.settings.json < environment', () => {
    const merged = mergeSettings(emulatorAppSettings('http://127.0.0.1:8089'), { AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-1' }, { AZURE_OPENAI_API_KEY: 'env-key', UNSET: undefined });

    expect(merged).toMatchObject({
      AZURE_OPENAI_ENDPOINT: 'http://127.0.0.1:8089',
      AZURE_OPENAI_AUTH: 'key',
      AZURE_OPENAI_API_KEY: 'env-key',
      AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-1',
    });
    expect(merged).not.toHaveProperty('UNSET');
  });
});

describe('isDevelopmentStorage', () => {
  it.each([
    ['UseDevelopmentStorage=true', true],
    ['DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;', true],
    ['DefaultEndpointsProtocol=https;AccountName=prodimages;AccountKey=k;EndpointSuffix=core.windows.net', false],
  ])('%s → %s', (connectionString, expected) => {
    expect(isDevelopmentStorage(connectionString)).toBe(expected);
  });
});

describe('redactSecrets', () => {
  it('hides function keys, SAS signatures and account keys, and nothing else', () => {
    const line = 'GET /api/x?code=abc123&size=1 url=https://a.blob.core.windows.net/c/b.png?sv=1&sig=s%2Bg%3D&se=2 AccountKey=Zm9v==;BlobEndpoint=http://h';

    expect(redactSecrets(line)).toBe('GET /api/x?code=REDACTED&size=1 url=https://a.blob.core.windows.net/c/b.png?sv=1&sig=REDACTED&se=2 AccountKey=REDACTED;BlobEndpoint=http://h');
  });
});
