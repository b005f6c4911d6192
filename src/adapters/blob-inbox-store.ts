import type { ContainerClient } from '@azure/storage-blob';

import { StorageError } from '../domain/errors';
import type { InboxBlob, InboxStore } from '../domain/ports';
import { isNotFound, isWriteConflict } from './storage-errors';
import { readAll } from './streams';

/** The inbox container: uploads read at one version, outcomes written back into their metadata. */
export class BlobInboxStore implements InboxStore {
  constructor(private readonly container: ContainerClient) {}

  async read(name: string): Promise<InboxBlob | undefined> {
    try {
      const download = await this.container.getBlobClient(name).download();
      const content = await readAll(download.readableStreamBody);
      if (download.etag === undefined) throw new StorageError(`Blob Storage returned inbox/${name} without an ETag.`);
      return { name, etag: download.etag, metadata: download.metadata ?? {}, size: content.length, content: [content] };
    } catch (error: unknown) {
      if (isNotFound(error)) return undefined;
      if (error instanceof StorageError) throw error;
      throw new StorageError(`Could not read ${name} from the inbox.`, error);
    }
  }

  async recordOutcome(name: string, etag: string, outcome: Readonly<Record<string, string>>): Promise<void> {
    const blob = this.container.getBlobClient(name);
    try {
      const properties = await blob.getProperties({ conditions: { ifMatch: etag } });
      const current = properties.metadata ?? {};
      // Writing the same outcome again would only give the blob a new ETag.
      if (Object.entries(outcome).every(([key, value]) => current[key] === value)) return;
      await blob.setMetadata({ ...current, ...outcome }, { conditions: { ifMatch: etag } });
    } catch (error: unknown) {
      // A newer upload (or a delete) replaced the version we processed: its own event will follow.
      if (isWriteConflict(error) || isNotFound(error)) return;
      throw new StorageError(`Could not record the outcome on inbox/${name}.`, error);
    }
  }
}
