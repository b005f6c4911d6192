import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';

import { StorageError } from '../domain/errors';
import type { ImageInfo } from '../domain/image-format';
import { MAX_SNIFF_BYTES, sniffImage } from '../domain/image-format';
import type { Clock, ImageStore, ReadLink, StagedImage, StoredImage, StoredImageProperties } from '../domain/ports';
import { blobClientIn } from './blob-client';
import type { BlobSasSigner } from './blob-sas';
import { isNotFound } from './storage-errors';
import { readAll } from './streams';

export interface BlobImageStoreOptions {
  readonly container: ContainerClient;
  readonly sasSigner: BlobSasSigner;
  readonly sasLifetimeInMs: number;
  readonly clock: Clock;
  /** Bytes per staged block: smaller blocks start uploading sooner and hold less memory per image. */
  readonly blockSizeInBytes?: number | undefined;
  /**
   * Bytes of staged blocks uploading at once, shared by every image this store writes (one store per
   * process). Once it is used up, writers wait, which slows their upstream reads instead of buffering.
   */
  readonly maxUploadBytesInFlight?: number | undefined;
}

const DEFAULT_BLOCK_SIZE = 1024 * 1024;
const DEFAULT_MAX_UPLOAD_BYTES_IN_FLIGHT = 32 * 1024 * 1024;
// Blob names are unique per request, so the bytes behind a name never change.
const IMAGE_CACHE_CONTROL = 'private, max-age=86400, immutable';

/** Images and request records in one Blob Storage container, with read-only SAS links. */
export class BlobImageStore implements ImageStore {
  private readonly blockSizeInBytes: number;
  private readonly uploads: ByteBudget;
  private readonly blocks: BlockPool;

  constructor(private readonly options: BlobImageStoreOptions) {
    this.blockSizeInBytes = options.blockSizeInBytes ?? DEFAULT_BLOCK_SIZE;
    const maxInFlight = options.maxUploadBytesInFlight ?? DEFAULT_MAX_UPLOAD_BYTES_IN_FLIGHT;
    this.uploads = new ByteBudget(Math.max(maxInFlight, this.blockSizeInBytes));
    // Enough idle blocks to refill the upload budget once without allocating; more would only be kept RSS.
    this.blocks = new BlockPool(this.blockSizeInBytes, Math.ceil(maxInFlight / this.blockSizeInBytes));
  }

  stageImage(blobName: string, stageOptions: { readonly keepBytes: boolean; readonly abortSignal?: AbortSignal | undefined }): StagedImage {
    return new StagedBlockBlob(blobClientIn(this.options.container, blobName), blobName, {
      blocks: this.blocks,
      uploads: this.uploads,
      keepBytes: stageOptions.keepBytes,
      abortSignal: stageOptions.abortSignal,
    });
  }

  async saveRecord(blobName: string, record: unknown, options: { readonly abortSignal?: AbortSignal | undefined } = {}): Promise<void> {
    const body = Buffer.from(JSON.stringify(record, null, 2), 'utf8');
    const blob = blobClientIn(this.options.container, blobName);
    try {
      await blob.uploadData(body, {
        blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8', blobCacheControl: 'private, no-cache' },
        ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      });
    } catch (error: unknown) {
      throw new StorageError(`Could not write ${blobName} to Blob Storage.`, error);
    }
  }

  async readRecord(blobName: string): Promise<unknown> {
    const blob = blobClientIn(this.options.container, blobName);
    let body: Buffer;
    try {
      // One GET: the bytes of one version, whatever a writer does meanwhile.
      body = await readAll((await blob.download()).readableStreamBody);
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
    const blob = blobClientIn(this.options.container, blobName);
    try {
      const sas = await this.options.sasSigner.signReadOnly(this.options.container.containerName, blobName, expiresOn);
      return { url: `${blob.url}?${sas}`, expiresOn };
    } catch (error: unknown) {
      throw new StorageError('Could not sign a link to the image (user delegation key unavailable?).', error);
    }
  }
}

interface StagingOptions {
  readonly blocks: BlockPool;
  readonly uploads: ByteBudget;
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
  private readonly signal: AbortSignal;
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
  ) {
    this.signal = options.abortSignal ? AbortSignal.any([this.abort.signal, options.abortSignal]) : this.abort.signal;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.throwIfFailed();
    this.bytesWritten += chunk.length;
    this.hash.update(chunk);
    if (this.options.keepBytes) this.kept.push(Buffer.from(chunk));
    this.sniff(chunk);
    let offset = 0;
    while (offset < chunk.length) {
      this.block ??= this.options.blocks.take();
      const copied = Math.min(chunk.length - offset, this.block.length - this.blockFill);
      this.block.set(chunk.subarray(offset, offset + copied), this.blockFill);
      this.blockFill += copied;
      offset += copied;
      if (this.blockFill === this.block.length) await this.stageCurrentBlock();
    }
  }

  async end(): Promise<void> {
    this.throwIfFailed();
    if (this.blockFill > 0) await this.stageCurrentBlock();
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
    if (this.block) this.options.blocks.give(this.block);
    this.block = undefined;
    this.blockFill = 0;
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

  /** Starts uploading the filled part of the current block; waits only while the shared budget is used up. */
  private async stageCurrentBlock(): Promise<void> {
    const buffer = this.block;
    const length = this.blockFill;
    this.block = undefined;
    this.blockFill = 0;
    if (!buffer || length === 0) return;
    try {
      await this.options.uploads.acquire(length, this.signal);
    } catch (error: unknown) {
      this.options.blocks.give(buffer);
      throw error;
    }
    // Equal-length ids, as Blob Storage requires within one blob.
    const blockId = Buffer.from(String(this.blockIds.length).padStart(6, '0')).toString('base64');
    this.blockIds.push(blockId);
    const upload = this.blob
      .stageBlock(blockId, buffer.subarray(0, length), length, { abortSignal: this.signal })
      .then(
        // Only a finished upload hands its buffer back: after a failure the HTTP stack may still hold it.
        () => this.options.blocks.give(buffer),
        (error: unknown) => {
          this.failure ??= error;
        },
      )
      .finally(() => {
        this.options.uploads.release(length);
        this.inFlight.delete(upload);
      });
    this.inFlight.add(upload);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw new StorageError(`Could not upload ${this.blobName} to Blob Storage.`, this.failure);
  }
}

/** Block buffers are reused instead of left to the garbage collector, which frees megabyte buffers late. */
class BlockPool {
  private readonly idle: Buffer[] = [];

  constructor(
    private readonly blockSizeInBytes: number,
    private readonly maxIdle: number,
  ) {}

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafe(this.blockSizeInBytes);
  }

  give(buffer: Buffer): void {
    if (this.idle.length < this.maxIdle) this.idle.push(buffer);
  }
}

/** A first-come, first-served allowance of bytes, shared by every upload of the process. */
class ByteBudget {
  private available: number;
  private readonly waiting: { readonly bytes: number; readonly grant: () => void }[] = [];

  constructor(limit: number) {
    this.available = limit;
  }

  acquire(bytes: number, abortSignal: AbortSignal): Promise<void> {
    abortSignal.throwIfAborted();
    if (this.waiting.length === 0 && bytes <= this.available) {
      this.available -= bytes;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        bytes,
        grant: () => {
          abortSignal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        const reason: unknown = abortSignal.reason;
        reject(reason instanceof Error ? reason : new Error('Aborted while waiting to upload a block.', { cause: reason }));
        this.grantWaiting(); // the next in line may fit now that this one left
      };
      abortSignal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  release(bytes: number): void {
    this.available += bytes;
    this.grantWaiting();
  }

  private grantWaiting(): void {
    for (let next = this.waiting[0]; next && next.bytes <= this.available; next = this.waiting[0]) {
      this.waiting.shift();
      this.available -= next.bytes;
      next.grant();
    }
  }
}
