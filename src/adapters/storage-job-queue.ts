import type { QueueClient } from '@azure/storage-queue';

import { StorageError } from '../domain/errors';
import type { JobQueue } from '../domain/ports';

/** The message a worker receives: only the job id; the job record holds everything else. */
export interface JobMessage {
  readonly jobId: string;
}

/**
 * Sends job messages to a Storage Queue, base64-encoded JSON, which is what the Functions queue
 * trigger decodes by default (`extensions.queues.messageEncoding: base64`).
 */
export class StorageJobQueue implements JobQueue {
  constructor(private readonly queue: QueueClient) {}

  async enqueue(jobId: string, options: { readonly delayInSeconds?: number | undefined } = {}): Promise<void> {
    const message: JobMessage = { jobId };
    const delay = Math.max(0, Math.min(Math.ceil(options.delayInSeconds ?? 0), 7 * 24 * 3600));
    try {
      await this.queue.sendMessage(Buffer.from(JSON.stringify(message), 'utf8').toString('base64'), delay > 0 ? { visibilityTimeout: delay } : {});
    } catch (error: unknown) {
      throw new StorageError('Could not put the job on the queue.', error);
    }
  }
}
