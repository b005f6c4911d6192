import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { APP_SETTING_NAMES, loadConfig } from '../../src/config';
import { describeWithTool } from '../helpers/system-tools';
import type { ArmTemplate } from './bicep-cli';
import { compileMain, PROJECT_ROOT, readInfra } from './bicep-cli';

const azureYaml = readFileSync(join(PROJECT_ROOT, 'azure.yaml'), 'utf8');
const deployDoc = readFileSync(join(PROJECT_ROOT, 'docs', 'deploy.md'), 'utf8');

describe('azure.yaml', () => {
  it('deploys one TypeScript function service, built locally from the staged package folder', () => {
    expect(azureYaml).toMatch(/\nservices:\n {2}api:\n {4}project: \.\n {4}language: ts\n {4}host: function\n/);
    expect(azureYaml).toMatch(/\n {4}remoteBuild: false\n/);
    expect(azureYaml).toMatch(/\n {4}dist: dist\/azure-package\n/);
    // azd refuses remoteBuild: false when .funcignore drops node_modules.
    const funcignore = readFileSync(join(PROJECT_ROOT, '.funcignore'), 'utf8').split('\n').map((line) => line.trim());
    expect(funcignore.filter((line) => /^\/?node_modules\/?$/.test(line))).toEqual([]);
    // The Function App azd deploys to is found by this tag.
    expect(readInfra('modules/function-app.bicep')).toContain("'azd-service-name': 'api'");
  });

  it('asks for an azd that passes AZURE_OPENAI_EXTRA_BACKENDS to an array parameter and reads remoteBuild', () => {
    // Azure/azure-dev#6694 (1.23.4) parses the text of an array parameter as JSON; #6748 (1.23.5) added remoteBuild.
    expect(azureYaml).toMatch(/\nrequiredVersions:\n {2}azd: ">= 1\.23\.5"\n/);
    expect(deployDoc).toContain('1.23.5 or later');
  });

  it('runs hook scripts that exist, for both shells', () => {
    const runs = [...azureYaml.matchAll(/\n\s+run: (.+)/g)].map((match) => match[1] ?? '');
    expect(runs.sort()).toEqual([
      './infra/hooks/ensure-secrets.ps1',
      './infra/hooks/ensure-secrets.sh',
      './infra/hooks/postdeploy.ps1',
      './infra/hooks/postdeploy.sh',
      'node infra/hooks/package-app.mjs',
      'node infra/hooks/package-app.mjs',
      'node infra/hooks/write-local-settings.mjs',
      'node infra/hooks/write-local-settings.mjs',
    ]);
    for (const run of runs) expect(existsSync(join(PROJECT_ROOT, run.replace(/^node /, '')))).toBe(true);
    expect(azureYaml).toMatch(/postdeploy:\n {4}posix:\n {6}shell: sh\n {6}run: \.\/infra\/hooks\/postdeploy\.sh/);
    expect(azureYaml).toMatch(/postdeploy:[\s\S]*windows:\n {6}shell: pwsh\n {6}run: \.\/infra\/hooks\/postdeploy\.ps1/);
  });

  it('makes the generated secrets after provisioning and before deploy, then the local settings, stopping at a failure', () => {
    // In `azd up`, azd runs the postprovision hooks after every provisioning step and before the
    // predeploy hooks and deploy (cli/azd/internal/cmd/up_graph.go in Azure/azure-dev); the hooks of
    // one event run in the order listed, and the first failure stops the command unless
    // continueOnError is true (cli/azd/pkg/ext/hooks_runner.go).
    const postprovision = /\n {2}postprovision:\n([\s\S]*?)\n {2}\S/.exec(azureYaml)?.[1] ?? '';
    const hooks = postprovision.split(/\n {4}- /).slice(1);
    expect(hooks.map((hook) => [...hook.matchAll(/(posix|windows):\n {8}shell: (\w+)\n {8}run: (.+)/g)].map((match) => match.slice(1).join(' ')))).toEqual([
      ['posix sh ./infra/hooks/ensure-secrets.sh', 'windows pwsh ./infra/hooks/ensure-secrets.ps1'],
      ['posix sh node infra/hooks/write-local-settings.mjs', 'windows pwsh node infra/hooks/write-local-settings.mjs'],
    ]);
    expect(postprovision).not.toMatch(/continueOnError: true/);
  });

  it('does not claim that azd provisions before it packages (azd up may package first, or alongside)', () => {
    // cli/azd/cmd/up.go in Azure/azure-dev: `azd up` is one graph in which packaging can overlap
    // provisioning; its documented default order is package, provision, deploy.
    for (const text of [azureYaml, deployDoc]) expect(text).not.toMatch(/provision[^\n]*(→|->|then)[^\n]*package/i);
  });
});

describe('docs/deploy.md', () => {
  it('does not ask for AZURE_PRINCIPAL_TYPE, which azd fills from the signed-in principal itself', () => {
    expect(deployDoc).not.toMatch(/azd env set AZURE_PRINCIPAL_TYPE/);
  });
});

describe('write-local-settings.mjs (postprovision)', () => {
  const script = join(PROJECT_ROOT, 'infra', 'hooks', 'write-local-settings.mjs');
  const provisioned = {
    AZURE_ENV_NAME: 'dev',
    AZURE_STORAGE_BLOB_ENDPOINT: 'https://stimgabc.blob.core.windows.net/',
    AZURE_STORAGE_QUEUE_ENDPOINT: 'https://stimgabc.queue.core.windows.net/',
    AZURE_STORAGE_TABLE_ENDPOINT: 'https://stimgabc.table.core.windows.net/',
    USAGE_TABLE: 'usage',
    IMAGES_CONTAINER: 'images',
    INBOX_CONTAINER: 'inbox',
    OUTPUTS_CONTAINER: 'outputs',
    JOBS_CONTAINER: 'jobs',
    JOBS_QUEUE: 'image-jobs',
    CALLBACKS_QUEUE: 'image-callbacks',
    USAGE_QUEUE: 'usage-retry',
    AZURE_OPENAI_ENDPOINT: 'https://oai-abc.openai.azure.com/',
    AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-2=gpt-image-2',
    AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-2',
    AZURE_OPENAI_AUTH: 'key',
    AZURE_OPENAI_EXISTING_API_KEY: 'must-never-be-written',
  };
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'local-settings-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = (env: Record<string, string> = provisioned) =>
    spawnSync(process.execPath, [script, dir], { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8' });
  const values = (path: string) => (JSON.parse(readFileSync(path, 'utf8')) as { Values: Record<string, string> }).Values;

  it('writes identity-based settings the app accepts, with no key even in key mode', () => {
    expect(run().status).toBe(0);
    const settings = values(join(dir, 'local.settings.json'));
    const config = loadConfig(settings);

    expect(config.storage.connection).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://stimgabc.blob.core.windows.net',
      queueServiceUri: 'https://stimgabc.queue.core.windows.net',
      tableServiceUri: 'https://stimgabc.table.core.windows.net',
    });
    expect(config.openai.auth).toEqual({ mode: 'managed-identity' });
    expect(config.managedIdentityClientId).toBeUndefined();
    expect(JSON.stringify(settings)).not.toContain('must-never-be-written');
    const known = new Set<string>([...APP_SETTING_NAMES, 'FUNCTIONS_WORKER_RUNTIME', 'AzureWebJobsStorage']);
    expect(Object.keys(settings).filter((name) => !known.has(name))).toEqual([]);
    expect(Object.keys(settings).filter((name) => /KEY/.test(name))).toEqual([]);
  });

  describeWithTool('bicep', 'write-local-settings.mjs and the Bicep outputs', (bicep) => {
    let template: ArmTemplate;
    beforeAll(async () => {
      ({ template } = await compileMain(bicep));
    }, 120_000);

    it('reads only Bicep outputs', () => {
      const read = [...readFileSync(script, 'utf8').matchAll(/: '([A-Z][A-Z0-9_]+)',/g)].map((match) => match[1] ?? '');
      expect(read.length).toBeGreaterThan(5);
      expect(read.filter((name) => !(name in template.outputs))).toEqual([]);
    });
  });

  it('carries the extra backends over, for your own login to reach them as the app does', () => {
    const backends = JSON.stringify([{ endpoint: 'https://oai-abc-swedencentral.openai.azure.com/', deployment: 'gpt-image-2', model: 'gpt-image-2', auth: 'managed-identity', weight: 2 }]);
    expect(run({ ...provisioned, AZURE_OPENAI_BACKENDS: backends }).status).toBe(0);
    const config = loadConfig(values(join(dir, 'local.settings.json')));
    expect(config.openai.backends.map((backend) => [backend.endpoint, backend.auth.mode, backend.weight])).toEqual([
      ['https://oai-abc.openai.azure.com', 'managed-identity', 1],
      ['https://oai-abc-swedencentral.openai.azure.com', 'managed-identity', 2],
    ]);
    expect(config.storage.queues).toEqual({ jobs: 'image-jobs', callbacks: 'image-callbacks', usage: 'usage-retry' });
  });

  it('fails when provisioning outputs are missing', () => {
    const result = run({ AZURE_ENV_NAME: 'dev' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('AZURE_STORAGE_BLOB_ENDPOINT');
    expect(existsSync(join(dir, 'local.settings.json'))).toBe(false);
  });

  it('keeps a hand-written local.settings.json and writes beside the azd environment instead', () => {
    const own = '{ "IsEncrypted": false, "Values": { "ImagesStorage": "UseDevelopmentStorage=true" } }\n';
    writeFileSync(join(dir, 'local.settings.json'), own);

    expect(run().status).toBe(0);
    expect(readFileSync(join(dir, 'local.settings.json'), 'utf8')).toBe(own);
    expect(values(join(dir, '.azure', 'dev', 'local.settings.json'))['AZURE_OPENAI_ENDPOINT']).toBe('https://oai-abc.openai.azure.com/');
  });

  it('replaces the file it wrote before', () => {
    expect(run().status).toBe(0);
    expect(run({ ...provisioned, AZURE_OPENAI_ENDPOINT: 'https://oai-new.openai.azure.com/' }).status).toBe(0);
    expect(values(join(dir, 'local.settings.json'))['AZURE_OPENAI_ENDPOINT']).toBe('https://oai-new.openai.azure.com/');
  });
});
