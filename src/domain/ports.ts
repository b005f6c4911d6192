import type { ImageInfo } from './image-format';
import type { ImageModel, ImageOptions } from './image-models';

/** What the upstream image model is asked to do, after our own validation. */
export interface ImageGenerationRequest extends Omit<ImageOptions, 'n' | 'inputFidelity'> {
  readonly model: ImageModel;
  readonly deployment: string;
  readonly prompt: string;
  readonly n: number;
  readonly user?: string | undefined;
}

/** One input file of an edit, already checked: its bytes stay in the chunks they arrived in, never joined. */
export interface ImageUpload {
  readonly fileName: string;
  /** From the sniffed bytes, never from what the caller declared: the upstream checks the part type. */
  readonly contentType: string;
  readonly size: number;
  readonly content: readonly Uint8Array[];
}

/** An edit: the generation parameters that apply to edits, the input images (the mask applies to the first) and their fidelity. */
export interface ImageEditRequest extends Omit<ImageGenerationRequest, 'style'> {
  readonly images: readonly ImageUpload[];
  readonly mask?: ImageUpload | undefined;
  readonly inputFidelity?: string | undefined;
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
  /** Awaited before each HTTP request goes upstream, so that a job can count what it pays before it pays it. */
  readonly beforeUpstreamRequest?: (() => Promise<void>) | undefined;
  /** Told what each upstream answer said about the deployment's capacity (the router learns from it). */
  readonly onUpstreamResponse?: ((observation: UpstreamObservation) => void) | undefined;
}

/** What one upstream answer said about its deployment's capacity, from its status and `x-ratelimit-*` / `retry-after*` headers. */
export interface UpstreamObservation {
  readonly status: number;
  readonly retryAfterInMs?: number | undefined;
  readonly remainingRequests?: number | undefined;
  readonly limitRequests?: number | undefined;
  /** Until the window frees its next share (`x-ratelimit-reset-requests`). */
  readonly resetRequestsInMs?: number | undefined;
}

/** Where the upstream has room: asked before a job spends anything, so that it can wait in the queue instead. */
export interface UpstreamCapacity {
  /**
   * Undefined when a request for `images` images of `model` could go now; else the earliest time (ms
   * since the epoch) one could without a known 429, and why not now.
   */
  whenAvailable(model: ImageModel, images: number): { readonly at: number; readonly reason: 'throttled' | 'failing' } | undefined;
}

export interface ImageModelClient {
  /** Streams each generated image into `sink` and resolves once the whole upstream response was read and checked. */
  generateImages(request: ImageGenerationRequest, sink: ImageSink, options?: CallOptions): Promise<ImageGenerationResult>;
  /** Sends the edit (inputs streamed from their chunks) and streams each resulting image into `sink`, like `generateImages`. */
  editImages(request: ImageEditRequest, sink: ImageSink, options?: CallOptions): Promise<ImageGenerationResult>;
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
  /** The parsed JSON of a record written by `saveRecord`, or undefined when there is none. */
  readRecord(blobName: string): Promise<unknown>;
  /** A read-only link to one blob, valid for the configured lifetime. */
  createReadLink(blobName: string): Promise<ReadLink>;
}

/** Where an edit may take its inputs by reference: the app's own containers, never an arbitrary URL. */
/** `jobs` holds the inputs of queued edit jobs; callers may only reference `images` and `inbox`. */
export type InputContainer = 'images' | 'inbox' | 'jobs';

export interface InputBlob {
  readonly size: number;
  readonly content: readonly Uint8Array[];
}

export interface InputImageStore {
  /**
   * Reads one blob of the images or inbox container, calling `checkSize` with its declared length
   * before reading and with the bytes read so far as they arrive, so that a blob over the caller's
   * limit is refused without being read whole. Throws a ValidationError naming `target` when the
   * blob does not exist.
   */
  readInputBlob(
    container: InputContainer,
    blobName: string,
    options: { readonly target: string; readonly checkSize: (bytes: number) => void; readonly abortSignal?: AbortSignal | undefined },
  ): Promise<InputBlob>;
  /** Keeps an edit's input for a job that runs later (jobs container). */
  saveJobInput(blobName: string, upload: ImageUpload): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export interface IdGenerator {
  newId(): string;
}

/** A stored value and the version it was read at; writes guarded by `etag` fail if anyone wrote since. */
export interface Versioned<T> {
  readonly value: T;
  readonly etag: string;
}

/** Small JSON documents with optimistic concurrency: the job records and idempotency claims. */
export interface DocumentStore {
  read(name: string): Promise<Versioned<unknown> | undefined>;
  /** Writes only if no document has that name; returns its etag, or undefined when one exists already. */
  create(name: string, value: unknown): Promise<string | undefined>;
  /** Writes only if the document is still at `etag`; returns the new etag, or undefined when it changed. */
  replace(name: string, value: unknown, etag: string): Promise<string | undefined>;
}

export interface JobQueueOptions {
  readonly delayInSeconds?: number | undefined;
  /** A watchdog of this attempt: it only takes the job over if that attempt is still running with its lease run out. */
  readonly watchAttempt?: number | undefined;
}

export interface JobQueue {
  /** Asks a worker to run the job, no sooner than `delayInSeconds` from now. */
  enqueue(jobId: string, options?: JobQueueOptions): Promise<void>;
}

/** One version (ETag) of a blob in the inbox, without its bytes. */
export interface InboxBlobVersion {
  readonly name: string;
  readonly etag: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** A blob dropped into the inbox, read at one version (its ETag). */
export interface InboxBlob extends InboxBlobVersion {
  readonly size: number;
  readonly content: readonly Uint8Array[];
}

export interface InboxStore {
  /** The blob as it is now; undefined when it was deleted since the event. */
  read(name: string): Promise<InboxBlob | undefined>;
  /** The blob's current version and metadata, without reading its bytes; undefined when there is none. */
  readProperties(name: string): Promise<InboxBlobVersion | undefined>;
  /** Adds the outcome to the metadata of the version that was read, only if the blob is still that version. */
  recordOutcome(source: InboxBlobVersion, outcome: Readonly<Record<string, string>>): Promise<void>;
}
