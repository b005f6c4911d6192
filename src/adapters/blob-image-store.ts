import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';

import { StorageError } from '../domain/errors';
import type { ImageInfo } from '../domain/image-format';
import { MAX_SNIFF_BYTES, sniffImage } from '../domain/image-format';
import type { Clock, ImageStore, ReadLink, StagedImage, StoredImage, StoredImageProperties } from '../domain/ports';
import type { BlobSasSigner } from './blob-sas';
import { isNotFound } from './storage-errors';

export interface BlobImageStoreOptions {
  readonly container: ContainerClient;
  readonly sasSigner: BlobSasSigner;
  readonly sasLifetimeInMs: number;
  readonly clock: Clock;
  /** Bytes per staged block: smaller blocks start uploading sooner and hold less memory per image. */
  readonly blockSizeInBytes?: number | undefined;
  /** Blocks of one image uploading at once; further writes wait, which slows the upstream read. */
  readonly maxBlocksInFlight?: number | undefined;
}

const DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024;
// Blob names are unique per request, so the bytes behind a name never change.
const IMAGE_CACHE_CONTROL = 'private, max-age=86400, immutable';

/** Images and request records in one Blob Storage container, with read-only SAS links. */
export class BlobImageStore implements ImageStore {
  constructor(private readonly options: BlobImageStoreOptions) {}

  stageImage(blobName: string, stageOptions: { readonly keepBytes: boolean; readonly abortSignal?: AbortSignal | undefined }): StagedImage {
    return new StagedBlockBlob(this.options.container.getBlockBlobClient(blobName), blobName, {
      blockSizeInBytes: this.options.blockSizeInBytes ?? DEFAULT_BLOCK_SIZE,
      maxBlocksInFlight: this.options.maxBlocksInFlight ?? 4,
      keepBytes: stageOptions.keepBytes,
      abortSignal: stageOptions.abortSignal,
    });
  }

  async saveRecord(blobName: string, record: unknown, options: { readonly abortSignal?: AbortSignal | undefined } = {}): Promise<void> {
    const body = Buffer.from(JSON.stringify(record, null, 2), 'utf8');
    try {
      await this.options.container.getBlockBlobClient(blobName).uploadData(body, {
        blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8', blobCacheControl: 'private, no-cache' },
        ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      });
    } catch (error: unknown) {
      throw new StorageError(`Could not write ${blobName} to Blob Storage.`, error);
    }
  }

  async readRecord(blobName: string): Promise<unknown> {
    let body: Buffer;
    try {
      body = await this.options.container.getBlobClient(blobName).downloadToBuffer();
    } catch (error: unknown) {
      if (isNotFound(error)) return undefined;
      throw new StorageError(`Could not read ${blobName} from Blob Storage.`, error);
    }
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (error: unknown) {
      throw new StorageError(`${blobName} in Blob Storage is not valid JSON.`, error);
    }
  }

  async createReadLink(blobName: string): Promise<ReadLink> {
    const expiresOn = new Date(this.options.clock.now().getTime() + this.options.sasLifetimeInMs);
    const blob = this.options.container.getBlobClient(blobName);
    try {
      const sas = await this.options.sasSigner.signReadOnly(this.options.container.containerName, blobName, expiresOn);
      return { url: `${blob.url}?${sas}`, expiresOn };
    } catch (error: unknown) {
      throw new StorageError('Could not sign a link to the image (user delegation key unavailable?).', error);
    }
  }
}

interface StagingOptions {
  readonly blockSizeInBytes: number;
  readonly maxBlocksInFlight: number;
  readonly keepBytes: boolean;
  readonly abortSignal?: AbortSignal | undefined;
}

/**
 * Writes arrive as staged blocks while the image is still streaming in; nothing is visible until the
 * block list is committed, so an image that fails half-way leaves no blob (uncommitted blocks expire).
 */
class StagedBlockBlob implements StagedImage {
  private readonly blockIds: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly hash = createHash('md5');
  private readonly kept: Buffer[] = [];
  private readonly abort = new AbortController();
  private block: Buffer | undefined;
  private blockFill = 0;
  private head: Buffer = Buffer.alloc(0);
  private sniffed: ImageInfo | 'unknown' | undefined;
  private failure: unknown;
  private committed = false;
  bytesWritten = 0;

  constructor(
    private readonly blob: BlockBlobClient,
    private readonly blobName: string,
    private readonly options: StagingOptions,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.throwIfFailed();
    this.bytesWritten += chunk.length;
    this.hash.update(chunk);
    if (this.options.keepBytes) this.kept.push(Buffer.from(chunk));
    this.sniff(chunk);
    let offset = 0;
    while (offset < chunk.length) {
      this.block ??= Buffer.allocUnsafe(this.options.blockSizeInBytes);
      const copied = Math.min(chunk.length - offset, this.block.length - this.blockFill);
      this.block.set(chunk.subarray(offset, offset + copied), this.blockFill);
      this.blockFill += copied;
      offset += copied;
      if (this.blockFill === this.block.length) await this.stageCurrentBlock();
    }
  }

  info(): ImageInfo | undefined {
    if (this.sniffed === undefined && this.head.length > 0) {
      const result = sniffImage(this.head);
      this.sniffed = result === 'need-more' ? 'unknown' : result;
    }
    return this.sniffed === 'unknown' ? undefined : this.sniffed;
  }

  async commit(properties: StoredImageProperties): Promise<StoredImage> {
    const info = this.info();
    if (!info) throw new StorageError(`${this.blobName} is not a recognisable image; refusing to store it.`);
    if (this.blockFill > 0) await this.stageCurrentBlock();
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    try {
      await this.blob.commitBlockList(this.blockIds, {
        blobHTTPHeaders: { blobContentType: info.contentType, blobCacheControl: IMAGE_CACHE_CONTROL, blobContentMD5: this.hash.digest() },
        metadata: { ...properties.metadata },
        abortSignal: this.abort.signal,
      });
    } catch (error: unknown) {
      throw new StorageError(`Could not commit ${this.blobName} to Blob Storage.`, error);
    }
    this.committed = true;
    const base64 = this.options.keepBytes ? Buffer.concat(this.kept).toString('base64') : undefined;
    this.kept.length = 0;
    return { ...info, blobName: this.blobName, bytes: this.bytesWritten, ...(base64 === undefined ? {} : { base64 }) };
  }

  async discard(): Promise<void> {
    this.abort.abort();
    this.block = undefined;
    this.kept.length = 0;
    await Promise.allSettled(this.inFlight);
    if (this.committed) {
      this.committed = false;
      await this.blob.deleteIfExists();
    }
  }

  private sniff(chunk: Uint8Array): void {
    if (this.sniffed !== undefined || this.head.length >= MAX_SNIFF_BYTES) return;
    this.head = Buffer.concat([this.head, chunk.subarray(0, MAX_SNIFF_BYTES - this.head.length)]);
    const result = sniffImage(this.head);
    if (result !== 'need-more') {
      this.sniffed = result;
      this.head = Buffer.alloc(0);
    }
  }

  private async stageCurrentBlock(): Promise<void> {
    const block = this.block?.subarray(0, this.blockFill);
    this.block = undefined;
    this.blockFill = 0;
    if (!block) return;
    // Equal-length ids, as Blob Storage requires within one blob.
    const blockId = Buffer.from(String(this.blockIds.length).padStart(6, '0')).toString('base64');
    this.blockIds.push(blockId);
    const upload = this.blob
      .stageBlock(blockId, block, block.length, { abortSignal: this.options.abortSignal ? AbortSignal.any([this.abort.signal, this.options.abortSignal]) : this.abort.signal })
      .then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= error;
        },
      )
      .finally(() => this.inFlight.delete(upload));
    this.inFlight.add(upload);
    if (this.inFlight.size >= this.options.maxBlocksInFlight) await Promise.race(this.inFlight);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw new StorageError(`Could not upload ${this.blobName} to Blob Storage.`, this.failure);
  }
}
