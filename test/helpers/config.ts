import { loadConfig } from '../../src/config';
import { ConfigurationError } from '../../src/domain/errors';

/** The problems `loadConfig` lists for `env`; fails the test when the configuration is accepted. */
export function problemsOf(env: Readonly<Record<string, string | undefined>>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error: unknown) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  throw new Error('expected the configuration to be refused');
}
