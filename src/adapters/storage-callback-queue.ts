import type { QueueClient } from '@azure/storage-queue';

import type { CallbackMessage, CallbackQueue } from '../domain/callbacks';
import { StorageError } from '../domain/errors';

const MAX_DELAY_SECONDS = 7 * 24 * 3600;

/** Callback deliveries on a Storage Queue, as base64 JSON (what the queue trigger decodes), delayed by visibility. */
export class StorageCallbackQueue implements CallbackQueue {
  constructor(private readonly queue: QueueClient) {}

  async enqueue(message: CallbackMessage, options: { readonly delayInSeconds?: number | undefined } = {}): Promise<void> {
    const delay = Math.max(0, Math.min(Math.ceil(options.delayInSeconds ?? 0), MAX_DELAY_SECONDS));
    try {
      await this.queue.sendMessage(Buffer.from(JSON.stringify(message), 'utf8').toString('base64'), delay > 0 ? { visibilityTimeout: delay } : {});
    } catch (error: unknown) {
      throw new StorageError('Could not put the callback on the queue.', error);
    }
  }
}
