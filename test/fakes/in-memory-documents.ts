import type { DocumentStore, JobQueue, JobQueueOptions, Versioned } from '../../src/domain/ports';

/** DocumentStore semantics (create-once, compare-and-swap on ETags) in memory, for handler tests. */
export class InMemoryDocumentStore implements DocumentStore {
  readonly documents = new Map<string, Versioned<unknown>>();
  private version = 0;

  read(name: string): Promise<Versioned<unknown> | undefined> {
    const found = this.documents.get(name);
    return Promise.resolve(found && { value: structuredClone(found.value), etag: found.etag });
  }

  create(name: string, value: unknown): Promise<string | undefined> {
    return Promise.resolve(this.documents.has(name) ? undefined : this.store(name, value));
  }

  replace(name: string, value: unknown, etag: string): Promise<string | undefined> {
    return Promise.resolve(this.documents.get(name)?.etag === etag ? this.store(name, value) : undefined);
  }

  private store(name: string, value: unknown): string {
    const etag = `"${++this.version}"`;
    this.documents.set(name, { value: JSON.parse(JSON.stringify(value)) as unknown, etag });
    return etag;
  }
}

export class RecordingJobQueue implements JobQueue {
  readonly sent: { jobId: string; delayInSeconds: number | undefined; watchAttempt?: number | undefined }[] = [];

  enqueue(jobId: string, options: JobQueueOptions = {}): Promise<void> {
    this.sent.push({ jobId, delayInSeconds: options.delayInSeconds, ...(options.watchAttempt === undefined ? {} : { watchAttempt: options.watchAttempt }) });
    return Promise.resolve();
  }
}
