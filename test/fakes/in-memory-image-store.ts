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
  readonly staged: InMemoryStagedImage[] = [];
  discarded = 0;
  /** When set, every commit fails with it, as a storage outage would. */
  commitError: Error | undefined;

  stageImage(blobName: string, options: { readonly keepBytes: boolean }): StagedImage {
    const image = new InMemoryStagedImage(this, blobName, options.keepBytes);
    this.staged.push(image);
    return image;
  }

  saveRecord(blobName: string, record: unknown): Promise<void> {
    this.records.set(blobName, record);
    return Promise.resolve();
  }

  readRecord(blobName: string): Promise<unknown> {
    return Promise.resolve(this.records.get(blobName));
  }


  createReadLink(blobName: string): Promise<ReadLink> {
    return Promise.resolve({ url: `https://store.example/${blobName}?sig=fake`, expiresOn: new Date('2030-01-01T00:00:00Z') });
  }
}

export class InMemoryStagedImage implements StagedImage {
  private readonly chunks: Buffer[] = [];
  /** Whether the image model said the image was complete. */
  ended = false;

  constructor(
    private readonly store: InMemoryImageStore,
    private readonly blobName: string,
    private readonly keepBytes: boolean,
  ) {}

  get bytesWritten(): number {
    return this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  write(chunk: Uint8Array): Promise<void> {
    this.chunks.push(Buffer.from(chunk));
    return Promise.resolve();
  }

  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }

  info(): ImageInfo | undefined {
    const result = sniffImage(Buffer.concat(this.chunks));
    return typeof result === 'string' ? undefined : result;
  }

  commit(properties: StoredImageProperties): Promise<StoredImage> {
    if (this.store.commitError) return Promise.reject(this.store.commitError);
    const bytes = Buffer.concat(this.chunks);
    const info = this.info();
    if (!info) return Promise.reject(new Error('not an image'));
    this.store.blobs.set(this.blobName, { bytes, metadata: properties.metadata });
    return Promise.resolve({ ...info, blobName: this.blobName, bytes: bytes.length, ...(this.keepBytes ? { base64: bytes.toString('base64') } : {}) });
  }

  discard(): Promise<void> {
    this.store.discarded += 1;
    this.store.blobs.delete(this.blobName);
    return Promise.resolve();
  }
}
