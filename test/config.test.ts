import { loadConfig } from '../src/config';
import { problemsOf } from './helpers/config';

const SECRET = 'k'.repeat(32);

const valid = {
  AZURE_OPENAI_ENDPOINT: 'https://my-resource.openai.azure.com/',
  AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1.5=img15, gpt-image-2',
  ImagesStorage: 'UseDevelopmentStorage=true',
};

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(valid);
    expect(config.openai).toMatchObject({
      endpoint: 'https://my-resource.openai.azure.com',
      apiFlavor: 'deployment',
      apiVersion: '2025-04-01-preview',
      defaultModel: 'gpt-image-1.5',
      auth: { mode: 'managed-identity' },
      timeoutInMs: 180_000,
      maxRetries: 2,
    });
    expect([...config.openai.deployments]).toEqual([
      ['gpt-image-1.5', 'img15'],
      ['gpt-image-2', 'gpt-image-2'],
    ]);
    expect(config.storage).toEqual({
      connection: { kind: 'connection-string', connectionString: 'UseDevelopmentStorage=true' },
      containers: { images: 'images', inbox: 'inbox', outputs: 'outputs', jobs: 'jobs' },
      queues: { jobs: 'image-jobs', callbacks: 'image-callbacks', usage: 'usage-retry' },
      sasLifetimeInMs: 24 * 60 * 60_000,
    });
    expect(config.limits).toEqual({
      maxJsonBodyBytes: 1024 * 1024,
      maxEditImageBytes: 50 * 1024 * 1024,
      maxEditMaskBytes: 4 * 1024 * 1024,
      maxEditBodyBytes: 100 * 1024 * 1024,
    });
    expect(config.jobs).toEqual({
      retryAfterSeconds: 10,
      maxRunInMs: 15 * 60_000,
      deadlineInMs: 3_600_000,
      leaseInMs: 60_000,
      idempotencyWindowInMs: 24 * 3_600_000,
      tokenSecrets: [],
    });
    expect(config.publicBaseUrl).toBeUndefined();
    expect(config.inboxPresets.size).toBe(0);
    expect(config.callbacks).toEqual({
      allowedHosts: ['*.logic.azure.com', '*.logic.azure.us', '*.logic.azure.cn', '*.environment.api.powerplatform.com'],
      signingSecret: { kind: 'per-process' },
      allowLoopback: false,
    });
  });

  it('reads inbox presets, keeping only plain option values', () => {
    const config = loadConfig({
      ...valid,
      INBOX_PRESETS: JSON.stringify({ 'product-shots': { prompt: ' white background ', size: '1024x1024', n: 2, nested: { no: 1 } } }),
    });
    expect(config.inboxPresets.get('product-shots')).toEqual({ prompt: 'white background', options: { size: '1024x1024', n: 2 } });
  });

  it.each([
    ['not json', 'INBOX_PRESETS must be JSON'],
    [JSON.stringify({ 'a/b': { prompt: 'x' } }), 'preset names must be folder names'],
    [JSON.stringify({ shots: { size: '1024x1024' } }), 'INBOX_PRESETS.shots.prompt'],
  ])('refuses the presets %s', (presets, message) => {
    expect(problemsOf({ ...valid, INBOX_PRESETS: presets })).toEqual([expect.stringContaining(message)]);
  });

  it('reads key auth, the v1 flavour, a user-assigned identity and identity-based storage', () => {
    const config = loadConfig({
      ...valid,
      ImagesStorage: undefined,
      ImagesStorage__blobServiceUri: 'https://acct.blob.core.windows.net/',
      ImagesStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      AZURE_OPENAI_API_FLAVOR: 'v1',
      AZURE_OPENAI_AUTH: 'key',
      AZURE_OPENAI_API_KEY: 'secret',
      AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-2',
      AZURE_CLIENT_ID: '00000000-0000-0000-0000-000000000001',
      IMAGES_SAS_TTL_MINUTES: '60',
    });
    expect(config.openai).toMatchObject({ apiFlavor: 'v1', auth: { mode: 'key', apiKey: 'secret' }, defaultModel: 'gpt-image-2' });
    expect(config.managedIdentityClientId).toBe('00000000-0000-0000-0000-000000000001');
    expect(config.storage.connection).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://acct.blob.core.windows.net',
      queueServiceUri: 'https://acct.queue.core.windows.net',
      // The usage table is in the same account; its endpoint follows from the blob endpoint's name.
      tableServiceUri: 'https://acct.table.core.windows.net',
    });
    expect(config.storage.sasLifetimeInMs).toBe(3_600_000);
  });

  it('lists every problem in one error', () => {
    const problems = problemsOf({
      AZURE_OPENAI_AUTH: 'key',
      AZURE_OPENAI_DEPLOYMENTS: 'dall-e-2=old',
      IMAGES_SAS_TTL_MINUTES: '20000',
      IMAGES_CONTAINER: 'Bad_Name',
    });
    expect(problems).toEqual([
      expect.stringContaining('IMAGES_CONTAINER must be a valid container name'),
      expect.stringContaining('IMAGES_SAS_TTL_MINUTES must be at most 10080'),
      expect.stringContaining('AZURE_OPENAI_ENDPOINT is required'),
      expect.stringContaining("unknown model 'dall-e-2'"),
      expect.stringContaining('AZURE_OPENAI_API_KEY is required'),
      expect.stringContaining('Set ImagesStorage'),
    ]);
  });

  it('puts every problem into the error message', () => {
    expect(() => loadConfig({})).toThrow(/3 problems[\s\S]*AZURE_OPENAI_ENDPOINT[\s\S]*AZURE_OPENAI_DEPLOYMENTS[\s\S]*ImagesStorage/);
  });

  it.each([
    [{ AZURE_OPENAI_ENDPOINT: 'not a url' }, 'AZURE_OPENAI_ENDPOINT must be an http(s) URL'],
    [{ AZURE_OPENAI_API_FLAVOR: 'v2' }, "AZURE_OPENAI_API_FLAVOR must be 'deployment' or 'v1'"],
    [{ AZURE_OPENAI_AUTH: 'password' }, "AZURE_OPENAI_AUTH must be 'managed-identity' or 'key'"],
    [{ AZURE_OPENAI_TIMEOUT_MS: '5s' }, 'AZURE_OPENAI_TIMEOUT_MS must be a whole number'],
    [{ AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-1' }, "AZURE_OPENAI_DEFAULT_MODEL 'gpt-image-1' must be one of the models"],
    [{ ImagesStorage__blobServiceUri: 'https://acct.blob.core.windows.net' }, 'not both'],
    [{ AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1=bad name' }, "invalid deployment name 'bad name'"],
    [{ ImagesStorage: undefined, ImagesStorage__blobServiceUri: 'https://acct.blob.core.windows.net' }, 'ImagesStorage__queueServiceUri is required'],
    [{ JOBS_QUEUE: 'Jobs' }, 'JOBS_QUEUE must be a valid container name'],
    [{ MAX_EDIT_IMAGE_BYTES: '10' }, 'MAX_EDIT_IMAGE_BYTES must be at least 1024'],
    [{ PUBLIC_BASE_URL: 'ftp://images.contoso.com' }, 'PUBLIC_BASE_URL must be an http(s) URL'],
    [{ PUBLIC_BASE_URL: 'https://images.contoso.com/?via=x' }, 'without query, fragment or credentials'],
    [{ PUBLIC_BASE_URL: 'https://user:pw@images.contoso.com' }, 'without query, fragment or credentials'],
    [{ WEBSITE_HOSTNAME: 'my app/x' }, 'WEBSITE_HOSTNAME must be a host name'],
    [{ JOB_TOKEN_SECRET: 'too-short' }, 'must be at least 32 characters'],
    [{ JOB_TOKEN_SECRET: SECRET, JOB_TOKEN_PREVIOUS_SECRETS: `${SECRET}-old, short` }, 'must be at least 32 characters'],
    [{ JOB_TOKEN_PREVIOUS_SECRETS: SECRET }, 'JOB_TOKEN_PREVIOUS_SECRETS needs JOB_TOKEN_SECRET'],
    [{ JOB_TOKEN_SECRET: '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/job-token-secret/)' }, 'a Key Vault reference the platform could not resolve'],
  ])('refuses %j', (override, message) => {
    expect(problemsOf({ ...valid, ...override })).toEqual([expect.stringContaining(message)]);
  });

  describe('absolute links', () => {
    it.each([
      [{ PUBLIC_BASE_URL: 'https://images.contoso.com/' }, 'https://images.contoso.com'],
      [{ PUBLIC_BASE_URL: 'https://gateway.contoso.com/imagegen/', WEBSITE_HOSTNAME: 'my-app.azurewebsites.net', JOB_TOKEN_SECRET: SECRET }, 'https://gateway.contoso.com/imagegen'],
      [{ WEBSITE_HOSTNAME: 'My-App.azurewebsites.net', JOB_TOKEN_SECRET: SECRET }, 'https://my-app.azurewebsites.net'],
      // What `func start` sets.
      [{ WEBSITE_HOSTNAME: 'localhost:7071' }, 'http://localhost:7071'],
      [{ WEBSITE_HOSTNAME: '127.0.0.1:7072' }, 'http://127.0.0.1:7072'],
    ])('come from %j', (override, base) => {
      expect(loadConfig({ ...valid, ...override }).publicBaseUrl).toBe(base);
    });
  });

  describe('job-token secrets', () => {
    it('puts the current secret first, then the previous ones', () => {
      const config = loadConfig({ ...valid, JOB_TOKEN_SECRET: `${SECRET}-new`, JOB_TOKEN_PREVIOUS_SECRETS: `${SECRET}-old, ${SECRET}-older` });
      expect(config.jobs.tokenSecrets).toEqual([`${SECRET}-new`, `${SECRET}-old`, `${SECRET}-older`]);
    });

    it('are required in Azure, where every instance must derive the same links', () => {
      expect(problemsOf({ ...valid, WEBSITE_HOSTNAME: 'my-app.azurewebsites.net' })).toEqual([expect.stringContaining('JOB_TOKEN_SECRET is required in Azure')]);
    });

    it('may be left out locally, under `func start` or anywhere else', () => {
      expect(loadConfig({ ...valid, WEBSITE_HOSTNAME: 'localhost:7071' }).jobs.tokenSecrets).toEqual([]);
      expect(loadConfig(valid).jobs.tokenSecrets).toEqual([]);
    });
  });

  describe('usage, prices, budgets and callers', () => {
    const inAzure = { ...valid, WEBSITE_HOSTNAME: 'app.azurewebsites.net', JOB_TOKEN_SECRET: SECRET };

    it('overrides the dated price table by model and field, keeping the other defaults', () => {
      const { prices } = loadConfig({ ...valid, PRICE_TABLE: '{"asOf": "2026-12-01", "currency": "EUR", "models": {"gpt-image-1.5": {"imageOutput": 28}}}' }).usage;
      expect(prices.asOf).toBe('2026-12-01');
      expect(prices.currency).toBe('EUR');
      expect(prices.models['gpt-image-1.5']).toEqual({ textInput: 5, imageInput: 8, imageOutput: 28, textOutput: 10 });
      expect(prices.models['gpt-image-2'].imageOutput).toBe(30);
    });

    it('refuses a broken price table or budget list, naming the setting and the field', () => {
      expect(problemsOf({ ...valid, PRICE_TABLE: '{not json' })).toEqual([expect.stringMatching(/^PRICE_TABLE must be JSON/)]);
      expect(problemsOf({ ...valid, PRICE_TABLE: '{"asOf": "soon", "models": {"gpt-image-9": {}}}' })).toEqual([
        expect.stringMatching(/^PRICE_TABLE\.asOf: /),
        expect.stringMatching(/^PRICE_TABLE\.models/),
      ]);
      expect(problemsOf({ ...valid, BUDGETS: '[{"caller": "user:*", "daily": {"images": -1}}]' })).toEqual(['BUDGETS[0].daily.images: images must not be negative']);
      expect(problemsOf({ ...valid, BUDGETS: '[{"caller": "user:*"}]' })).toEqual(['BUDGETS[0]: each budget needs daily or monthly limits']);
      expect(problemsOf({ ...valid, BUDGETS: 'fifty a day' })).toEqual([expect.stringMatching(/^BUDGETS must be JSON/)]);
    });

    it('reads budgets, each caller its own unless shared', () => {
      expect(loadConfig({ ...valid, BUDGETS: '[{"caller": "user:*", "daily": {"images": 5}}, {"caller": "inbox:*", "shared": true, "monthly": {"cost": 20}}]' }).usage.budgets).toEqual([
        { caller: 'user:*', scope: 'each', daily: { images: 5 }, monthly: undefined },
        { caller: 'inbox:*', scope: 'shared', daily: undefined, monthly: { cost: 20 } },
      ]);
    });

    it('trusts sign-in headers in Azure only when App Service Authentication is on', () => {
      expect(problemsOf({ ...inAzure, CALLER_AUTH: 'entra' })).toEqual([expect.stringMatching(/^CALLER_AUTH is entra, but App Service Authentication is off/)]);
      expect(loadConfig({ ...inAzure, CALLER_AUTH: 'key+entra', WEBSITE_AUTH_ENABLED: 'True' }).callers).toEqual({ auth: 'key+entra', adminRole: 'ImageGen.Admin', defaultCaller: 'unattributed' });
      expect(loadConfig(inAzure).callers.auth).toBe('key');
      expect(problemsOf({ ...valid, CALLER_AUTH: 'password' })).toEqual(["CALLER_AUTH must be 'key', 'key+entra' or 'entra'"]);
    });
  });

  describe('callbacks', () => {
    const SIGNING = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;

    it('reads the allowed hosts, the signing secret and the loopback switch', () => {
      const config = loadConfig({ ...valid, CALLBACK_ALLOWED_HOSTS: ' hooks.contoso.com, *.Logic.Azure.com ', CALLBACK_SIGNING_SECRET: SIGNING, CALLBACK_ALLOW_LOOPBACK: 'true' });

      expect(config.callbacks).toEqual({ allowedHosts: ['hooks.contoso.com', '*.logic.azure.com'], signingSecret: { kind: 'configured', secret: SIGNING }, allowLoopback: true });
    });

    it.each([
      [{ CALLBACK_ALLOWED_HOSTS: '*, 10.0.0.1, *.1.2.3' }, "not '*', '10.0.0.1', '*.1.2.3'"],
      [{ CALLBACK_SIGNING_SECRET: 'not-a-whsec-secret-but-long-enough-to-pass' }, 'CALLBACK_SIGNING_SECRET must be whsec_'],
      [{ CALLBACK_SIGNING_SECRET: `whsec_${Buffer.alloc(8).toString('base64')}` }, 'the base64 of 24-64 random bytes'],
      [{ CALLBACK_SIGNING_SECRET: '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/callback-signing-secret/)' }, 'a Key Vault reference the platform could not resolve'],
      [{ CALLBACK_ALLOW_LOOPBACK: 'yes' }, "CALLBACK_ALLOW_LOOPBACK must be 'true' or 'false'"],
      [{ CALLBACK_ALLOW_LOOPBACK: 'true', WEBSITE_HOSTNAME: 'my-app.azurewebsites.net', JOB_TOKEN_SECRET: SECRET }, 'CALLBACK_ALLOW_LOOPBACK is for local development only'],
    ])('refuses %j', (override, problem) => {
      expect(problemsOf({ ...valid, ...override })).toEqual([expect.stringContaining(problem)]);
    });

    it('leaves callbacks unconfigured in Azure without a signing secret, rather than failing the whole app', () => {
      expect(loadConfig({ ...valid, WEBSITE_HOSTNAME: 'my-app.azurewebsites.net', JOB_TOKEN_SECRET: SECRET }).callbacks.signingSecret).toEqual({ kind: 'missing' });
    });
  });
});
