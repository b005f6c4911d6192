import type { ImageInfo } from './image-format';
import type { ImageModel } from './image-models';

/** What the upstream image model is asked to do, after our own validation. */
export interface ImageGenerationRequest {
  readonly model: ImageModel;
  readonly deployment: string;
  readonly prompt: string;
  readonly n: number;
  readonly size?: string | undefined;
  readonly quality?: string | undefined;
  readonly outputFormat?: string | undefined;
  readonly outputCompression?: number | undefined;
  readonly background?: string | undefined;
  readonly moderation?: string | undefined;
  readonly style?: string | undefined;
  readonly user?: string | undefined;
}

/** Everything the upstream said about a finished generation except the image bytes, which went to the sink. */
export interface ImageGenerationResult {
  readonly created: number;
  readonly images: readonly { readonly revisedPrompt?: string | undefined }[];
  readonly usage?: Readonly<Record<string, unknown>> | undefined;
  readonly size?: string | undefined;
  readonly quality?: string | undefined;
  readonly background?: string | undefined;
  readonly outputFormat?: string | undefined;
  readonly upstreamRequestId?: string | undefined;
}

/** Receives decoded image bytes as they arrive; awaiting `write` is how the consumer applies backpressure. */
export interface ImageByteWriter {
  /** `chunk` is lent, not given: the caller may reuse its memory once the promise settles, so copy what you keep. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Called once after the image's last byte, before the rest of the response has been read or checked,
   * so that the writer can flush what it holds. Not called when the image is cut short.
   */
  end(): Promise<void>;
}

export interface ImageSink {
  /** Called once per image, in response order, before its first byte. */
  openImage(index: number): ImageByteWriter;
}

export interface CallOptions {
  readonly abortSignal?: AbortSignal | undefined;
  /** Our request id, sent upstream for correlation. */
  readonly requestId?: string | undefined;
}

export interface ImageModelClient {
  /** Streams each generated image into `sink` and resolves once the whole upstream response was read and checked. */
  generateImages(request: ImageGenerationRequest, sink: ImageSink, options?: CallOptions): Promise<ImageGenerationResult>;
}

/** An image whose bytes are being written but that no reader can see until `commit`. */
export interface StagedImage extends ImageByteWriter {
  /** Type and size read from the bytes written so far; undefined until the header was seen or if it is not an image. */
  info(): ImageInfo | undefined;
  readonly bytesWritten: number;
  commit(properties: StoredImageProperties): Promise<StoredImage>;
  /** Drops the staged bytes (and the blob, if it was already committed). Safe to call more than once. */
  discard(): Promise<void>;
}

export interface StoredImageProperties {
  readonly metadata: Readonly<Record<string, string>>;
}

export interface StoredImage extends ImageInfo {
  readonly blobName: string;
  readonly bytes: number;
  /** Present when the image was staged with `keepBytes`. */
  readonly base64?: string | undefined;
}

export interface ReadLink {
  readonly url: string;
  readonly expiresOn: Date;
}

export interface ImageStore {
  stageImage(blobName: string, options: { readonly keepBytes: boolean; readonly abortSignal?: AbortSignal | undefined }): StagedImage;
  saveRecord(blobName: string, record: unknown, options?: { readonly abortSignal?: AbortSignal | undefined }): Promise<void>;
  /** Removes a record saved for a request that failed after all. Safe to call when there is none. */
  deleteRecord(blobName: string): Promise<void>;
  /** A read-only link to one blob, valid for the configured lifetime. */
  createReadLink(blobName: string): Promise<ReadLink>;
}

export interface Clock {
  now(): Date;
}

export interface IdGenerator {
  newId(): string;
}
