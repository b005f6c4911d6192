import { UpstreamError, ValidationError } from './errors';
import type { ImageInfo } from './image-format';
import type { ImageModel, ImageOptions } from './image-models';
import { checkImageOptions } from './image-models';
import type { Clock, IdGenerator, ImageModelClient, ImageStore, StagedImage, StoredImage } from './ports';

export interface GenerateImagesCommand {
  readonly prompt: string;
  readonly model: ImageModel;
  readonly options: ImageOptions;
  readonly user?: string | undefined;
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
}

export const imageBlobName = (requestId: string, index: number, extension: string) => `${requestId}/${index}.${extension}`;
export const recordBlobName = (requestId: string) => `${requestId}/request.json`;

/** Checks a generation request against the model's rules; throws one ValidationError listing every problem. */
export function assertValidGeneration(command: Pick<GenerateImagesCommand, 'model' | 'prompt' | 'options'>): void {
  const problems = checkImageOptions(command.model, command.prompt, command.options, 'generate');
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
  options: { readonly abortSignal?: AbortSignal | undefined } = {},
): Promise<GenerateImagesResult> {
  assertValidGeneration(command);
  const { imageModel, imageStore, clock, ids } = dependencies;
  const requestId = ids.newId();
  const requestedFormat = command.options.outputFormat ?? 'png';
  const staged: StagedImage[] = [];
  const recordName = recordBlobName(requestId);
  let recordSaved: Promise<void> | undefined;
  try {
    const generation = await imageModel.generateImages(
      {
        model: command.model,
        deployment: dependencies.deploymentFor(command.model),
        prompt: command.prompt,
        n: command.options.n ?? 1,
        size: command.options.size,
        quality: command.options.quality,
        outputFormat: command.options.outputFormat,
        outputCompression: command.options.outputCompression,
        background: command.options.background,
        moderation: command.options.moderation,
        style: command.options.style,
        user: command.user,
      },
      {
        openImage: (index) => {
          const image = imageStore.stageImage(imageBlobName(requestId, index, requestedFormat), {
            keepBytes: command.includeBase64,
            abortSignal: options.abortSignal,
          });
          staged.push(image);
          return image;
        },
      },
      { abortSignal: options.abortSignal, requestId },
    );

    const checked = staged.map((image, index) => ({
      ...checkedInfo(image, index, requestedFormat),
      blobName: imageBlobName(requestId, index, requestedFormat),
      bytes: image.bytesWritten,
      revisedPrompt: generation.images[index]?.revisedPrompt,
    }));
    const first = checked[0];
    if (!first) throw new UpstreamError('UpstreamInvalidResponse', 'The upstream answered without any image.');
    const size = generation.size && generation.size !== 'auto' ? generation.size : `${first.width}x${first.height}`;
    const quality = generation.quality ?? command.options.quality ?? 'auto';
    const metadata = {
      model: command.model,
      size,
      quality,
      format: requestedFormat,
      requestid: requestId,
      ...(command.user === undefined ? {} : { user: encodeURIComponent(command.user) }),
    };
    const summary = {
      requestId,
      created: generation.created,
      model: command.model,
      size,
      quality,
      outputFormat: requestedFormat,
      background: generation.background ?? command.options.background,
      usage: generation.usage,
      recordBlobName: recordName,
    };
    // Everything is known once the response was checked, so the commits, the links and the record go
    // out together: one storage round trip after the upstream's last byte instead of three.
    recordSaved = imageStore.saveRecord(recordName, toRecord(command, summary, checked, generation.upstreamRequestId, clock.now()), {
      abortSignal: options.abortSignal,
    });
    const [stored, links] = await Promise.all([
      Promise.all(staged.map((image) => image.commit({ metadata }))),
      Promise.all(checked.map((image) => imageStore.createReadLink(image.blobName))),
      recordSaved,
    ]);
    const images = stored.map((image, index) => ({
      ...image,
      url: links[index]?.url ?? '',
      expiresOn: links[index]?.expiresOn ?? clock.now(),
      revisedPrompt: generation.images[index]?.revisedPrompt,
    }));
    return { ...summary, images };
  } catch (error: unknown) {
    await Promise.allSettled([
      ...staged.map((image) => image.discard()),
      // A record without its images would tell a story that did not happen; let its write finish first.
      ...(recordSaved ? [recordSaved.catch(() => undefined).then(() => imageStore.deleteRecord(recordName))] : []),
    ]);
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

type RecordedImage = ImageInfo & { readonly blobName: string; readonly bytes: number; readonly revisedPrompt?: string | undefined };

/** The full story of one request, stored beside its images: blob metadata cannot hold long or non-ASCII prompts. */
function toRecord(
  command: GenerateImagesCommand,
  result: Omit<GenerateImagesResult, 'images'>,
  images: readonly RecordedImage[],
  upstreamRequestId: string | undefined,
  completedAt: Date,
) {
  return {
    id: result.requestId,
    operation: 'generate',
    completedAt: completedAt.toISOString(),
    request: { prompt: command.prompt, model: command.model, user: command.user, ...command.options },
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
      contentType: image.contentType,
      bytes: image.bytes,
      width: image.width,
      height: image.height,
      revisedPrompt: image.revisedPrompt,
    })),
  };
}
