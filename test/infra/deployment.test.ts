import type * as FunctionsCore from '../../local-host/functions-core';
import { APP_SETTING_NAMES, loadConfig } from '../../src/config';
import { describeWithTool } from '../helpers/system-tools';
import { evaluate } from './arm-expressions';
import { captureAppFunctions, settingReferences, triggered } from './app-registrations';
import type { ArmTemplate, AzdEnvironment, SnapshotResult } from './bicep-cli';
import { azdEnvironment, compileMain, snapshotFor } from './bicep-cli';
import type { RoleGrant } from './deployment';
import { allStrings, BUILT_IN_ROLES, Deployment } from './deployment';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

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

const EXISTING_ENDPOINT = 'https://contoso-images.openai.azure.com';
const EXISTING_KEY = 'sample-existing-endpoint-key-0123456789';

/** An Azure OpenAI account of another team: another subscription, another resource group. */
const SHARED_ACCOUNT_ID = '/subscriptions/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d/resourceGroups/rg-shared-ai/providers/Microsoft.CognitiveServices/accounts/oai-shared-swc';
/** `azd env set AZURE_OPENAI_EXTRA_BACKENDS '…'`: an existing deployment elsewhere, and a new one in a region of its own. */
const TWO_EXTRA_BACKENDS = [
  { kind: 'existing', accountId: SHARED_ACCOUNT_ID, deployment: 'img15', model: 'gpt-image-1.5', priority: 2, imagesPerMinute: 5 },
  { kind: 'new', location: 'swedencentral', model: 'gpt-image-2', weight: 2 },
];
/** The same, and a new deployment in the account created here. */
const THREE_EXTRA_BACKENDS = [...TWO_EXTRA_BACKENDS, { kind: 'new', model: 'gpt-image-1.5', deployment: 'img15-local', name: 'local-1.5' }];

/** The parameter sets that change what is deployed. */
const ENVIRONMENTS = {
  'managed identity, new Azure OpenAI (the defaults)': azdEnvironment(),
  'Key Vault key, new Azure OpenAI': azdEnvironment({ AZURE_OPENAI_AUTH: 'key' }),
  'managed identity, existing endpoint': azdEnvironment({
    AZURE_OPENAI_EXISTING_ENDPOINT: EXISTING_ENDPOINT,
    AZURE_OPENAI_MODEL: 'gpt-image-1.5',
    AZURE_OPENAI_DEPLOYMENT_NAME: 'images',
  }),
  'Key Vault key, existing endpoint': azdEnvironment({
    AZURE_OPENAI_AUTH: 'key',
    AZURE_OPENAI_EXISTING_ENDPOINT: EXISTING_ENDPOINT,
    AZURE_OPENAI_EXISTING_API_KEY: EXISTING_KEY,
    AZURE_OPENAI_MODEL: 'gpt-image-1.5',
    AZURE_OPENAI_DEPLOYMENT_NAME: 'images',
  }),
  // A pipeline signed in as a service principal; the AZURE_PRINCIPAL_TYPE someone set is ignored by azd.
  'a pipeline (service principal)': azdEnvironment({ AZURE_PRINCIPAL_TYPE: 'User' }, { id: '5c0a7e11-2b9d-4f3a-8c6e-1d2f3a4b5c6d', type: 'ServicePrincipal' }),
  'managed identity, new Azure OpenAI, three extra backends': azdEnvironment({ AZURE_OPENAI_EXTRA_BACKENDS: JSON.stringify(THREE_EXTRA_BACKENDS) }),
  'Key Vault key, existing endpoint, two extra backends': azdEnvironment({
    AZURE_OPENAI_AUTH: 'key',
    AZURE_OPENAI_EXISTING_ENDPOINT: EXISTING_ENDPOINT,
    AZURE_OPENAI_EXISTING_API_KEY: EXISTING_KEY,
    AZURE_OPENAI_MODEL: 'gpt-image-1.5',
    AZURE_OPENAI_DEPLOYMENT_NAME: 'images',
    AZURE_OPENAI_EXTRA_BACKENDS: JSON.stringify(TWO_EXTRA_BACKENDS),
  }),
} satisfies Record<string, AzdEnvironment>;
type EnvironmentName = keyof typeof ENVIRONMENTS;
const KEY_MODES: EnvironmentName[] = ['Key Vault key, new Azure OpenAI', 'Key Vault key, existing endpoint', 'Key Vault key, existing endpoint, two extra backends'];
const WITH_EXTRA_BACKENDS: EnvironmentName[] = ['managed identity, new Azure OpenAI, three extra backends', 'Key Vault key, existing endpoint, two extra backends'];
const ALL = Object.keys(ENVIRONMENTS) as EnvironmentName[];

describeWithTool('bicep', 'the deployment azd provisions (bicep snapshot of infra/main.bicep)', (bicep) => {
  let template: ArmTemplate;
  const deployments = new Map<EnvironmentName, Deployment>();
  const deployment = (name: EnvironmentName): Deployment => {
    const found = deployments.get(name);
    if (!found) throw new Error(`no snapshot for ${name}`);
    return found;
  };

  beforeAll(async () => {
    template = (await compileMain(bicep)).template;
    const results = await Promise.all(ALL.map(async (name) => [name, await snapshotFor(bicep, template, ENVIRONMENTS[name])] as const));
    for (const [name, result] of results) deployments.set(name, new Deployment(snapshotOrThrow(name, result), ENVIRONMENTS[name].principal.id));
  }, 180_000);

  it('saves the queries that chart spend by caller per day, the 429 rate and p95 upstream latency, and find usage the table missed', () => {
    const queries = deployment('managed identity, new Azure OpenAI (the defaults)').resources('Microsoft.OperationalInsights/workspaces/savedSearches');
    expect(queries.map((query) => query.name.split('/').pop()).sort()).toEqual([
      'imagegen-429-rate',
      'imagegen-spend-by-caller-per-day',
      'imagegen-unrecorded-usage',
      'imagegen-upstream-latency-p95',
    ]);
    for (const query of queries) {
      expect(query.properties?.['query']).toMatch(/where Message startswith "(ImageRequest|UsageNotRecorded) "/);
      expect(query.properties?.['category']).toBe('imagegen');
    }
    // The reconciliation query takes the record out of the line the app writes.
    const unrecorded = queries.find((query) => query.name.endsWith('/imagegen-unrecorded-usage'))?.properties?.['query'];
    const line = 'UsageNotRecorded {"requestId":"r1","caller":"user:ana"} (StorageError: Could not record the usage of request r1 in the usage table.)';
    const pattern = /extract\("(.*)", 1, Message\)/.exec(String(unrecorded))?.[1]?.replace(/\\\\/g, '\\');
    expect(new RegExp(pattern ?? '$^').exec(line)?.[1]).toBe('{"requestId":"r1","caller":"user:ana"}');
  });

  describe('role assignments', () => {
    const app = (role: string, scope: string): RoleGrant => ({ principal: 'app', principalType: 'ServicePrincipal', role, scope });
    const developer = (role: string, scope: string, principalType = 'User'): RoleGrant => ({ principal: 'developer', principalType, role, scope });
    const appAndDeveloper = (role: string, scope: string) => [app(role, scope), developer(role, scope)];
    const images = 'Microsoft.Storage/storageAccounts/stimg<token>';
    const containers = ['images', 'inbox', 'outputs', 'jobs'].map((name) => `${images}/blobServices/default/containers/${name}`);
    const storageGrants = [
      app('Storage Blob Data Owner', 'Microsoft.Storage/storageAccounts/stfn<token>'),
      app('Storage Queue Data Contributor', 'Microsoft.Storage/storageAccounts/stfn<token>'),
      app('Storage Table Data Contributor', 'Microsoft.Storage/storageAccounts/stfn<token>'),
      ...appAndDeveloper('Storage Blob Delegator', images),
      ...appAndDeveloper('Storage Queue Data Contributor', images),
      // The usage table (usage records and budget counters), the account's only table.
      ...appAndDeveloper('Storage Table Data Contributor', images),
      ...containers.flatMap((container) => appAndDeveloper('Storage Blob Data Contributor', container)),
      app('Monitoring Metrics Publisher', 'Microsoft.Insights/components/appi-<token>'),
      { principal: 'event-grid', principalType: 'ServicePrincipal', role: 'Storage Blob Data Contributor', scope: `${images}/blobServices/default/containers/eventgrid-deadletters` },
    ];
    const openAiGrants = appAndDeveloper('Cognitive Services OpenAI User', 'Microsoft.CognitiveServices/accounts/oai-<token>');
    // The app reads its secrets through Key Vault references; the developer creates the job-token secret (postprovision hook).
    const vaultGrants = [app('Key Vault Secrets User', 'Microsoft.KeyVault/vaults/kv-<token>'), developer('Key Vault Secrets Officer', 'Microsoft.KeyVault/vaults/kv-<token>')];
    const sorted = (grants: RoleGrant[]) => [...grants].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

    it('grants the least the app and the developer need: data roles per container, the host account only to the app', () => {
      expect(sorted(deployment('managed identity, new Azure OpenAI (the defaults)').roleGrants())).toEqual(sorted([...storageGrants, ...openAiGrants, ...vaultGrants]));
    });

    it('lets the app read the vault\'s secrets and the developer write them, in key mode as in every other', () => {
      expect(sorted(deployment('Key Vault key, new Azure OpenAI').roleGrants())).toEqual(sorted([...storageGrants, ...openAiGrants, ...vaultGrants]));
      expect(sorted(deployment('Key Vault key, existing endpoint').roleGrants())).toEqual(sorted([...storageGrants, ...vaultGrants]));
    });

    it('grants nothing on an existing Azure OpenAI resource, which it does not know', () => {
      expect(sorted(deployment('managed identity, existing endpoint').roleGrants())).toEqual(sorted([...storageGrants, ...vaultGrants]));
    });

    // The app calls every extra backend with its identity, and the developer runs the app locally against them.
    const extraBackendGrants = [
      ...appAndDeveloper('Cognitive Services OpenAI User', SHARED_ACCOUNT_ID),
      ...appAndDeveloper('Cognitive Services OpenAI User', 'Microsoft.CognitiveServices/accounts/oai-<token>-swedencentral'),
    ];

    it('grants the OpenAI role on the account of each extra backend, in its own resource group and subscription, and on the new account in another region', () => {
      expect(sorted(deployment('managed identity, new Azure OpenAI, three extra backends').roleGrants())).toEqual(
        sorted([...storageGrants, ...openAiGrants, ...vaultGrants, ...extraBackendGrants]),
      );
      expect(sorted(deployment('Key Vault key, existing endpoint, two extra backends').roleGrants())).toEqual(sorted([...storageGrants, ...vaultGrants, ...extraBackendGrants]));
    });

    it('names the role of an assignment in another subscription by that subscription\'s definition', () => {
      const elsewhere = deployment('managed identity, new Azure OpenAI, three extra backends')
        .resources('Microsoft.Authorization/roleAssignments')
        .filter((resource) => String(evaluate(resource.id)).startsWith(`${SHARED_ACCOUNT_ID}/providers/Microsoft.Authorization/roleAssignments/`));
      expect(elsewhere.map((resource) => (evaluate(resource.properties) as { roleDefinitionId: string }).roleDefinitionId)).toEqual([
        `/subscriptions/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d/providers/Microsoft.Authorization/roleDefinitions/${BUILT_IN_ROLES['Cognitive Services OpenAI User']}`,
        `/subscriptions/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d/providers/Microsoft.Authorization/roleDefinitions/${BUILT_IN_ROLES['Cognitive Services OpenAI User']}`,
      ]);
    });

    it('gives a pipeline its data roles as the service principal azd signed in with, whatever AZURE_PRINCIPAL_TYPE says', () => {
      const grants = deployment('a pipeline (service principal)').roleGrants().filter((grant) => grant.principal === 'developer');
      expect(grants.length).toBeGreaterThan(0);
      expect(new Set(grants.map((grant) => grant.principalType))).toEqual(new Set(['ServicePrincipal']));
    });

    it('grants every role of infra/roles.json in some deployment, and no other', () => {
      const used = new Set(ALL.flatMap((name) => deployment(name).roleGrants().map((grant) => grant.role)));
      expect([...used].sort()).toEqual(Object.keys(BUILT_IN_ROLES).sort());
    });

    it.each(ALL)('names every role assignment uniquely (%s)', (name) => {
      const ids = deployment(name)
        .resources('Microsoft.Authorization/roleAssignments')
        .map((assignment) => assignment.id);
      expect(new Set(ids).size).toBe(ids.length);
    });
  });

  describe('app settings', () => {
    it.each(ALL)('sets only settings src/config.ts reads (APP_SETTING_NAMES) or the Functions host owns (%s)', (name) => {
      const known = new Set<string>([...APP_SETTING_NAMES, ...HOST_OWNED.keys()]);
      const settings = Object.keys(deployment(name).appSettings());
      expect(settings.filter((setting) => !known.has(setting))).toEqual([]);
      expect([...HOST_OWNED.keys()].filter((setting) => !settings.includes(setting))).toEqual([]);
    });

    it('keeps the host-owned list apart from the settings the app reads', () => {
      expect([...HOST_OWNED.keys()].filter((name) => (APP_SETTING_NAMES as readonly string[]).includes(name))).toEqual([]);
    });

    it.each(ALL)('gives the app a configuration its own parser accepts in Azure, identity-based (%s)', (name) => {
      const deployed = deployment(name);
      const settings = deployed.runtimeSettings();
      const config = loadConfig(settings);
      const identity = deployed.only('Microsoft.ManagedIdentity/userAssignedIdentities');
      const images = deployed.only('Microsoft.Storage/storageAccounts', 'stimg');

      expect(config.managedIdentityClientId).toBe(settings['AZURE_CLIENT_ID']);
      expect(settings['AZURE_CLIENT_ID']).toBe(settings['AzureWebJobsStorage__clientId']);
      expect(identity.id).toContain(`/id-${deployed.resourceToken}`);
      expect(config.storage.connection).toEqual({
        kind: 'identity',
        blobServiceUri: `https://${images.name}.blob.core.windows.net`,
        queueServiceUri: `https://${images.name}.queue.core.windows.net`,
        tableServiceUri: `https://${images.name}.table.core.windows.net`,
      });
      expect(config.usage.table).toBe('usage');
      expect(config.openai.auth.mode).toBe(KEY_MODES.includes(name) ? 'key' : 'managed-identity');
      expect(config.jobs.tokenSecrets).toHaveLength(1);
      // In Azure, callbacks and trigger subscriptions answer 501 without it.
      expect(config.callbacks.signingSecret.kind).toBe('configured');
    });

    it('points the app at the Azure OpenAI account it creates, or at the existing endpoint, with the model deployed', () => {
      const created = loadConfig(deployment('managed identity, new Azure OpenAI (the defaults)').runtimeSettings());
      expect(created.openai.endpoint).toBe(`https://oai-${deployment('managed identity, new Azure OpenAI (the defaults)').resourceToken}.openai.azure.com`);
      expect([...created.openai.deployments]).toEqual([['gpt-image-2', 'gpt-image-2']]);

      const existing = loadConfig(deployment('managed identity, existing endpoint').runtimeSettings());
      expect(existing.openai.endpoint).toBe(EXISTING_ENDPOINT);
      expect([...existing.openai.deployments]).toEqual([['gpt-image-1.5', 'images']]);
      expect(existing.openai.defaultModel).toBe('gpt-image-1.5');
      expect(deployment('managed identity, existing endpoint').resources('Microsoft.CognitiveServices/accounts')).toEqual([]);
    });

    it('lists the extra backends in AZURE_OPENAI_BACKENDS as the app reads them: each one\'s endpoint, deployment, routing and the managed identity', () => {
      const deployed = deployment('managed identity, new Azure OpenAI, three extra backends');
      const main = `https://oai-${deployed.resourceToken}.openai.azure.com`;
      const regional = `https://oai-${deployed.resourceToken}-swedencentral.openai.azure.com`;
      const config = loadConfig(deployed.runtimeSettings());

      expect(config.openai.backends).toEqual([
        { name: `oai-${deployed.resourceToken}.openai.azure.com/gpt-image-2`, endpoint: main, deployment: 'gpt-image-2', model: 'gpt-image-2', auth: { mode: 'managed-identity' }, priority: 1, weight: 1 },
        {
          name: 'oai-shared-swc.openai.azure.com/img15',
          endpoint: 'https://oai-shared-swc.openai.azure.com',
          deployment: 'img15',
          model: 'gpt-image-1.5',
          auth: { mode: 'managed-identity' },
          priority: 2,
          weight: 1,
          quota: { unit: 'images', perMinute: 5 },
        },
        { name: `oai-${deployed.resourceToken}-swedencentral.openai.azure.com/gpt-image-2`, endpoint: regional, deployment: 'gpt-image-2', model: 'gpt-image-2', auth: { mode: 'managed-identity' }, priority: 1, weight: 2 },
        { name: 'local-1.5', endpoint: main, deployment: 'img15-local', model: 'gpt-image-1.5', auth: { mode: 'managed-identity' }, priority: 1, weight: 1 },
      ]);
      // The models the deployment serves, each by its first backend.
      expect([...config.openai.deployments]).toEqual([
        ['gpt-image-2', 'gpt-image-2'],
        ['gpt-image-1.5', 'img15-local'],
      ]);
      // What azd stores, for write-local-settings.mjs.
      expect(deployed.outputs()['AZURE_OPENAI_BACKENDS']).toBe(deployed.appSettings()['AZURE_OPENAI_BACKENDS']);
    });

    it('creates the new extra deployments: in the account created here, or in a new account of their region, key-less, each at its model\'s version', () => {
      const deployed = deployment('managed identity, new Azure OpenAI, three extra backends');
      const accounts = deployed.resources('Microsoft.CognitiveServices/accounts');
      expect(accounts.map((account) => [account.name, account.location, account.properties?.['disableLocalAuth']])).toEqual([
        [`oai-${deployed.resourceToken}`, 'eastus2', true],
        [`oai-${deployed.resourceToken}-swedencentral`, 'swedencentral', true],
      ]);
      const deployments = deployed.resources('Microsoft.CognitiveServices/accounts/deployments');
      expect(deployments.map((created) => [deployed.relative(created.id), created.properties?.['model'], created.sku])).toEqual([
        ['Microsoft.CognitiveServices/accounts/oai-<token>/deployments/gpt-image-2', { format: 'OpenAI', name: 'gpt-image-2', version: '2026-04-21' }, { name: 'GlobalStandard', capacity: 1 }],
        ['Microsoft.CognitiveServices/accounts/oai-<token>/deployments/img15-local', { format: 'OpenAI', name: 'gpt-image-1.5', version: '2025-12-16' }, { name: 'GlobalStandard', capacity: 1 }],
        ['Microsoft.CognitiveServices/accounts/oai-<token>-swedencentral/deployments/gpt-image-2', { format: 'OpenAI', name: 'gpt-image-2', version: '2026-04-21' }, { name: 'GlobalStandard', capacity: 1 }],
      ]);
    });

    it('calls the extra backends with the managed identity while the primary endpoint takes its key', () => {
      const deployed = deployment('Key Vault key, existing endpoint, two extra backends');
      const config = loadConfig(deployed.runtimeSettings());
      expect(config.openai.backends.map((backend) => [backend.endpoint, backend.deployment, backend.auth.mode])).toEqual([
        [EXISTING_ENDPOINT, 'images', 'key'],
        ['https://oai-shared-swc.openai.azure.com', 'img15', 'managed-identity'],
        [`https://oai-${deployed.resourceToken}-swedencentral.openai.azure.com`, 'gpt-image-2', 'managed-identity'],
      ]);
      // No account is created for the existing endpoint; the one new account is the extra backend's.
      expect(deployed.resources('Microsoft.CognitiveServices/accounts').map((account) => account.name)).toEqual([`oai-${deployed.resourceToken}-swedencentral`]);
    });

    it('leaves AZURE_OPENAI_BACKENDS empty without extra backends', () => {
      for (const name of ALL.filter((candidate) => !WITH_EXTRA_BACKENDS.includes(candidate))) {
        expect([name, deployment(name).appSettings()['AZURE_OPENAI_BACKENDS'] ?? '']).toEqual([name, '']);
      }
    });

    it.each(KEY_MODES)('hands the API key over only as a Key Vault reference to the secret it stores (%s)', (name) => {
      const deployed = deployment(name);
      const settings = deployed.appSettings();
      const secret = deployed.only('Microsoft.KeyVault/vaults/secrets');
      const [vault, secretName] = secret.name.split('/');

      expect(settings['AZURE_OPENAI_API_KEY']).toBe(`@Microsoft.KeyVault(SecretUri=https://${vault}.vault.azure.net/secrets/${secretName}/)`);
    });

    it.each(ALL)('hands JOB_TOKEN_SECRET and CALLBACK_SIGNING_SECRET over as references to the latest versions of the secrets the hook makes, which it never writes (%s)', (name) => {
      const deployed = deployment(name);
      const vault = deployed.only('Microsoft.KeyVault/vaults');
      const outputs = deployed.outputs();
      const written = deployed.resources('Microsoft.KeyVault/vaults/secrets').map((secret) => secret.name);

      for (const [setting, secret, output] of [
        ['JOB_TOKEN_SECRET', 'job-token-secret', 'JOB_TOKEN_SECRET_NAME'],
        ['CALLBACK_SIGNING_SECRET', 'callback-signing-secret', 'CALLBACK_SIGNING_SECRET_NAME'],
      ] as const) {
        // No version: a rotated secret is picked up without a deployment.
        expect(deployed.appSettings()[setting]).toBe(`@Microsoft.KeyVault(SecretUri=https://${vault.name}.vault.azure.net/secrets/${secret}/)`);
        // The postprovision hook creates it once; a secret resource here would write a new version on every `azd provision`.
        expect(written).not.toContain(`${vault.name}/${secret}`);
        // What the hook is told to make.
        expect(outputs[output]).toBe(secret);
      }
      expect(outputs).toMatchObject({ AZURE_KEY_VAULT_NAME: vault.name });
      // The platform resolves references with the app's identity, which has no system-assigned twin.
      expect(deployed.only('Microsoft.Web/sites').properties?.['keyVaultReferenceIdentity']).toBe(deployed.only('Microsoft.ManagedIdentity/userAssignedIdentities').id);
    });

    it('keeps the API key out of the settings in managed identity mode', () => {
      for (const name of ALL.filter((candidate) => !KEY_MODES.includes(candidate))) {
        expect([name, deployment(name).appSettings()['AZURE_OPENAI_API_KEY']]).toEqual([name, undefined]);
      }
    });

    it('names the containers and the job queue as the config defaults do, and creates them', () => {
      const deployed = deployment('managed identity, new Azure OpenAI (the defaults)');
      const config = loadConfig(deployed.runtimeSettings());
      const defaults = loadConfig({ AZURE_OPENAI_ENDPOINT: 'https://x.openai.azure.com', AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-2', ImagesStorage: 'UseDevelopmentStorage=true' });
      const images = deployed.only('Microsoft.Storage/storageAccounts', 'stimg').name;

      expect(config.storage.containers).toEqual(defaults.storage.containers);
      expect(config.storage.queues).toEqual(defaults.storage.queues);
      const containers = deployed.resources('Microsoft.Storage/storageAccounts/blobServices/containers').map((container) => container.name);
      for (const container of Object.values(config.storage.containers)) expect(containers).toContain(`${images}/default/${container}`);
      const queues = deployed.resources('Microsoft.Storage/storageAccounts/queueServices/queues').map((queue) => queue.name);
      expect(queues).toEqual(Object.values(config.storage.queues).map((queue) => `${images}/default/${queue}`));
    });

    describe('and the functions the app registers', () => {
      const registrations = captureAppFunctions();

      it('sets every app setting a binding refers to with %NAME%', () => {
        const settings = deployment('managed identity, new Azure OpenAI (the defaults)').appSettings();
        const missing = registrations.flatMap((registration) =>
          settingReferences(registration)
            .filter((name) => settings[name] === undefined)
            .map((name) => `${registration.name}: %${name}%`),
        );
        expect(missing).toEqual([]);
      });

      it('gives every queue and blob trigger connection identity-based settings for its service', () => {
        const deployed = deployment('managed identity, new Azure OpenAI (the defaults)');
        const settings = deployed.appSettings();
        const clientId = settings['AZURE_CLIENT_ID'];
        const problems: string[] = [];
        for (const { name, binding } of [...triggered(registrations, 'queueTrigger'), ...triggered(registrations, 'blobTrigger')]) {
          const connection = typeof binding['connection'] === 'string' ? binding['connection'] : 'AzureWebJobsStorage';
          const service = String(binding['type']).toLowerCase() === 'queuetrigger' ? 'queueServiceUri' : 'blobServiceUri';
          const expected: Record<string, string | undefined> = { [service]: undefined, credential: 'managedidentity', clientId };
          for (const [suffix, value] of Object.entries(expected)) {
            const actual = settings[`${connection}__${suffix}`];
            if (actual === undefined || (value !== undefined && actual !== value)) problems.push(`${name}: ${connection}__${suffix} is ${actual ?? 'not set'}`);
          }
        }
        expect(problems).toEqual([]);
      });
    });
  });

  describe('a rotation of the job-token secret', () => {
    // README, Security: the retired version stays readable as JOB_TOKEN_PREVIOUS_SECRETS for a while.
    const retired = '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/job-token-secret/0f1e2d3c4b5a69788796a5b4c3d2e1f0)';
    let rotating: Deployment;
    beforeAll(async () => {
      const environment = azdEnvironment({ JOB_TOKEN_PREVIOUS_SECRETS: retired });
      rotating = new Deployment(snapshotOrThrow('rotating', await snapshotFor(bicep, template, environment)), environment.principal.id);
    }, 120_000);

    it('sets JOB_TOKEN_PREVIOUS_SECRETS from the azd environment, so that `azd provision` keeps it instead of wiping it', () => {
      expect(rotating.appSettings()['JOB_TOKEN_PREVIOUS_SECRETS']).toBe(retired);
      expect(loadConfig(rotating.runtimeSettings()).jobs.tokenSecrets).toHaveLength(2);
    });

    it('sets no JOB_TOKEN_PREVIOUS_SECRETS otherwise', () => {
      for (const name of ALL) expect([name, deployment(name).appSettings()['JOB_TOKEN_PREVIOUS_SECRETS']]).toEqual([name, undefined]);
    });
  });

  describe('the Flex Consumption Function App', () => {
    it('runs Node 22 on an FC1 Linux plan, pulling its package from the host account with its identity', () => {
      const deployed = deployment('managed identity, new Azure OpenAI (the defaults)');
      const plan = deployed.only('Microsoft.Web/serverfarms');
      const site = deployed.only('Microsoft.Web/sites');
      const identity = deployed.only('Microsoft.ManagedIdentity/userAssignedIdentities');
      const host = deployed.only('Microsoft.Storage/storageAccounts', 'stfn');

      expect(plan).toMatchObject({ sku: { name: 'FC1', tier: 'FlexConsumption' }, properties: { reserved: true } });
      expect(site).toMatchObject({
        kind: 'functionapp,linux',
        identity: { type: 'UserAssigned', userAssignedIdentities: { [identity.id]: {} } },
        tags: { 'azd-env-name': 'dev', 'azd-service-name': 'api' },
        properties: { serverFarmId: plan.id, httpsOnly: true },
      });
      expect(Object.keys(site.identity?.['userAssignedIdentities'] as object)).toEqual([identity.id]);
      expect(site.properties?.['keyVaultReferenceIdentity']).toBe(identity.id);
      expect(evaluate(site.properties?.['functionAppConfig'])).toEqual({
        deployment: {
          storage: {
            type: 'blobContainer',
            value: `https://${host.name}.blob.core.windows.net/app-package`,
            authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identity.id },
          },
        },
        scaleAndConcurrency: { maximumInstanceCount: 100, instanceMemoryMB: 2048 },
        runtime: { name: 'node', version: '22' },
      });
      expect(deployed.resources('Microsoft.Storage/storageAccounts/blobServices/containers').map((container) => container.name)).toContain(`${host.name}/default/app-package`);
    });

    it('sets none of the settings Flex Consumption rejects or ignores', () => {
      for (const name of ALL) {
        const settings = Object.keys(deployment(name).appSettings());
        expect([name, settings.filter((setting) => /^(FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT\w*|WEBSITE_NODE_DEFAULT_VERSION)$/.test(setting))]).toEqual([name, []]);
      }
    });

    it('turns publishing passwords off (azd deploys with Entra tokens)', () => {
      const policies = deployment('managed identity, new Azure OpenAI (the defaults)').resources('Microsoft.Web/sites/basicPublishingCredentialsPolicies');
      expect(policies.map((policy) => [policy.name.split('/')[1], policy.properties])).toEqual([
        ['ftp', { allow: false }],
        ['scm', { allow: false }],
      ]);
    });
  });

  describe('Event Grid', () => {
    it('puts a system topic with its own identity on the images account, and tells the postdeploy hook where it is', () => {
      const deployed = deployment('managed identity, new Azure OpenAI (the defaults)');
      const topic = deployed.only('Microsoft.EventGrid/systemTopics');
      const images = deployed.only('Microsoft.Storage/storageAccounts', 'stimg');
      const outputs = deployed.outputs();

      expect(topic).toMatchObject({ identity: { type: 'SystemAssigned' }, properties: { source: images.id, topicType: 'Microsoft.Storage.StorageAccounts' } });
      expect(outputs).toMatchObject({
        EVENTGRID_SYSTEM_TOPIC_ID: topic.id,
        EVENTGRID_SYSTEM_TOPIC_NAME: topic.name,
        EVENTGRID_DEADLETTER_CONTAINER: 'eventgrid-deadletters',
        AZURE_STORAGE_ACCOUNT_ID: images.id,
        INBOX_CONTAINER: 'inbox',
        INBOX_FUNCTION_NAME: 'inbox-edit',
      });
      // The subscription itself needs the running app's webhook key: the postdeploy hook makes it.
      expect(deployed.resources('Microsoft.EventGrid/systemTopics/eventSubscriptions')).toEqual([]);
    });
  });

  it.each(ALL)('uses only GA API versions (%s)', (name) => {
    const previews = deployment(name).snapshot.predictedResources.filter((resource) => !/^\d{4}-\d{2}-\d{2}$/.test(resource.apiVersion));
    expect(previews.map((resource) => `${resource.type}@${resource.apiVersion}`)).toEqual([]);
  });

  describe('secrets and shared keys', () => {
    it.each(ALL)('refuses shared keys and anonymous access on every storage account (%s)', (name) => {
      for (const account of deployment(name).resources('Microsoft.Storage/storageAccounts')) {
        expect([account.name, account.properties]).toEqual([
          account.name,
          expect.objectContaining({ allowSharedKeyAccess: false, allowBlobPublicAccess: false, supportsHttpsTrafficOnly: true, minimumTlsVersion: 'TLS1_2' }),
        ]);
      }
      for (const container of deployment(name).resources('Microsoft.Storage/storageAccounts/blobServices/containers')) {
        expect([container.name, container.properties]).toEqual([container.name, { publicAccess: 'None' }]);
      }
    });

    it('accepts Entra tokens only on Application Insights, and on Azure OpenAI unless key mode needs its key', () => {
      for (const name of ALL) {
        const deployed = deployment(name);
        expect([name, deployed.only('Microsoft.Insights/components').properties?.['DisableLocalAuth']]).toEqual([name, true]);
        for (const account of deployed.resources('Microsoft.CognitiveServices/accounts')) {
          // Only the main account takes a key, in key mode; extra backends' accounts never do.
          const main = account.name === `oai-${deployed.resourceToken}`;
          expect([name, account.name, account.properties?.['disableLocalAuth']]).toEqual([name, account.name, !(main && KEY_MODES.includes(name))]);
          expect([name, account.properties?.['customSubDomainName']]).toEqual([name, account.name]);
        }
        expect([name, deployed.appSettings()['APPLICATIONINSIGHTS_AUTHENTICATION_STRING']]).toEqual([name, `ClientId=${deployed.appSettings()['AZURE_CLIENT_ID']};Authorization=AAD`]);
      }
    });

    it.each(ALL)('puts no key, SAS or password in an app setting or an output (%s)', (name) => {
      const deployed = deployment(name);
      const visible = [...allStrings(deployed.only('Microsoft.Web/sites/config').properties), ...allStrings(deployed.snapshot.outputs)];
      expect(visible.filter((value) => /AccountKey=|SharedAccessSignature=|[?&]sig=|listKeys\(|password/i.test(value) || value.includes(EXISTING_KEY))).toEqual([]);
    });

    it('reads the key of the Azure OpenAI account it creates only into the Key Vault secret', () => {
      const deployed = deployment('Key Vault key, new Azure OpenAI');
      const withListKeys = deployed.snapshot.predictedResources.filter((resource) => allStrings(resource).some((value) => /listKeys\(/i.test(value)));
      expect(withListKeys.map((resource) => resource.type)).toEqual(['Microsoft.KeyVault/vaults/secrets']);
      expect(String(withListKeys[0]?.properties?.['value'])).toContain(`listKeys('${deployed.only('Microsoft.CognitiveServices/accounts').id}'`);
    });

    it('passes the key given for an existing endpoint only to the Key Vault secret, as a secure parameter', () => {
      const deployed = deployment('Key Vault key, existing endpoint');
      // Snapshots, like deployment history, never show a @secure() value: only where it goes.
      expect(allStrings(deployed.snapshot).filter((value) => value.includes(EXISTING_KEY))).toEqual([]);
      const using = deployed.snapshot.predictedResources.filter((resource) => allStrings(resource).some((value) => value.includes("parameters('openAiApiKey')")));
      expect(using.map((resource) => resource.type)).toEqual(['Microsoft.KeyVault/vaults/secrets']);
    });

    it.each(ALL)('keeps the Key Vault in RBAC mode with soft delete (%s)', (name) => {
      const vault = deployment(name).only('Microsoft.KeyVault/vaults');
      expect(vault.properties).toMatchObject({ enableRbacAuthorization: true, enableSoftDelete: true });
    });
  });
});

function snapshotOrThrow(name: string, result: SnapshotResult) {
  if (!result.ok) throw new Error(`bicep snapshot failed for "${name}":\n${result.run.stderr}${result.run.stdout}`);
  return result.snapshot;
}
