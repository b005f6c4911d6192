import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { captureFunctionApp, httpFunctions } from '../../local-host/registry';
import { appFunctionModules } from '../helpers/functions-host';

// The README's table of functions is the one place a newcomer sees them all: it must list every
// function the app registers, no other, with each HTTP function's method, route and auth.

interface Row {
  readonly trigger: string;
  readonly auth: string;
}

function readmeRows(): Map<string, Row> {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The functions'));
  const table = section.slice(0, section.indexOf('\n## '));
  const rows = new Map<string, Row>();
  for (const [, name = '', trigger = '', auth = ''] of table.matchAll(/^\| `([\w-]+)` \| ([^|]+) \| ([^|]+) \|/gm)) rows.set(name, { trigger: trigger.trim(), auth: auth.trim() });
  return rows;
}

describe("the README's table of functions", () => {
  const app = captureFunctionApp(() => {
    for (const file of appFunctionModules()) jest.requireActual(file);
  });
  const rows = readmeRows();

  it('lists every registered function and nothing else', () => {
    expect([...rows.keys()].sort()).toEqual(app.functions.map((fn) => fn.name).sort());
  });

  it.each(httpFunctions(app.functions).map((fn) => [fn.name, fn] as const))('gives %s its method, route and auth', (name, fn) => {
    const row = rows.get(name);

    for (const method of fn.methods) expect(row?.trigger).toContain(`${method} /api/${fn.route}`);
    const tokenOwner = fn.route.startsWith('jobs/') ? "the job's token" : fn.route.startsWith('subscriptions/') ? "the subscription's token" : 'anonymous';
    const expected = { anonymous: tokenOwner, function: 'function key', admin: 'master key' }[fn.authLevel];
    // An admin route may say what else admits a caller after naming the key.
    expect(fn.authLevel === 'admin' ? row?.auth.split(' (')[0] : row?.auth).toBe(expected);
  });
});
