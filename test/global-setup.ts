import { randomUUID } from 'node:crypto';

import { startAzurite } from '../local-host/azurite';
import { TEST_AZURITE_ENV } from './helpers/azurite';
import { TEST_RUN_ID_ENV } from './helpers/npm-start';
import { TEST_AZURITE_HANDLE } from './global-teardown';

/**
 * One in-memory Azurite on free ports for the whole jest run. Workers are started after this and
 * inherit process.env, so they find it through TEST_AZURITE_CONNECTION_STRING; teardown stops it.
 * The run also gets an id, by which the test files that need the compiled app share one build.
 */
export default async function globalSetup(): Promise<void> {
  const azurite = await startAzurite({
    log: (line) => {
      if (/error|exception/i.test(line)) console.error(`[azurite] ${line}`);
    },
  });
  process.env[TEST_AZURITE_ENV] = azurite.connectionString;
  process.env[TEST_RUN_ID_ENV] = randomUUID();
  Reflect.set(globalThis, TEST_AZURITE_HANDLE, azurite);
}
