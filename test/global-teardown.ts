import type { RunningAzurite } from '../local-host/azurite';

/** Where global-setup leaves the Azurite handle (jest runs setup and teardown in the same process). */
export const TEST_AZURITE_HANDLE = Symbol.for('imagegen-functions.test.azurite');

function isRunningAzurite(value: unknown): value is RunningAzurite {
  return typeof value === 'object' && value !== null && 'stop' in value && typeof value.stop === 'function';
}

export default async function globalTeardown(): Promise<void> {
  const azurite: unknown = Reflect.get(globalThis, TEST_AZURITE_HANDLE);
  Reflect.deleteProperty(globalThis, TEST_AZURITE_HANDLE);
  if (isRunningAzurite(azurite)) await azurite.stop();
}
