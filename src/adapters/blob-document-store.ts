import type { ContainerClient } from '@azure/storage-blob';

import { StorageError } from '../domain/errors';
import type { DocumentStore, Versioned } from '../domain/ports';
import { blobClientIn } from './blob-client';
import { isNotFound, isWriteConflict } from './storage-errors';
import { readAll } from './streams';

/** JSON documents as block blobs, with ETag conditions for create-once and compare-and-swap. */
export class BlobDocumentStore implements DocumentStore {
  constructor(private readonly container: ContainerClient) {}

  async read(name: string): Promise<Versioned<unknown> | undefined> {
    const blob = blobClientIn(this.container, name);
    let body: Buffer;
    let etag: string | undefined;
    try {
      const download = await blob.download();
      etag = download.etag;
      body = await readAll(download.readableStreamBody);
    } catch (error: unknown) {
      if (isNotFound(error)) return undefined;
      throw new StorageError(`Could not read ${name} from Blob Storage.`, error);
    }
    if (etag === undefined) throw new StorageError(`Blob Storage returned ${name} without an ETag.`);
    try {
      return { value: JSON.parse(body.toString('utf8')) as unknown, etag };
    } catch (error: unknown) {
      throw new StorageError(`${name} in Blob Storage is not valid JSON.`, error);
    }
  }

  create(name: string, value: unknown): Promise<string | undefined> {
    return this.write(name, value, { ifNoneMatch: '*' });
  }

  replace(name: string, value: unknown, etag: string): Promise<string | undefined> {
    return this.write(name, value, { ifMatch: etag });
  }

  private async write(name: string, value: unknown, conditions: { ifMatch?: string; ifNoneMatch?: string }): Promise<string | undefined> {
    const body = Buffer.from(JSON.stringify(value), 'utf8');
    const blob = blobClientIn(this.container, name);
    try {
      const response = await blob.upload(body, body.length, {
        conditions,
        blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8', blobCacheControl: 'no-store' },
      });
      return response.etag;
    } catch (error: unknown) {
      if (isWriteConflict(error)) return undefined;
      throw new StorageError(`Could not write ${name} to Blob Storage.`, error);
    }
  }
}
