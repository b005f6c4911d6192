import type { BlobClient } from '@azure/storage-blob';

import { readAll } from '../../src/adapters/streams';

/**
 * A JSON blob read in one GET, so the bytes are one version even while a writer replaces it
 * (`downloadToBuffer` asks for the size first and can read a newer, longer version cut short).
 */
export async function readJsonBlob<T>(blob: BlobClient): Promise<T> {
  return JSON.parse((await readAll((await blob.download()).readableStreamBody)).toString('utf8')) as T;
}
