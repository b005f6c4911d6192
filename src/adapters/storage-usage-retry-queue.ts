import type { QueueClient } from '@azure/storage-queue';

import { StorageError } from '../domain/errors';
import type { UsageRecord, UsageRetryQueue } from '../domain/usage';

/** Usage records the table refused, as base64 JSON messages for the usage-retry queue trigger. */
export class StorageUsageRetryQueue implements UsageRetryQueue {
  constructor(private readonly queue: QueueClient) {}

  async enqueue(record: UsageRecord): Promise<void> {
    try {
      // A short delay: whatever kept the table away is unlikely to be gone the next instant.
      await this.queue.sendMessage(Buffer.from(JSON.stringify(record), 'utf8').toString('base64'), { visibilityTimeout: 5 });
    } catch (error: unknown) {
      throw new StorageError(`Could not put the usage of request ${record.requestId} on the usage retry queue.`, error);
    }
  }
}
