import { z } from 'zod';

import type { Caller } from './callers';
import { StorageError, UpstreamError, ValidationError } from './errors';
import type { ImageInfo } from './image-format';
import type { ImageModel, ImageOptions } from './image-models';
import { checkImageOptions, IMAGE_MODELS } from './image-models';
import type { Metering } from './metering';
import type { CallOptions, Clock, IdGenerator, ImageGenerationRequest, ImageGenerationResult, ImageModelClient, ImageSink, ImageStore, StagedImage, StoredImage } from './ports';

export interface GenerateImagesCommand {
  readonly prompt: string;
  readonly model: ImageModel;
  readonly options: ImageOptions;
  readonly user?: string | undefined;
  /** Who is charged for the request (see callers.ts); kept with its record, its images and its usage. */
  readonly caller: Caller;
  /** Also return each image's bytes inline as base64 (`response_format: b64_json`). */
  readonly includeBase64: boolean;
}

export interface GeneratedImage extends StoredImage {
  readonly url: string;
  readonly expiresOn: Date;
  readonly revisedPrompt?: string | undefined;
}

export interface GenerateImagesResult {
  readonly requestId: string;
  readonly created: number;
  readonly model: ImageModel;
  readonly size: string;
  readonly quality: string;
  readonly outputFormat: string;
  readonly background?: string | undefined;
  readonly images: readonly GeneratedImage[];
  readonly usage?: Readonly<Record<string, unknown>> | undefined;
  readonly recordBlobName: string;
}

export interface GenerateImagesDependencies {
  readonly imageModel: ImageModelClient;
  readonly imageStore: ImageStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly deploymentFor: (model: ImageModel) => string;
  /** Budgets before the upstream call, usage and telemetry after it. */
  readonly metering: Metering;
}

export const imageBlobName = (requestId: string, index: number, extension: string) => `${requestId}/${index}.${extension}`;
export const recordBlobName = (requestId: string) => `${requestId}/request.json`;

/** Checks a generation request against the model's rules; throws one ValidationError listing every problem. */
export function assertValidGeneration(command: Pick<GenerateImagesCommand, 'model' | 'prompt' | 'options'>): void {
  assertValidOptions(command.model, command.prompt, command.options, 'generate');
}

/** Checks a request's parameters against the model's rules for the operation; throws one ValidationError listing every problem. */
export function assertValidOptions(model: ImageModel, prompt: string, options: ImageOptions, operation: 'generate' | 'edit'): void {
  const problems = checkImageOptions(model, prompt, options, operation);
  const first = problems[0];
  if (first) {
    throw new ValidationError(problems.length === 1 ? first.message : `The request has ${problems.length} problems; see details.`, {
      code: problems.length === 1 ? first.code : 'InvalidRequest',
      target: problems.length === 1 ? first.target : undefined,
      details: problems,
    });
  }
}

/**
 * Generates images, streams each into Blob Storage as it arrives, and commits them only once the
 * whole upstream response has been read and checked, so a failed call leaves no image behind.
 */
export async function generateImages(
  command: GenerateImagesCommand,
  dependencies: GenerateImagesDependencies,
  options: RequestOptions = {},
): Promise<GenerateImagesResult> {
  assertValidGeneration(command);
  return storeModelImages(
    {
      operation: 'generate',
      model: command.model,
      options: command.options,
      user: command.user,
      caller: command.caller,
      promptLength: command.prompt.length,
      inputImages: [],
      includeBase64: command.includeBase64,
      recordedRequest: { prompt: command.prompt, model: command.model, user: command.user, caller: command.caller.id, ...command.options },
    },
    dependencies,
    (sink, callOptions) =>
      dependencies.imageModel.generateImages({ ...upstreamFields(command, dependencies.deploymentFor), style: command.options.style }, sink, callOptions),
    options,
  );
}

/** The upstream request fields generations and edits fill alike, from the caller's command. */
export function upstreamFields(
  command: Pick<GenerateImagesCommand, 'model' | 'prompt' | 'options' | 'user'>,
  deploymentFor: (model: ImageModel) => string,
): Omit<ImageGenerationRequest, 'style'> {
  const { options } = command;
  return {
    model: command.model,
    deployment: deploymentFor(command.model),
    prompt: command.prompt,
    n: options.n ?? 1,
    size: options.size,
    quality: options.quality,
    outputFormat: options.outputFormat,
    outputCompression: options.outputCompression,
    background: options.background,
    moderation: options.moderation,
    user: command.user,
  };
}

export interface RequestOptions {
  readonly abortSignal?: AbortSignal | undefined;
  /** A job's id, so that a retried job writes to the same blob names instead of new ones. */
  readonly requestId?: string | undefined;
  /** Awaited before each upstream request (a job counts its paid calls). */
  readonly beforeUpstreamRequest?: (() => Promise<void>) | undefined;
}

/** What the shared store-and-link path needs to know about a generation or an edit. */
export interface ImageRequestDescription {
  readonly operation: 'generate' | 'edit';
  readonly model: ImageModel;
  readonly options: ImageOptions;
  readonly user?: string | undefined;
  readonly caller: Caller;
  /** For the cost estimate a budget reserves. */
  readonly promptLength: number;
  readonly inputImages: readonly { readonly width: number; readonly height: number }[];
  readonly includeBase64: boolean;
  /** The request as `request.json` keeps it: parameters and descriptions of inputs, never image bytes. */
  readonly recordedRequest: Readonly<Record<string, unknown>>;
}

/** One upstream call that streams its images into `sink`. */
export type ImageModelCall = (sink: ImageSink, callOptions: CallOptions) => Promise<ImageGenerationResult>;

/**
 * The part generations and edits share: stages every image the upstream streams, checks them,
 * commits them with their metadata, signs their links and writes the request record; on any
 * failure, discards what was staged.
 */
export async function storeModelImages(
  description: ImageRequestDescription,
  dependencies: Pick<GenerateImagesDependencies, 'imageStore' | 'clock' | 'ids' | 'metering'>,
  call: ImageModelCall,
  options: RequestOptions = {},
): Promise<GenerateImagesResult> {
  const { imageStore, clock, ids } = dependencies;
  const requestId = options.requestId ?? ids.newId();
  const requestedFormat = description.options.outputFormat ?? 'png';
  const staged: StagedImage[] = [];
  const recordName = recordBlobName(requestId);
  const meter = await dependencies.metering.start({
    requestId,
    operation: description.operation,
    model: description.model,
    caller: description.caller,
    n: description.options.n ?? 1,
    size: description.options.size,
    quality: description.options.quality,
    promptLength: description.promptLength,
    inputImages: description.inputImages,
  });
  let billed: ImageGenerationResult | undefined;
  let upstreamLatencyInMs: number | undefined;
  const billedCall = () =>
    billed && {
      usage: billed.usage,
      images: billed.images.length,
      size: billed.size === 'auto' ? undefined : billed.size,
      quality: billed.quality,
      upstreamRequestId: billed.upstreamRequestId,
    };
  try {
    const callStarted = clock.now().getTime();
    const generation = await call(
      {
        openImage: (index) => {
          const image = imageStore.stageImage(imageBlobName(requestId, index, requestedFormat), {
            keepBytes: description.includeBase64,
            abortSignal: options.abortSignal,
          });
          staged.push(image);
          return image;
        },
      },
      { abortSignal: options.abortSignal, requestId, beforeUpstreamRequest: options.beforeUpstreamRequest },
    ).finally(() => {
      upstreamLatencyInMs = clock.now().getTime() - callStarted;
    });
    // From here on the upstream has billed the call, whatever happens to its images.
    billed = generation;

    const checked = staged.map((image, index) => ({
      ...checkedInfo(image, index, requestedFormat),
      blobName: imageBlobName(requestId, index, requestedFormat),
      bytes: image.bytesWritten,
      revisedPrompt: generation.images[index]?.revisedPrompt,
    }));
    const first = checked[0];
    if (!first) throw new UpstreamError('UpstreamInvalidResponse', 'The upstream answered without any image.');
    const size = generation.size && generation.size !== 'auto' ? generation.size : `${first.width}x${first.height}`;
    const quality = generation.quality ?? description.options.quality ?? 'auto';
    const metadata = {
      model: description.model,
      size,
      quality,
      format: requestedFormat,
      requestid: requestId,
      caller: encodeURIComponent(description.caller.id),
      ...(description.user === undefined ? {} : { user: encodeURIComponent(description.user) }),
    };
    const summary = {
      requestId,
      created: generation.created,
      model: description.model,
      size,
      quality,
      outputFormat: requestedFormat,
      background: generation.background ?? description.options.background,
      usage: generation.usage,
      recordBlobName: recordName,
    };
    const [stored, links] = await Promise.all([
      Promise.all(staged.map((image) => image.commit({ metadata }))),
      Promise.all(checked.map((image) => imageStore.createReadLink(image.blobName))),
    ]);
    // The record goes last: it marks the request complete, and a job that finds it after a crash
    // finishes from it without calling the upstream again, so it must never exist without its images.
    await imageStore.saveRecord(recordName, toRecord(description, summary, checked, generation.upstreamRequestId, clock.now()), {
      abortSignal: options.abortSignal,
    });
    const images = stored.map((image, index) => ({
      ...image,
      url: links[index]?.url ?? '',
      expiresOn: links[index]?.expiresOn ?? clock.now(),
      revisedPrompt: generation.images[index]?.revisedPrompt,
    }));
    await meter.finish({ billed: billedCall(), upstreamLatencyInMs });
    return { ...summary, images };
  } catch (error: unknown) {
    await Promise.allSettled(staged.map((image) => image.discard()));
    await meter.finish({ billed: billedCall(), error, upstreamLatencyInMs });
    throw error;
  }
}

function checkedInfo(image: StagedImage, index: number, requestedFormat: string): ImageInfo {
  const info = image.info();
  if (!info) {
    throw new UpstreamError('UpstreamInvalidResponse', `Image ${index} from the upstream is not a PNG, JPEG or WebP image.`);
  }
  if (info.type !== requestedFormat) {
    throw new UpstreamError('UpstreamInvalidResponse', `Image ${index} from the upstream is ${info.type}, but ${requestedFormat} was requested.`);
  }
  return info;
}

const storedRecordSchema = z.object({
  id: z.string(),
  request: z.object({ model: z.enum(IMAGE_MODELS) }).loose(),
  response: z.object({
    created: z.number(),
    size: z.string(),
    quality: z.string(),
    outputFormat: z.string(),
    background: z.string().optional(),
    usage: z.record(z.string(), z.unknown()).optional(),
  }),
  images: z.array(
    z.object({
      blobName: z.string(),
      contentType: z.string(),
      bytes: z.number(),
      width: z.number(),
      height: z.number(),
      type: z.enum(['png', 'jpeg', 'webp']),
      revisedPrompt: z.string().optional(),
    }),
  ),
});

/**
 * The result of a request that already completed, rebuilt from the record stored beside its images,
 * with fresh links. Undefined when the request never completed (no record).
 */
export async function loadStoredResult(
  requestId: string,
  dependencies: Pick<GenerateImagesDependencies, 'imageStore'>,
): Promise<GenerateImagesResult | undefined> {
  const raw = await dependencies.imageStore.readRecord(recordBlobName(requestId));
  if (raw === undefined) return undefined;
  const parsed = storedRecordSchema.safeParse(raw);
  if (!parsed.success) throw new StorageError(`The stored record of request ${requestId} is not in the expected shape.`, parsed.error);
  const { request, response, images } = parsed.data;
  const links = await Promise.all(images.map((image) => dependencies.imageStore.createReadLink(image.blobName)));
  return {
    requestId,
    created: response.created,
    model: request.model,
    size: response.size,
    quality: response.quality,
    outputFormat: response.outputFormat,
    background: response.background,
    usage: response.usage,
    recordBlobName: recordBlobName(requestId),
    images: images.map((image, index) => ({
      ...image,
      url: links[index]?.url ?? '',
      expiresOn: links[index]?.expiresOn ?? new Date(0),
    })),
  };
}

type RecordedImage = ImageInfo & { readonly blobName: string; readonly bytes: number; readonly revisedPrompt?: string | undefined };

/** The full story of one request, stored beside its images: blob metadata cannot hold long or non-ASCII prompts. */
function toRecord(
  description: ImageRequestDescription,
  result: Omit<GenerateImagesResult, 'images'>,
  images: readonly RecordedImage[],
  upstreamRequestId: string | undefined,
  completedAt: Date,
) {
  return {
    id: result.requestId,
    operation: description.operation,
    completedAt: completedAt.toISOString(),
    request: description.recordedRequest,
    response: {
      created: result.created,
      size: result.size,
      quality: result.quality,
      outputFormat: result.outputFormat,
      background: result.background,
      usage: result.usage,
      upstreamRequestId,
    },
    images: images.map((image) => ({
      blobName: image.blobName,
      type: image.type,
      contentType: image.contentType,
      bytes: image.bytes,
      width: image.width,
      height: image.height,
      revisedPrompt: image.revisedPrompt,
    })),
  };
}
