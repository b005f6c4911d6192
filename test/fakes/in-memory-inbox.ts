import type { InboxBlob, InboxStore } from '../../src/domain/ports';

/** Inbox uploads in memory, with the outcomes recorded per version. */
export class InMemoryInboxStore implements InboxStore {
  readonly blobs = new Map<string, InboxBlob>();
  readonly outcomes: { name: string; etag: string; outcome: Readonly<Record<string, string>> }[] = [];

  read(name: string): Promise<InboxBlob | undefined> {
    return Promise.resolve(this.blobs.get(name));
  }

  recordOutcome(name: string, etag: string, outcome: Readonly<Record<string, string>>): Promise<void> {
    this.outcomes.push({ name, etag, outcome });
    return Promise.resolve();
  }
}
