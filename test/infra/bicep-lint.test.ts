import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { bicepFiles, bracketProblems, INFRA_DIR, modulePaths, params, readInfra, resourceTypes, statementNamed, statementsOf } from './bicep';

const files = bicepFiles();
const main = readInfra('main.bicep');

describe('Bicep files (offline lint; the compiler cannot run here)', () => {
  it.each(files)('%s has balanced brackets outside strings and comments', (file) => {
    expect(bracketProblems(readInfra(file))).toEqual([]);
  });

  it('references only modules that exist, and every module file is used', () => {
    const referenced = new Set<string>();
    for (const file of files) {
      for (const path of modulePaths(readInfra(file))) {
        const target = join(dirname(join(INFRA_DIR, file)), path);
        expect([file, path, existsSync(target)]).toEqual([file, path, true]);
        referenced.add(target);
      }
    }
    const unused = files.filter((file) => file !== 'main.bicep' && !referenced.has(join(INFRA_DIR, file)));
    expect(unused).toEqual([]);
  });

  it('passes each module only the params it declares, and every param it requires', () => {
    for (const statement of statementsOf(main, 'module')) {
      const path = /^'([^']+)'/.exec(statement.rest)?.[1] ?? '';
      const declared = params(readInfra(path));
      const paramsBlock = /\n {2}params: \{\n([\s\S]*?)\n {2}\}/.exec(statement.rest)?.[1] ?? '';
      const passed = [...paramsBlock.matchAll(/^ {4}(\w+):/gm)].map((match) => match[1] ?? '');
      expect([statement.name, passed.filter((name) => !declared.some((param) => param.name === name))]).toEqual([statement.name, []]);
      const required = declared.filter((param) => param.defaultText === undefined).map((param) => param.name);
      expect([statement.name, required.filter((name) => !passed.includes(name))]).toEqual([statement.name, []]);
    }
  });

  it('maps main.parameters.json to params of main.bicep, covering every param without a default', () => {
    const parametersFile = JSON.parse(readFileSync(join(INFRA_DIR, 'main.parameters.json'), 'utf8')) as { parameters: Record<string, { value: unknown }> };
    const declared = params(main);
    const mapped = Object.keys(parametersFile.parameters);
    expect(mapped.filter((name) => !declared.some((param) => param.name === name))).toEqual([]);
    expect(declared.filter((param) => param.defaultText === undefined && !mapped.includes(param.name)).map((param) => param.name)).toEqual([]);
    // Only azd environment references, never literal values (secrets included).
    for (const [name, { value }] of Object.entries(parametersFile.parameters)) {
      expect([name, value]).toEqual([name, expect.stringMatching(/^\$\{[A-Z0-9_]+(=[^}]*)?\}$/)]);
    }
  });

  it('feeds an output back in only as the same parameter it came from', () => {
    // azd stores outputs in the environment it reads parameters from. AZURE_OPENAI_ENDPOINT (an
    // output) mapped to openAiEndpoint would turn "create Azure OpenAI" into "use an existing
    // endpoint" on the second `azd provision`; a round trip is safe only for the param's own value.
    const parametersFile = JSON.parse(readFileSync(join(INFRA_DIR, 'main.parameters.json'), 'utf8')) as { parameters: Record<string, { value: string }> };
    const outputs = new Map(statementsOf(main, 'output').map((output) => [output.name, output.rest.replace(/^\w+\s*=\s*/, '')]));
    const roundTrips = Object.entries(parametersFile.parameters)
      .map(([param, { value }]) => [param, /^\$\{([A-Z0-9_]+)/.exec(value)?.[1] ?? ''] as const)
      .filter(([, variable]) => outputs.has(variable));
    for (const [param, variable] of roundTrips) expect([variable, outputs.get(variable)]).toEqual([variable, param]);
    expect(parametersFile.parameters['openAiEndpoint']?.value).toBe('${AZURE_OPENAI_EXISTING_ENDPOINT}');
  });

  it.each(files)('%s marks secret-looking params @secure()', (file) => {
    for (const param of params(readInfra(file)).filter((candidate) => /key|secret|password|token/i.test(candidate.name) && !/(Name|Uri|Id)$/.test(candidate.name))) {
      expect([param.name, param.decorators]).toEqual([param.name, expect.stringContaining('@secure()')]);
    }
  });

  it.each(files)('%s writes no credential', (file) => {
    const text = readInfra(file);
    expect(text).not.toMatch(/AccountKey=|SharedAccessSignature=|[?&]sig=|InstrumentationKey=|password\s*:\s*'/i);
    // A key may be read (listKeys) only where it is stored in Key Vault.
    if (file !== 'modules/key-vault.bicep') expect(text).not.toMatch(/listKeys\(|listkeys\(/i);
    expect(statementsOf(text, 'output').filter((output) => /key|secret|password/i.test(output.name) && !/(VAULT|Uri|Name)/.test(output.name))).toEqual([]);
  });

  it.each(files)('%s uses GA API versions', (file) => {
    for (const resource of resourceTypes(readInfra(file))) {
      expect([resource.type, resource.apiVersion]).toEqual([resource.type, expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/)]);
    }
  });

  it('keeps Flex Consumption essentials: FC1 plan, Linux, Node 22, identity-based package and Key Vault references', () => {
    const app = readInfra('modules/function-app.bicep');
    expect(app).toMatch(/name: 'FC1'\s+tier: 'FlexConsumption'/);
    expect(app).toContain("kind: 'functionapp,linux'");
    expect(app).toMatch(/runtime: \{\s+name: 'node'\s+version: '22'/);
    expect(app).toMatch(/type: 'UserAssignedIdentity'\s+userAssignedIdentityResourceId: identityId/);
    expect(app).toContain('keyVaultReferenceIdentity: identityId');
    expect(app).toContain("'azd-service-name': 'api'");
    // Settings the Flex plan rejects or ignores.
    expect(main).not.toMatch(/FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT/);
  });

  it('turns off shared keys and local auth everywhere they exist', () => {
    expect(readInfra('modules/storage.bicep')).toContain('allowSharedKeyAccess: false');
    expect(readInfra('modules/monitoring.bicep')).toContain('DisableLocalAuth: true');
    expect(readInfra('modules/openai.bicep')).toContain('disableLocalAuth: disableLocalAuth');
    expect(statementNamed(main, 'module', 'openAi').rest).toContain('disableLocalAuth: !keyMode');
    expect(readInfra('modules/key-vault.bicep')).toContain('enableRbacAuthorization: true');
  });
});
