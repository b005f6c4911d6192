import type { InboxBlob, InboxStore } from '../../src/domain/ports';

/** Inbox uploads in memory, with the outcomes recorded per version. */
export class InMemoryInboxStore implements InboxStore {
  readonly blobs = new Map<string, InboxBlob>();
  readonly outcomes: { source: InboxBlob; outcome: Readonly<Record<string, string>> }[] = [];

  read(name: string): Promise<InboxBlob | undefined> {
    return Promise.resolve(this.blobs.get(name));
  }

  recordOutcome(source: InboxBlob, outcome: Readonly<Record<string, string>>): Promise<void> {
    this.outcomes.push({ source, outcome });
    return Promise.resolve();
  }
}
