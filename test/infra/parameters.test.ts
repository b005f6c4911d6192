import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { IMAGE_MODELS } from '../../src/domain/image-models';
import { describeWithTool } from '../helpers/system-tools';
import type { ArmTemplate, BicepRun, SnapshotResult } from './bicep-cli';
import { azdEnvironment, azdParameters, buildParams, compileMain, INFRA_DIR, lintInfra, PROJECT_ROOT, snapshotFor } from './bicep-cli';

/**
 * The model versions Azure OpenAI deploys as Global Standard (Azure OpenAI model catalogue),
 * written here independently of infra/main.bicep.
 */
const MODEL_VERSIONS: Readonly<Record<string, string>> = {
  'gpt-image-2': '2026-04-21',
  'gpt-image-1.5': '2025-12-16',
  'gpt-image-1-mini': '2025-10-06',
  'gpt-image-1': '2025-04-15',
};

/** What someone might paste into JOB_TOKEN_PREVIOUS_SECRETS instead of a Key Vault reference. */
const RETIRED_SECRET = 'retired-job-token-secret-0123456789abcdefghij';

const parametersFile = JSON.parse(readFileSync(join(INFRA_DIR, 'main.parameters.json'), 'utf8')) as { parameters: Record<string, { value: string }> };

/** Bicep's diagnostics (errors, warnings, linter findings), one per line. */
const diagnostics = (run: BicepRun) => run.stderr.split('\n').filter((line) => line.trim() !== '');

/** An existing deployment in another team's account, as `azd env set AZURE_OPENAI_EXTRA_BACKENDS` takes it. */
const SHARED_DEPLOYMENT = {
  kind: 'existing',
  accountId: '/subscriptions/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d/resourceGroups/rg-shared-ai/providers/Microsoft.CognitiveServices/accounts/oai-shared-swc',
  deployment: 'img15',
  model: 'gpt-image-1.5',
};
const extraBackends = (...backends: object[]) => ({ AZURE_OPENAI_EXTRA_BACKENDS: JSON.stringify(backends) });

/** The app registration callers sign in to, as `azd env set AZURE_AUTH_CLIENT_ID` gives it. */
const SIGN_IN_CLIENT_ID = '3f1c9a52-7d4e-4b8a-9c61-2e5f8a7b9d10';

describeWithTool('bicep', 'infra/main.bicep compiled by the Bicep CLI', (bicep) => {
  let template: ArmTemplate;
  let build: BicepRun;

  beforeAll(async () => {
    ({ template, run: build } = await compileMain(bicep));
  }, 120_000);

  it('compiles with no error and no warning', () => {
    expect(diagnostics(build)).toEqual([]);
  });

  it('passes the linter with every rule bicepconfig.json turns on, in every file', async () => {
    const lint = await lintInfra(bicep);
    expect(diagnostics(lint)).toEqual([]);
    expect(lint.status).toBe(0);
  }, 120_000);

  it('makes the analyzer rules that guard secrets, dead code, hard-coded URLs and dependencies errors', () => {
    const config = JSON.parse(readFileSync(join(PROJECT_ROOT, 'bicepconfig.json'), 'utf8')) as { analyzers: { core: { enabled: boolean; rules: Record<string, { level: string }> } } };
    expect(config.analyzers.core.enabled).toBe(true);
    const rules = config.analyzers.core.rules;
    for (const rule of [
      'secure-parameter-default',
      'secure-params-in-nested-deploy',
      'secure-secrets-in-params',
      'outputs-should-not-contain-secrets',
      'use-secure-value-for-secure-inputs',
      'no-unused-params',
      'no-unused-vars',
      'no-unused-existing-resources',
      'no-unused-imports',
      'no-hardcoded-env-urls',
      'no-hardcoded-location',
      'no-unnecessary-dependson',
      'use-user-defined-types',
    ]) {
      expect([rule, rules[rule]?.level]).toEqual([rule, 'error']);
    }
  });

  describe('infra/main.parameters.json, as azd fills it in', () => {
    it('maps only parameters main.bicep declares, covers every one without a default, and holds only azd environment references', () => {
      const declared = Object.keys(template.parameters);
      const mapped = Object.keys(parametersFile.parameters);
      expect(mapped.filter((name) => !declared.includes(name))).toEqual([]);
      expect(declared.filter((name) => template.parameters[name]?.defaultValue === undefined && !mapped.includes(name))).toEqual([]);
      for (const [name, { value }] of Object.entries(parametersFile.parameters)) {
        expect([name, value]).toEqual([name, expect.stringMatching(/^\$\{[A-Z0-9_]+(=[^}]*)?\}$/)]);
      }
    });

    it('feeds an output back in only as the same parameter it came from', () => {
      // azd stores outputs in the environment it reads parameters from. AZURE_OPENAI_ENDPOINT (an
      // output) mapped to openAiEndpoint would turn "create Azure OpenAI" into "use an existing
      // endpoint" on the second `azd provision`.
      const roundTrips = Object.entries(parametersFile.parameters)
        .map(([param, { value }]) => [param, /^\$\{([A-Z0-9_]+)/.exec(value)?.[1] ?? ''] as const)
        .filter(([, variable]) => variable in template.outputs);
      for (const [param, variable] of roundTrips) {
        expect([variable, template.outputs[variable]?.value]).toEqual([variable, `[parameters('${param}')]`]);
      }
      expect(parametersFile.parameters['openAiEndpoint']?.value).toBe('${AZURE_OPENAI_EXISTING_ENDPOINT}');
    });

    it('lets azd fill the principal type from the signed-in principal (a value set with azd env set is not read)', () => {
      expect(parametersFile.parameters['principalType']?.value).toBe('${AZURE_PRINCIPAL_TYPE}');
      const pipeline = azdParameters(azdEnvironment({ AZURE_PRINCIPAL_TYPE: 'User' }, { id: 'sp', type: 'ServicePrincipal' }), template);
      expect(pipeline['principalType']).toBe('ServicePrincipal');
    });

    it.each([
      ['the defaults', {}],
      ['key mode', { AZURE_OPENAI_AUTH: 'key' }],
      ['an existing endpoint', { AZURE_OPENAI_EXISTING_ENDPOINT: 'https://contoso.openai.azure.com', AZURE_OPENAI_DEPLOYMENT_NAME: 'images' }],
      ['every knob turned', { AZURE_OPENAI_LOCATION: 'swedencentral', AZURE_OPENAI_MODEL: 'gpt-image-1-mini', AZURE_OPENAI_DEPLOYMENT_SKU: 'DataZoneStandard', AZURE_OPENAI_DEPLOYMENT_CAPACITY: '3', FUNCTIONS_MAX_INSTANCES: '40', FUNCTIONS_INSTANCE_MEMORY_MB: '4096' }],
      ['extra backends', extraBackends(SHARED_DEPLOYMENT, { kind: 'new', location: 'westus3', model: 'gpt-image-2', sku: 'DataZoneStandard', capacity: 2, version: '2026-04-21', priority: 2, weight: 3, requestsPerMinute: 10, name: 'west' })],
    ])('builds with bicep build-params for %s, with no diagnostic', async (_, values) => {
      const run = await buildParams(bicep, azdParameters(azdEnvironment(values), template));
      expect(diagnostics(run)).toEqual([]);
      expect(run.status).toBe(0);
    }, 120_000);
  });

  describe('AZURE_OPENAI_EXTRA_BACKENDS, as azd passes it', () => {
    it('is an array parameter, empty when the variable is unset or empty', () => {
      expect(template.parameters['openAiExtraBackends']?.type).toBe('array');
      expect(azdParameters(azdEnvironment(), template)['openAiExtraBackends']).toEqual([]);
      expect(azdParameters(azdEnvironment({ AZURE_OPENAI_EXTRA_BACKENDS: '' }), template)['openAiExtraBackends']).toEqual([]);
      expect(azdParameters(azdEnvironment(extraBackends(SHARED_DEPLOYMENT)), template)['openAiExtraBackends']).toEqual([SHARED_DEPLOYMENT]);
    });

    it('stops azd when it is not JSON', () => {
      expect(() => azdParameters(azdEnvironment({ AZURE_OPENAI_EXTRA_BACKENDS: "[{kind: 'existing'}]" }), template)).toThrow("parameter 'openAiExtraBackends' (array) is not valid JSON");
    });
  });

  describe('parameters that used to stop a deployment', () => {
    const results = new Map<string, SnapshotResult>();
    const cases: Record<string, Record<string, string>> = {
      ...Object.fromEntries(Object.keys(MODEL_VERSIONS).map((model) => [`model ${model}`, { AZURE_OPENAI_MODEL: model }])),
      'model version given': { AZURE_OPENAI_MODEL: 'gpt-image-1', AZURE_OPENAI_MODEL_VERSION: '2025-01-01' },
      'one instance at most': { FUNCTIONS_MAX_INSTANCES: '1' },
      'no instance': { FUNCTIONS_MAX_INSTANCES: '0' },
      'a region without Flex Consumption': { AZURE_LOCATION: 'brazilsoutheast' },
      'key mode, existing endpoint, no key': { AZURE_OPENAI_AUTH: 'key', AZURE_OPENAI_EXISTING_ENDPOINT: 'https://contoso.openai.azure.com' },
      'a retired job-token secret given as itself': { JOB_TOKEN_PREVIOUS_SECRETS: RETIRED_SECRET },
      'sign-in required': { AZURE_CALLER_AUTH: 'entra', AZURE_AUTH_CLIENT_ID: SIGN_IN_CLIENT_ID },
      'sign-in or keys': { AZURE_CALLER_AUTH: 'key+entra', AZURE_AUTH_CLIENT_ID: SIGN_IN_CLIENT_ID },
      'sign-in without an app registration': { AZURE_CALLER_AUTH: 'entra' },
      'an extra backend beside an existing endpoint, without a region': {
        AZURE_OPENAI_EXISTING_ENDPOINT: 'https://contoso.openai.azure.com',
        ...extraBackends({ kind: 'new', model: 'gpt-image-2' }),
      },
      'an extra backend whose account id is not one': extraBackends({ ...SHARED_DEPLOYMENT, accountId: '/subscriptions/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d/resourceGroups/rg-shared-ai' }),
      'an extra backend with a misspelt field': extraBackends({ ...SHARED_DEPLOYMENT, imagePerMinute: 5 }),
      'an extra backend of a model the app does not know': extraBackends({ ...SHARED_DEPLOYMENT, model: 'dall-e-3' }),
      'an extra deployment named like the main one': extraBackends({ kind: 'new', model: 'gpt-image-2' }),
      'one existing deployment listed twice': extraBackends(SHARED_DEPLOYMENT, { ...SHARED_DEPLOYMENT, priority: 2 }),
      'an extra backend with two quotas': extraBackends({ ...SHARED_DEPLOYMENT, imagesPerMinute: 5, requestsPerMinute: 10 }),
    };
    const result = (name: string): SnapshotResult => {
      const found = results.get(name);
      if (!found) throw new Error(`no snapshot for ${name}`);
      return found;
    };
    const predicted = (name: string) => {
      const found = result(name);
      if (!found.ok) throw new Error(`bicep snapshot failed for ${name}:\n${found.run.stderr}`);
      return found.snapshot.predictedResources;
    };

    beforeAll(async () => {
      const snapshots = await Promise.all(Object.entries(cases).map(async ([name, values]) => [name, await snapshotFor(bicep, template, azdEnvironment(values))] as const));
      for (const [name, snapshot] of snapshots) results.set(name, snapshot);
    }, 300_000);

    it('offers exactly the image models the app knows, and deploys each at its own version when only the model is chosen', () => {
      expect([...(template.parameters['openAiModelName']?.allowedValues ?? [])].sort()).toEqual(Object.keys(MODEL_VERSIONS).sort());
      // The extra backends' models, a type of their own (imported from types.bicep, so named `_<n>.imageModel`).
      const imageModel = Object.entries(template.definitions ?? {}).find(([name]) => name.split('.').pop() === 'imageModel')?.[1];
      expect([...(imageModel?.allowedValues ?? [])].sort()).toEqual(Object.keys(MODEL_VERSIONS).sort());
      for (const model of Object.keys(MODEL_VERSIONS)) {
        expect(IMAGE_MODELS).toContain(model);
        const deployment = predicted(`model ${model}`).find((resource) => resource.type === 'Microsoft.CognitiveServices/accounts/deployments');
        expect([model, deployment?.properties?.['model'], deployment?.sku]).toEqual([
          model,
          { format: 'OpenAI', name: model, version: MODEL_VERSIONS[model] },
          { name: 'GlobalStandard', capacity: 1 },
        ]);
      }
    });

    it('deploys the model version given in AZURE_OPENAI_MODEL_VERSION', () => {
      const deployment = predicted('model version given').find((resource) => resource.type === 'Microsoft.CognitiveServices/accounts/deployments');
      expect(deployment?.properties?.['model']).toEqual({ format: 'OpenAI', name: 'gpt-image-1', version: '2025-01-01' });
    });

    it('accepts a maximum of one instance, the lowest Flex Consumption allows, and refuses none', () => {
      const site = predicted('one instance at most').find((resource) => resource.type === 'Microsoft.Web/sites');
      expect((site?.properties?.['functionAppConfig'] as { scaleAndConcurrency: unknown }).scaleAndConcurrency).toEqual({ maximumInstanceCount: 1, instanceMemoryMB: 2048 });
      expect(result('no instance').ok).toBe(false);
    });

    it('offers azd only regions that run Flex Consumption', () => {
      const location = template.parameters['location'];
      expect(location?.metadata).toMatchObject({ azd: { type: 'location' } });
      expect(location?.allowedValues).toEqual(expect.arrayContaining(['eastus2', 'swedencentral', 'westeurope', 'australiaeast']));
      const refused = result('a region without Flex Consumption');
      expect(refused.ok).toBe(false);
      expect(refused.run.stderr).toContain('brazilsoutheast');
      // Azure OpenAI has its own region parameter, free of that list.
      expect(template.parameters['openAiLocation']?.allowedValues).toBeUndefined();
    });

    it('turns App Service Authentication on for the app registration when callers sign in, and tells the app', () => {
      const auth = (name: string) => predicted(name).find((resource) => resource.type === 'Microsoft.Web/sites/config' && resource.name.endsWith('/authsettingsV2'));
      const settings = (name: string) => predicted(name).find((resource) => resource.type === 'Microsoft.Web/sites/config' && resource.name.endsWith('/appsettings'))?.properties;
      expect(auth('sign-in required')?.properties).toMatchObject({
        platform: { enabled: true },
        // The app refuses unsigned image calls itself: job links, the Event Grid webhook and health stay reachable.
        globalValidation: { requireAuthentication: false, unauthenticatedClientAction: 'AllowAnonymous' },
        identityProviders: { azureActiveDirectory: { enabled: true, registration: { clientId: SIGN_IN_CLIENT_ID }, validation: { allowedAudiences: [`api://${SIGN_IN_CLIENT_ID}`, SIGN_IN_CLIENT_ID] } } },
      });
      expect(settings('sign-in required')).toMatchObject({ CALLER_AUTH: 'entra' });
      expect(auth('sign-in or keys')?.properties).toMatchObject({ identityProviders: { azureActiveDirectory: { enabled: true } } });
      expect(settings('sign-in or keys')).toMatchObject({ CALLER_AUTH: 'key+entra' });
      expect(auth('one instance at most')).toBeUndefined();
      const refused = result('sign-in without an app registration');
      expect(refused.ok).toBe(false);
      expect(refused.run.stderr).toContain('azd env set AZURE_AUTH_CLIENT_ID');
    });

    it('refuses extra backends it could not deploy or the app would refuse, saying which and why', () => {
      const refusal = (name: string) => {
        const refused = result(name);
        expect([name, refused.ok]).toEqual([name, false]);
        return refused.run.stderr;
      };
      expect(refusal('an extra backend beside an existing endpoint, without a region')).toContain('AZURE_OPENAI_EXTRA_BACKENDS[0] is a new deployment without a location');
      expect(refusal('an extra backend whose account id is not one')).toContain('AZURE_OPENAI_EXTRA_BACKENDS[0].accountId must be the resource id of an Azure OpenAI account');
      expect(refusal('an extra backend with a misspelt field')).toContain('imagePerMinute');
      expect(refusal('an extra backend of a model the app does not know')).toContain('dall-e-3');
      expect(refusal('an extra deployment named like the main one')).toContain('AZURE_OPENAI_EXTRA_BACKENDS lists a deployment twice');
      expect(refusal('one existing deployment listed twice')).toContain('AZURE_OPENAI_EXTRA_BACKENDS lists a deployment twice');
      expect(refusal('an extra backend with two quotas')).toContain('AZURE_OPENAI_EXTRA_BACKENDS[0] gives imagesPerMinute and requestsPerMinute');
    });

    it('stops key mode with an existing endpoint and no key, saying how to give it', () => {
      const refused = result('key mode, existing endpoint, no key');
      expect(refused.ok).toBe(false);
      expect(refused.run.stderr).toContain('azd env set-secret AZURE_OPENAI_EXISTING_API_KEY');
    });

    it('refuses a retired job-token secret that is not a Key Vault reference, which the deployment history would keep', () => {
      const refused = result('a retired job-token secret given as itself');
      expect(refused.ok).toBe(false);
      expect(refused.run.stderr).toContain('JOB_TOKEN_PREVIOUS_SECRETS must be a Key Vault reference');
      expect(refused.run.stderr + refused.run.stdout).not.toContain(RETIRED_SECRET);
    });
  });
});
