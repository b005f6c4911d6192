import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';

/**
 * Creates the blob containers the app expects (in Azure, the infrastructure template creates them).
 * Each call has its own deadline so a storage endpoint that does not answer fails start-up clearly.
 */
export async function createContainers(connectionString: string, names: Iterable<string>, timeoutInMs = 15_000): Promise<void> {
  const service = BlobServiceClient.fromConnectionString(connectionString);
  for (const name of new Set(names)) {
    await service.getContainerClient(name).createIfNotExists({ abortSignal: AbortSignal.timeout(timeoutInMs) });
  }
}

/** Creates the Storage Queues the app sends to (in Azure, the infrastructure template creates them). */
export async function createQueues(connectionString: string, names: Iterable<string>, timeoutInMs = 15_000): Promise<void> {
  const service = QueueServiceClient.fromConnectionString(connectionString);
  for (const name of new Set(names)) {
    await service.getQueueClient(name).createIfNotExists({ abortSignal: AbortSignal.timeout(timeoutInMs) });
  }
}
