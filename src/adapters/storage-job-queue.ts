import type { QueueClient } from '@azure/storage-queue';

import { StorageError } from '../domain/errors';
import type { JobQueue, JobQueueOptions } from '../domain/ports';

/** The message a worker receives: the job id (the job record holds everything else), and for a watchdog the attempt it watches. */
export interface JobMessage {
  readonly jobId: string;
  readonly watchAttempt?: number;
}

/**
 * Sends job messages to a Storage Queue, base64-encoded JSON, which is what the Functions queue
 * trigger decodes by default (`extensions.queues.messageEncoding: base64`).
 */
export class StorageJobQueue implements JobQueue {
  constructor(private readonly queue: QueueClient) {}

  async enqueue(jobId: string, options: JobQueueOptions = {}): Promise<void> {
    const message: JobMessage = options.watchAttempt === undefined ? { jobId } : { jobId, watchAttempt: options.watchAttempt };
    const delay = Math.max(0, Math.min(Math.ceil(options.delayInSeconds ?? 0), 7 * 24 * 3600));
    try {
      await this.queue.sendMessage(Buffer.from(JSON.stringify(message), 'utf8').toString('base64'), delay > 0 ? { visibilityTimeout: delay } : {});
    } catch (error: unknown) {
      throw new StorageError('Could not put the job on the queue.', error);
    }
  }
}
