import type { InboxBlob, InboxBlobVersion, InboxStore } from '../../src/domain/ports';

/** Inbox uploads in memory, with the outcomes recorded per version. */
export class InMemoryInboxStore implements InboxStore {
  readonly blobs = new Map<string, InboxBlob>();
  readonly outcomes: { source: InboxBlobVersion; outcome: Readonly<Record<string, string>> }[] = [];

  read(name: string): Promise<InboxBlob | undefined> {
    return Promise.resolve(this.blobs.get(name));
  }

  readProperties(name: string): Promise<InboxBlobVersion | undefined> {
    const blob = this.blobs.get(name);
    return Promise.resolve(blob && { name: blob.name, etag: blob.etag, metadata: blob.metadata });
  }

  /** Like Blob Storage's conditional write: only onto the version that was read, which then has a new ETag. */
  recordOutcome(source: InboxBlobVersion, outcome: Readonly<Record<string, string>>): Promise<void> {
    this.outcomes.push({ source, outcome });
    const current = this.blobs.get(source.name);
    if (current?.etag === source.etag) {
      this.blobs.set(source.name, { ...current, etag: `${current.etag}+`, metadata: { ...current.metadata, ...outcome } });
    }
    return Promise.resolve();
  }
}
