import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { APP_SETTING_NAMES } from '../../src/config';

// The README's configuration table is the one place an operator looks for a setting: every setting
// src/config.ts reads must be in it, and no row may name a setting the app no longer reads.

function configurationSection(): string {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Configuration'));
  return section.slice(0, section.indexOf('\n### ') === -1 ? section.indexOf('\n## ', 1) : Math.min(section.indexOf('\n### '), section.indexOf('\n## ', 1)));
}

describe("the README's configuration table", () => {
  const section = configurationSection();
  const rowNames = [...section.matchAll(/^\| ([^|]+) \|/gm)].flatMap(([, cell = '']) => [...cell.matchAll(/`([A-Za-z_]+)`/g)].map(([, name = '']) => name));

  it('names every setting the app reads', () => {
    expect(APP_SETTING_NAMES.filter((name) => !section.includes(`\`${name}\``))).toEqual([]);
  });

  it('has a row for no setting the app does not read', () => {
    expect(rowNames.length).toBeGreaterThan(0);
    expect(rowNames.filter((name) => !(APP_SETTING_NAMES as readonly string[]).includes(name))).toEqual([]);
  });
});
