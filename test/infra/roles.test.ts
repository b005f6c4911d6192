import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { INFRA_DIR, readInfra } from './bicep-cli';
import { BUILT_IN_ROLES } from './deployment';

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Every .bicep file under infra/, relative to it. */
function bicepFiles(dir = INFRA_DIR, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? bicepFiles(join(dir, entry.name), `${prefix}${entry.name}/`) : entry.name.endsWith('.bicep') ? [`${prefix}${entry.name}`] : [],
  );
}

// Who gets which role where is checked on the compiled deployment (deployment.test.ts).
describe('the role table (infra/roles.json)', () => {
  it('maps each role name to its built-in GUID', () => {
    expect(JSON.parse(readInfra('roles.json'))).toEqual(BUILT_IN_ROLES);
  });

  it('is the only place a role GUID is written', () => {
    expect(bicepFiles().filter((file) => GUID.test(readInfra(file)))).toEqual([]);
    expect(readInfra('main.bicep')).toContain("var roles = loadJsonContent('roles.json')");
  });
});
