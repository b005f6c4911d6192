import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FILE_NAME = 'job-token-secret';

/** A secret of the strength JOB_TOKEN_SECRET asks for. */
export const newJobTokenSecret = (): string => randomBytes(32).toString('base64url');

/**
 * The JOB_TOKEN_SECRET `npm start` gives the app when none is configured: made on the first run and
 * kept in `directory` (next to Azurite's data, which holds the jobs), so that the links of
 * idempotent and blob-triggered jobs still match after a restart. Readable by the owner only.
 */
export function keptJobTokenSecret(directory: string): { secret: string; path: string } {
  const path = join(directory, FILE_NAME);
  mkdirSync(directory, { recursive: true });
  try {
    writeFileSync(path, `${newJobTokenSecret()}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error: unknown) {
    // Another run made it first: that one is the secret.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const secret = readFileSync(path, 'utf8').trim();
  if (secret.length < 32) throw new Error(`${path} holds no usable secret; delete it and start again.`);
  return { secret, path };
}
