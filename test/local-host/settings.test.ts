import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isDevelopmentStorage } from '../../local-host/azurite';
import { redactSecrets } from '../../local-host/log';
import { emulatorAppSettings, mergeSettings, planEmulator, readLocalHostEnv, readLocalSettings } from '../../local-host/settings';

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

describe('the local host knobs', () => {
  it('reads the ports and the state folder, relative to the project', () => {
    const env = { EMULATOR_PORT: '9000', AZURITE_BLOB_PORT: '20000', AZURITE_TABLE_PORT: '20002', AZURITE_DATA: 'Memory', LOCAL_STATE_DIR: 'tmp/state' };

    expect(readLocalHostEnv(env, '/project')).toEqual({
      emulatorPort: 9000,
      azuritePorts: { blob: 20000, table: 20002 },
      azuriteInMemory: true,
      stateDir: join('/project', 'tmp/state'),
    });
    expect(readLocalHostEnv({}, '/project').stateDir).toBe(join('/project', '.azurite'));
  });

  it('lists every malformed port at once', () => {
    expect(() => readLocalHostEnv({ EMULATOR_PORT: 'x', AZURITE_QUEUE_PORT: '70000' }, '/p')).toThrow(/EMULATOR_PORT must be a port number.*AZURITE_QUEUE_PORT must be a port number/);
  });
});

describe('planEmulator', () => {
  const fromSettings = { url: 'http://127.0.0.1:8089', source: 'local.settings.json' } as const;
  const fromEnvironment = { url: 'http://127.0.0.1:8089', source: 'environment' } as const;
  const real = { url: 'https://res.openai.azure.com', source: 'local.settings.json' } as const;

  const noting = (pattern: RegExp): string => expect.stringMatching(pattern) as string;

  it.each([
    ['no endpoint', undefined, undefined, { kind: 'emulator' }],
    ['no endpoint, EMULATOR_PORT', undefined, 9000, { kind: 'emulator', port: 9000 }],
    ["local.settings.json's emulator address", fromSettings, undefined, { kind: 'emulator-at-endpoint', port: 8089 }],
    ['the same port both ways', fromSettings, 8089, { kind: 'emulator-at-endpoint', port: 8089 }],
    ["EMULATOR_PORT over local.settings.json's address", fromSettings, 9000, { kind: 'emulator', port: 9000, note: noting(/EMULATOR_PORT=9000 overrides/) }],
    ['an address in the environment over EMULATOR_PORT', fromEnvironment, 9000, { kind: 'emulator-at-endpoint', port: 8089, note: noting(/EMULATOR_PORT=9000 is ignored/) }],
    ['a real resource', real, undefined, { kind: 'endpoint' }],
    ['a real resource and EMULATOR_PORT', real, 9000, { kind: 'endpoint', note: noting(/EMULATOR_PORT=9000 is ignored.*no emulator/) }],
  ] as const)('%s', (_case, endpoint, port, expected) => {
    expect(planEmulator(endpoint, port)).toEqual(expected);
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
