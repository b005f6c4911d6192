import { randomBytes } from 'node:crypto';

/** Set by test/global-setup.ts for every worker: the one Azurite shared by the whole run. */
export const TEST_AZURITE_ENV = 'TEST_AZURITE_CONNECTION_STRING';

/** The connection string of the run's shared Azurite (in memory, free ports). */
export function testStorageConnectionString(): string {
  const value = process.env[TEST_AZURITE_ENV];
  if (value === undefined || value === '') {
    throw new Error(
      `${TEST_AZURITE_ENV} is not set: Azurite is started by test/global-setup.ts, which jest runs through ` +
        '`globalSetup` in jest.config.js. Run the tests with `npm test` / `npx jest`, not a single file in another runner.',
    );
  }
  return value;
}

/**
 * A container name no other test file uses: the prefix (lower-cased, invalid characters turned into
 * hyphens) and a random suffix, within Azure's 3-63 character rule.
 */
export function uniqueContainerName(prefix = 'test'): string {
  const cleaned = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  const suffix = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  return cleaned === '' ? `t-${suffix}` : `${cleaned}-${suffix}`;
}
