import type { ImageInfo } from '../../src/domain/image-format';
import { sniffImage } from '../../src/domain/image-format';
import type { ImageStore, ReadLink, StagedImage, StoredImage, StoredImageProperties } from '../../src/domain/ports';

export interface StoredBlob {
  readonly bytes: Buffer;
  readonly metadata: Readonly<Record<string, string>>;
}

/** An ImageStore in memory with the same visibility rule as the blob store: nothing exists before commit. */
export class InMemoryImageStore implements ImageStore {
  readonly blobs = new Map<string, StoredBlob>();
  readonly records = new Map<string, unknown>();
  discarded = 0;

  stageImage(blobName: string, options: { readonly keepBytes: boolean }): StagedImage {
    const chunks: Buffer[] = [];
    const store = this;
    return {
      get bytesWritten() {
        return chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      },
      write(chunk: Uint8Array) {
        chunks.push(Buffer.from(chunk));
        return Promise.resolve();
      },
      info(): ImageInfo | undefined {
        const result = sniffImage(Buffer.concat(chunks));
        return typeof result === 'string' ? undefined : result;
      },
      commit(properties: StoredImageProperties): Promise<StoredImage> {
        const bytes = Buffer.concat(chunks);
        const info = this.info();
        if (!info) throw new Error('not an image');
        store.blobs.set(blobName, { bytes, metadata: properties.metadata });
        return Promise.resolve({ ...info, blobName, bytes: bytes.length, ...(options.keepBytes ? { base64: bytes.toString('base64') } : {}) });
      },
      discard() {
        store.discarded += 1;
        store.blobs.delete(blobName);
        return Promise.resolve();
      },
    };
  }

  saveRecord(blobName: string, record: unknown): Promise<void> {
    this.records.set(blobName, record);
    return Promise.resolve();
  }

  createReadLink(blobName: string): Promise<ReadLink> {
    return Promise.resolve({ url: `https://store.example/${blobName}?sig=fake`, expiresOn: new Date('2030-01-01T00:00:00Z') });
  }
}
