import { bicepFiles, readInfra, statementNamed, statementsOf } from './bicep';

/**
 * Azure built-in role definition ids, from Microsoft's list of built-in roles
 * (learn.microsoft.com/azure/role-based-access-control/built-in-roles), cross-checked against the
 * official azd Functions templates. Written here independently of infra/roles.json, so a typo in
 * either one fails.
 */
const BUILT_IN_ROLES: Record<string, string> = {
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  'Storage Blob Delegator': 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a',
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  'Cognitive Services OpenAI User': '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb',
};

const table = JSON.parse(readInfra('roles.json')) as unknown;
const main = readInfra('main.bicep');
const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** `roles['Name']` lookups in a piece of Bicep. */
const roleLookups = (text: string) => [...text.matchAll(/roles\['([^']+)'\]/g)].map((match) => match[1] ?? '');

describe('the role table (infra/roles.json)', () => {
  it('maps each role name to its built-in GUID', () => {
    expect(table).toEqual(BUILT_IN_ROLES);
  });

  it('is the only place a role GUID is written', () => {
    const withGuids = bicepFiles().filter((file) => GUID.test(readInfra(file)));
    expect(withGuids).toEqual([]);
    expect(statementNamed(main, 'var', 'roles').rest).toBe("= loadJsonContent('roles.json')");
  });

  it('has no unused role, and every role looked up exists', () => {
    const used = new Set(roleLookups(main));
    expect([...used].filter((name) => !(name in BUILT_IN_ROLES))).toEqual([]);
    expect(Object.keys(BUILT_IN_ROLES).filter((name) => !used.has(name))).toEqual([]);
  });
});

describe('least privilege', () => {
  const modules = new Map(statementsOf(main, 'module').map((statement) => [statement.name, roleLookups(statement.rest)]));

  it('grants Storage Blob Data Owner only on the host storage account (AzureWebJobsStorage + deployment package)', () => {
    const withOwner = [...modules].filter(([, roles]) => roles.includes('Storage Blob Data Owner')).map(([name]) => name);
    expect(withOwner).toEqual(['hostStorage']);
    expect(statementNamed(main, 'module', 'hostStorage').rest).toContain('principals: [app]');
  });

  it('grants image data per container (Contributor) plus the account-level Delegator for user-delegation SAS', () => {
    const images = statementNamed(main, 'module', 'imagesStorage').rest;
    expect(modules.get('imagesStorage')?.sort()).toEqual(['Storage Blob Data Contributor', 'Storage Blob Delegator', 'Storage Queue Data Contributor']);
    expect(images).toContain("containerRoleDefinitionIds: [roles['Storage Blob Data Contributor']]");
    expect(images).toContain('roleContainers: appContainers');
    expect(images).not.toMatch(/accountRoleDefinitionIds: \[[^\]]*Storage Blob Data Contributor/);
  });

  it('gives the deploying principal data access for local runs, never the host storage or the secret', () => {
    expect(statementNamed(main, 'var', 'appAndDeveloper').rest).toBe('= hasPrincipal ? [app, developer] : [app]');
    expect(statementNamed(main, 'var', 'developer').rest).toContain('principalType: principalType');
    for (const name of ['hostStorage', 'monitoring', 'keyVault']) {
      expect(statementNamed(main, 'module', name).rest).toContain('principals: [app]');
    }
    for (const name of ['imagesStorage', 'openAi']) {
      expect(statementNamed(main, 'module', name).rest).toContain('principals: appAndDeveloper');
    }
  });

  it('assigns roles only through the role table, by role GUID, with the principal type given', () => {
    for (const file of bicepFiles()) {
      for (const statement of statementsOf(readInfra(file), 'resource').filter((resource) => resource.rest.startsWith("'Microsoft.Authorization/roleAssignments@"))) {
        expect(statement.rest).toMatch(/roleDefinitionId: subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions', /);
        expect(statement.rest).toMatch(/principalType: /);
      }
    }
  });
});
