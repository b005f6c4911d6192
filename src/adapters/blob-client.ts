import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';

import { assertValidBlobName } from '../domain/blob-names';

/**
 * The client for one blob of `container`. Every adapter gets its blob clients here, so that no name,
 * whoever forgot to check it, can make the SDK address a blob outside the container (it resolves
 * `..` in names).
 */
export function blobClientIn(container: ContainerClient, name: string): BlockBlobClient {
  assertValidBlobName(name, 'The blob name');
  return container.getBlockBlobClient(name);
}
