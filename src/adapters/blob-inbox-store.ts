import type { ContainerClient } from '@azure/storage-blob';

import { StorageError } from '../domain/errors';
import type { InboxBlob, InboxBlobVersion, InboxStore } from '../domain/ports';
import { blobClientIn } from './blob-client';
import { isNotFound, isWriteConflict } from './storage-errors';
import { readAll } from './streams';

/** The inbox container: uploads read at one version, outcomes written back into their metadata. */
export class BlobInboxStore implements InboxStore {
  constructor(private readonly container: ContainerClient) {}

  async read(name: string): Promise<InboxBlob | undefined> {
    const blob = blobClientIn(this.container, name);
    try {
      const download = await blob.download();
      const content = await readAll(download.readableStreamBody);
      if (download.etag === undefined) throw new StorageError(`Blob Storage returned inbox/${name} without an ETag.`);
      return { name, etag: download.etag, metadata: download.metadata ?? {}, size: content.length, content: [content] };
    } catch (error: unknown) {
      if (isNotFound(error)) return undefined;
      if (error instanceof StorageError) throw error;
      throw new StorageError(`Could not read ${name} from the inbox.`, error);
    }
  }

  async readProperties(name: string): Promise<InboxBlobVersion | undefined> {
    try {
      const properties = await blobClientIn(this.container, name).getProperties();
      if (properties.etag === undefined) throw new StorageError(`Blob Storage returned the properties of inbox/${name} without an ETag.`);
      return { name, etag: properties.etag, metadata: properties.metadata ?? {} };
    } catch (error: unknown) {
      if (isNotFound(error)) return undefined;
      if (error instanceof StorageError) throw error;
      throw new StorageError(`Could not read the properties of ${name} in the inbox.`, error);
    }
  }

  async recordOutcome(source: InboxBlobVersion, outcome: Readonly<Record<string, string>>): Promise<void> {
    // Writing the same outcome again would only give the blob a new ETag.
    if (Object.entries(outcome).every(([key, value]) => source.metadata[key] === value)) return;
    const blob = blobClientIn(this.container, source.name);
    try {
      // The metadata was read with this ETag, so merging it here loses nothing another writer added.
      await blob.setMetadata({ ...source.metadata, ...outcome }, { conditions: { ifMatch: source.etag } });
    } catch (error: unknown) {
      // A newer upload (or a delete) replaced the version we processed: its own event will follow.
      if (isWriteConflict(error) || isNotFound(error)) return;
      throw new StorageError(`Could not record the outcome on inbox/${source.name}.`, error);
    }
  }
}
