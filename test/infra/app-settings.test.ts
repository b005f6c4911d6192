import type * as FunctionsCore from '../../local-host/functions-core';
import { APP_SETTING_NAMES, loadConfig } from '../../src/config';
import { IMAGE_MODELS } from '../../src/domain/image-models';
import { captureAppFunctions, settingReferences, triggered } from './app-registrations';
import { allowedValues, objectVariable, params, readInfra, statementNamed, stringLiteral } from './bicep';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

const main = readInfra('main.bicep');
const baseSettings = objectVariable(main, 'baseAppSettings');
const keyModeSettings = objectVariable(main, 'keyModeAppSettings');
const storageNames = objectVariable(main, 'storageNames');
const mainParam = (name: string) => {
  const param = params(main).find((candidate) => candidate.name === name);
  if (!param) throw new Error(`param ${name} is missing from infra/main.bicep`);
  return param;
};

/**
 * Settings the Functions host (or the platform) reads itself; src/config.ts never sees them, so
 * they cannot be in APP_SETTING_NAMES. Each one says why it is set.
 */
const HOST_OWNED = new Map<string, string>([
  ['AzureWebJobsStorage__blobServiceUri', "the host's own storage, identity-based (leases, keys, blob receipts)"],
  ['AzureWebJobsStorage__queueServiceUri', "the host's own queues (e.g. blob trigger bookkeeping)"],
  ['AzureWebJobsStorage__tableServiceUri', "the host's own tables (diagnostic events)"],
  ['AzureWebJobsStorage__credential', 'authenticate AzureWebJobsStorage with a managed identity'],
  ['AzureWebJobsStorage__clientId', 'which managed identity: the user-assigned one'],
  ['ImagesStorage__credential', 'authenticate the ImagesStorage trigger connection (queue and blob triggers) with a managed identity'],
  ['ImagesStorage__clientId', 'which managed identity the host uses for ImagesStorage'],
  ['APPLICATIONINSIGHTS_CONNECTION_STRING', 'where the host sends telemetry'],
  ['APPLICATIONINSIGHTS_AUTHENTICATION_STRING', 'Entra auth for telemetry: local auth is off on the component'],
]);

/** What a deployment produces for settings whose Bicep value is a resource output. */
const DEPLOY_TIME_SAMPLES: Record<string, string> = {
  AZURE_CLIENT_ID: '00000000-0000-0000-0000-0000000000c1',
  ImagesStorage__blobServiceUri: 'https://stimgsample.blob.core.windows.net/',
  ImagesStorage__queueServiceUri: 'https://stimgsample.queue.core.windows.net/',
  AZURE_OPENAI_ENDPOINT: 'https://oai-sample.openai.azure.com/',
  // The platform swaps the Key Vault reference for the secret before the app starts.
  AZURE_OPENAI_API_KEY: 'secret-resolved-from-key-vault',
};

interface Deployment {
  readonly auth: string;
  readonly model: string;
  readonly deploymentName?: string;
}

/** The app settings the Bicep produces for one choice of parameters, with deploy-time values sampled. */
function appSettingsFor({ auth, model, deploymentName = model }: Deployment): Record<string, string> {
  const bicepValues: Record<string, string> = { openAiAuth: auth, openAiModelName: model, deploymentName };
  const entries = [...baseSettings, ...(auth === 'key' ? [...keyModeSettings] : [])];
  return Object.fromEntries(
    entries.map(([name, source]) => {
      if (HOST_OWNED.has(name)) return [name, `host-owned value of ${name}`];
      const sample = DEPLOY_TIME_SAMPLES[name];
      if (sample !== undefined) return [name, sample];
      const literal = stringLiteral(source);
      if (literal !== undefined) return [name, literal];
      const storageName = /^storageNames\.(\w+)$/.exec(source)?.[1];
      if (storageName !== undefined) return [name, stringLiteral(storageNames.get(storageName) ?? '') ?? ''];
      if (bicepValues[source] !== undefined) return [name, bicepValues[source]];
      const interpolated = /^'(.*)'$/.exec(source)?.[1]?.replace(/\$\{(\w+)\}/g, (whole, variable: string) => bicepValues[variable] ?? whole);
      if (interpolated !== undefined && !interpolated.includes('${')) return [name, interpolated];
      throw new Error(`${name} = ${source} is only known at deploy time; give it a sample in DEPLOY_TIME_SAMPLES.`);
    }),
  );
}

const authModes = allowedValues(mainParam('openAiAuth')).map(String);
const models = allowedValues(mainParam('openAiModelName')).map(String);
const defaults = loadConfig({ AZURE_OPENAI_ENDPOINT: 'https://x.openai.azure.com', AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-2', ImagesStorage: 'UseDevelopmentStorage=true' });

describe('app settings in infra/main.bicep', () => {
  it('sets only settings src/config.ts reads or the Functions host owns', () => {
    const known = new Set<string>([...APP_SETTING_NAMES, ...HOST_OWNED.keys()]);
    const unknown = [...baseSettings.keys(), ...keyModeSettings.keys()].filter((name) => !known.has(name));
    expect(unknown).toEqual([]);
  });

  it('keeps the host-owned allow-list to settings the Bicep really sets', () => {
    expect([...HOST_OWNED.keys()].filter((name) => !baseSettings.has(name))).toEqual([]);
    expect([...HOST_OWNED.keys()].filter((name) => (APP_SETTING_NAMES as readonly string[]).includes(name))).toEqual([]);
  });

  it('offers exactly the auth modes the config accepts', () => {
    expect(authModes.sort()).toEqual(['key', 'managed-identity']);
  });

  it.each(authModes)('gives the app a complete, identity-based configuration in %s mode', (auth) => {
    const config = loadConfig(appSettingsFor({ auth, model: 'gpt-image-2' }));

    expect(config.openai.auth.mode).toBe(auth);
    expect(config.openai.endpoint).toBe('https://oai-sample.openai.azure.com');
    expect(config.managedIdentityClientId).toBe(DEPLOY_TIME_SAMPLES['AZURE_CLIENT_ID']);
    expect(config.storage.connection).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://stimgsample.blob.core.windows.net',
      queueServiceUri: 'https://stimgsample.queue.core.windows.net',
    });
    expect([...config.openai.deployments]).toEqual([['gpt-image-2', 'gpt-image-2']]);
  });

  it('puts the API key in app settings only in key mode, and only as a Key Vault reference', () => {
    expect(baseSettings.has('AZURE_OPENAI_API_KEY')).toBe(false);
    expect([...keyModeSettings.keys()]).toEqual(['AZURE_OPENAI_API_KEY']);
    expect(keyModeSettings.get('AZURE_OPENAI_API_KEY')).toMatch(/^'@Microsoft\.KeyVault\(SecretUri=\$\{[\w.!]+\}\)'$/);
  });

  it('allows only image models the app knows, each accepted as a deployment and as the default model', () => {
    expect(models.length).toBeGreaterThan(0);
    for (const model of models) {
      expect(IMAGE_MODELS).toContain(model);
      const config = loadConfig(appSettingsFor({ auth: 'managed-identity', model, deploymentName: 'my-images' }));
      expect([...config.openai.deployments]).toEqual([[model, 'my-images']]);
      expect(config.openai.defaultModel).toBe(model);
    }
    // The Bicep default deployment name is the model name, which the config must accept too.
    expect(statementNamed(main, 'var', 'deploymentName').rest).toBe('= empty(openAiDeploymentName) ? openAiModelName : openAiDeploymentName');
  });

  it('names the containers and the job queue as the config defaults do', () => {
    const config = loadConfig(appSettingsFor({ auth: 'managed-identity', model: 'gpt-image-2' }));
    const bicep = (key: string) => stringLiteral(storageNames.get(key) ?? '');

    expect({ images: bicep('images'), inbox: bicep('inbox'), outputs: bicep('outputs'), jobs: bicep('jobs') }).toEqual(defaults.storage.containers);
    expect({ jobs: bicep('jobsQueue') }).toEqual(defaults.storage.queues);
    expect(config.storage.containers).toEqual(defaults.storage.containers);
    expect(config.storage.queues).toEqual(defaults.storage.queues);
  });

  it('creates every container and the queue the app reads', () => {
    expect(statementNamed(main, 'var', 'appContainers').rest).toBe('= [storageNames.images, storageNames.inbox, storageNames.outputs, storageNames.jobs]');
    const imagesStorage = statementNamed(main, 'module', 'imagesStorage').rest;
    expect(imagesStorage).toContain('containerNames: concat(appContainers, [storageNames.deadLetters])');
    expect(imagesStorage).toContain('queueNames: [storageNames.jobsQueue]');
  });
});

describe('trigger connections and %SETTING% references of the registered functions', () => {
  const registrations = captureAppFunctions();
  const nonHttp = registrations.filter((registration) => triggered([registration], 'httpTrigger').length === 0);

  it('sets every app setting a binding refers to with %NAME%', () => {
    const missing = registrations.flatMap((registration) =>
      settingReferences(registration)
        .filter((name) => !baseSettings.has(name))
        .map((name) => `${registration.name}: %${name}%`),
    );
    expect(missing).toEqual([]);
  });

  it('gives every trigger connection identity-based settings for its service', () => {
    const problems: string[] = [];
    for (const registration of nonHttp) {
      const [trigger] = [...triggered([registration], 'queueTrigger'), ...triggered([registration], 'blobTrigger')];
      if (!trigger) continue;
      const connection = typeof trigger.binding['connection'] === 'string' ? trigger.binding['connection'] : 'AzureWebJobsStorage';
      const service = String(trigger.binding['type']).toLowerCase() === 'queuetrigger' ? 'queueServiceUri' : 'blobServiceUri';
      for (const [suffix, expected] of [[service, undefined], ['credential', "'managedidentity'"], ['clientId', 'identity.outputs.clientId']] as const) {
        const value = baseSettings.get(`${connection}__${suffix}`);
        if (value === undefined || (expected !== undefined && value !== expected)) {
          problems.push(`${registration.name}: ${connection}__${suffix} is ${value ?? 'not set'}${expected ? `, expected ${expected}` : ''}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
