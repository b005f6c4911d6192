import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { AppStack } from './helpers/app-stack';
import { startAppStack } from './helpers/app-stack';
import { uniqueContainerName } from './helpers/azurite';
import type { IdentityEndpoint } from './helpers/identity-endpoint';
import { startIdentityEndpoint } from './helpers/identity-endpoint';
import { pollLikePowerAutomate } from './helpers/power-automate';

// `npm run bundle` makes the deployment package one file (what azd deploys): the same app must come
// out of it, served by the local host like the compiled function files, synchronous and async paths
// alike, and reaching Azure OpenAI as it does in Azure, with the managed identity: @azure/identity
// and MSAL bundled, asking the identity endpoint App Service gives the app for a token.

const PROJECT_ROOT = join(__dirname, '..');
/** The app's user-assigned identity (AZURE_CLIENT_ID, as the Bicep sets it). */
const CLIENT_ID = '2d6f0b8e-9a41-4c3b-8e57-1f0a9c6d4b21';

describe('the bundled deployment package (npm run bundle)', () => {
  const out = mkdtempSync(join(tmpdir(), 'imagegen-bundle-'));
  let stack: AppStack | undefined;
  let identity: IdentityEndpoint | undefined;

  beforeAll(async () => {
    execFileSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'bundle.mjs'), '--out', out, '--no-source-map'], { cwd: PROJECT_ROOT, stdio: 'pipe' });
    identity = await startIdentityEndpoint({ clientId: CLIENT_ID });
    stack = await startAppStack({
      settings: {
        JOBS_QUEUE: uniqueContainerName('bundle-q'),
        JOBS_RETRY_AFTER_SECONDS: '1',
        AZURE_OPENAI_AUTH: 'managed-identity',
        AZURE_OPENAI_API_KEY: '',
        AZURE_CLIENT_ID: CLIENT_ID,
        ...identity.env,
      },
      host: { functionModules: [join(out, 'functions.js')], runQueueTriggers: true },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await identity?.close();
    rmSync(out, { recursive: true, force: true });
  });

  it('holds one script, host.json and a package.json without dependencies that points at it', () => {
    expect(readdirSync(out).sort()).toEqual(['functions.js', 'functions.js.LEGAL.txt', 'host.json', 'package.json']);
    const manifest = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as Record<string, unknown>;

    expect(manifest).toMatchObject({ main: 'functions.js', type: 'commonjs' });
    expect(manifest['dependencies']).toBeUndefined();
    expect(readFileSync(join(out, 'host.json'), 'utf8')).toBe(readFileSync(join(PROJECT_ROOT, 'host.json'), 'utf8'));
    expect(statSync(join(out, 'functions.js')).size).toBeGreaterThan(0);
  });

  it('registers every function of the app', () => {
    const names = (stack?.host.app.functions ?? []).map((registration) => registration.name).sort();

    expect(names).toEqual(expect.arrayContaining(['health-get', 'images-edit', 'images-generate', 'inbox-edit', 'jobs-get', 'jobs-poison', 'jobs-status', 'jobs-worker', 'openapi-get']));
  });

  it('generates an image synchronously and through a job', async () => {
    if (!stack) throw new Error('no stack');
    const { host } = stack;
    const post = (headers: Record<string, string>) =>
      fetch(`${host.url}/api/images/generations`, {
        method: 'POST',
        headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ prompt: 'a bundled fox' }),
      });

    const direct = await post({});
    const { final } = await pollLikePowerAutomate(await post({ prefer: 'respond-async' }));

    expect([direct.status, final.status]).toEqual([200, 200]);
    const body = (await direct.json()) as { data: { url: string; bytes: number }[] };
    const image = await fetch(body.data[0]?.url ?? '');
    expect(Buffer.from(await image.arrayBuffer()).length).toBe(body.data[0]?.bytes);
  });

  it('calls Azure OpenAI with a token of the managed identity, which the bundled @azure/identity asks the App Service identity endpoint for', () => {
    const calls = (stack?.emulator.requests ?? []).filter((request) => request.operation === 'generations');
    expect(calls.length).toBeGreaterThanOrEqual(2);
    for (const call of calls) {
      expect([call.status, call.headers['authorization'], call.headers['api-key']]).toEqual([200, 'Bearer [redacted]', undefined]);
    }
    // The first token request took the App Service source, for the user-assigned identity; MSAL keeps the token.
    expect(identity?.requests[0]).toEqual({
      method: 'GET',
      path: '/msi/token',
      query: { 'api-version': '2019-08-01', resource: 'https://cognitiveservices.azure.com', client_id: CLIENT_ID },
      identityHeaderMatched: true,
    });
  });
});
