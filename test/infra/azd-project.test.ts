import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type * as FunctionsCore from '../../local-host/functions-core';
import { loadFunctionApp } from '../../local-host/registry';
import { APP_SETTING_NAMES, loadConfig } from '../../src/config';
import { captureAppFunctions } from './app-registrations';
import { PROJECT_ROOT, readInfra, statementsOf } from './bicep';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

const azureYaml = readFileSync(join(PROJECT_ROOT, 'azure.yaml'), 'utf8');
const outputs = statementsOf(readInfra('main.bicep'), 'output').map((output) => output.name);

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

  it('runs hook scripts that exist, for both shells', () => {
    const runs = [...azureYaml.matchAll(/\n\s+run: (.+)/g)].map((match) => match[1] ?? '');
    expect(runs.sort()).toEqual([
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
});

describe('the deployment package (infra/hooks/package-app.mjs)', () => {
  let project: string;
  let staged: string;
  let npmOutput: string;

  beforeAll(() => {
    // A copy of the project as azd leaves it after `npm run build`, so the working tree is untouched.
    project = mkdtempSync(join(tmpdir(), 'package-app-'));
    for (const file of ['package.json', 'package-lock.json', 'host.json', '.funcignore']) cpSync(join(PROJECT_ROOT, file), join(project, file));
    mkdirSync(join(project, 'infra', 'hooks'), { recursive: true });
    cpSync(join(PROJECT_ROOT, 'infra', 'hooks', 'package-app.mjs'), join(project, 'infra', 'hooks', 'package-app.mjs'));
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(PROJECT_ROOT, 'tsconfig.build.json'), '--outDir', join(project, 'dist')], {
      encoding: 'utf8',
    });
    if (tsc.status !== 0) throw new Error(`tsc failed: ${tsc.stdout}${tsc.stderr}`);

    const run = spawnSync(process.execPath, [join(project, 'infra', 'hooks', 'package-app.mjs')], { cwd: project, encoding: 'utf8' });
    npmOutput = `${run.stdout}${run.stderr}`;
    if (run.status !== 0) throw new Error(`package-app failed: ${npmOutput}`);
    staged = join(project, 'dist', 'azure-package');
  }, 180_000);
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it('holds only what the host runs: dist/src, host.json, package.json and production node_modules', () => {
    expect(readdirSync(staged).sort()).toEqual(['.funcignore', 'dist', 'host.json', 'node_modules', 'package-lock.json', 'package.json']);
    expect(readdirSync(join(staged, 'dist'))).toEqual(['src']);
    expect(readdirSync(join(staged, 'dist', 'src', 'functions')).filter((name) => name.endsWith('.map'))).toEqual([]);

    const manifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies)) expect([name, existsSync(join(staged, 'node_modules', name))]).toEqual([name, true]);
    for (const name of Object.keys(manifest.devDependencies)) expect([name, existsSync(join(staged, 'node_modules', name))]).toEqual([name, false]);
  });

  it('loads on its own and registers the same functions as the source', () => {
    const packaged = loadFunctionApp(staged, (file) => jest.requireActual(file));
    expect(packaged.files.every((file) => file.startsWith(staged))).toBe(true);
    expect(packaged.functions.map((fn) => fn.name).sort()).toEqual(captureAppFunctions().map((fn) => fn.name).sort());
  });
});

describe('write-local-settings.mjs (postprovision)', () => {
  const script = join(PROJECT_ROOT, 'infra', 'hooks', 'write-local-settings.mjs');
  const provisioned = {
    AZURE_ENV_NAME: 'dev',
    AZURE_STORAGE_BLOB_ENDPOINT: 'https://stimgabc.blob.core.windows.net/',
    AZURE_STORAGE_QUEUE_ENDPOINT: 'https://stimgabc.queue.core.windows.net/',
    IMAGES_CONTAINER: 'images',
    INBOX_CONTAINER: 'inbox',
    OUTPUTS_CONTAINER: 'outputs',
    JOBS_CONTAINER: 'jobs',
    JOBS_QUEUE: 'image-jobs',
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

    expect(config.storage.connection).toEqual({ kind: 'identity', blobServiceUri: 'https://stimgabc.blob.core.windows.net', queueServiceUri: 'https://stimgabc.queue.core.windows.net' });
    expect(config.openai.auth).toEqual({ mode: 'managed-identity' });
    expect(config.managedIdentityClientId).toBeUndefined();
    expect(JSON.stringify(settings)).not.toContain('must-never-be-written');
    const known = new Set<string>([...APP_SETTING_NAMES, 'FUNCTIONS_WORKER_RUNTIME', 'AzureWebJobsStorage']);
    expect(Object.keys(settings).filter((name) => !known.has(name))).toEqual([]);
    expect(Object.keys(settings).filter((name) => /KEY/.test(name))).toEqual([]);
  });

  it('reads only Bicep outputs', () => {
    const read = [...readFileSync(script, 'utf8').matchAll(/: '([A-Z][A-Z0-9_]+)',/g)].map((match) => match[1] ?? '');
    expect(read.length).toBeGreaterThan(5);
    expect(read.filter((name) => !outputs.includes(name))).toEqual([]);
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
