import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';

import { ValidationError } from '../domain/errors';
import { generateImages } from '../domain/generate-images';
import type { ImageModel } from '../domain/image-models';
import { isImageModel } from '../domain/image-models';
import type { Services } from '../services';
import { toImagesResponse } from './images-response';
import { handleAsJob, needsJob, readJobMode } from './jobs';
import { readJsonBody } from './read-body';
import { generateImagesBody } from './schemas';

/** POST /images/generations: the upstream's request and response shape, with every image stored and linked. */
export function createGenerateImagesHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const services = await getServices();
    const mode = readJobMode(request);
    const body = await readJsonBody(request, generateImagesBody, services.config.limits.maxJsonBodyBytes);
    const model = resolveModel(body.model, services);
    const command = {
      prompt: body.prompt,
      model,
      user: body.user,
      options: {
        n: body.n,
        size: body.size,
        quality: body.quality,
        outputFormat: body.output_format,
        outputCompression: body.output_compression,
        background: body.background,
        moderation: body.moderation,
        style: body.style,
      },
    };
    if (needsJob(mode)) {
      if (body.response_format === 'b64_json') {
        throw new ValidationError('response_format b64_json is not available for jobs (async or Idempotency-Key); read the images from data[].url.', {
          code: 'UnsupportedParameter',
          target: 'response_format',
        });
      }
      return handleAsJob(request, { operation: 'generate', command }, mode, services);
    }
    const result = await generateImages(
      { ...command, includeBase64: body.response_format === 'b64_json' },
      { ...services, deploymentFor: (chosen) => services.config.openai.deployments.get(chosen) ?? chosen },
    );
    context.info(`Generated ${result.images.length} image(s) as request ${result.requestId} with ${model}.`);
    return { status: 200, headers: { 'x-request-id': result.requestId }, jsonBody: toImagesResponse(result) };
  };
}

export function resolveModel(requested: string | undefined, services: Pick<Services, 'config'>): ImageModel {
  const { deployments, defaultModel } = services.config.openai;
  if (requested === undefined) return defaultModel;
  if (isImageModel(requested) && deployments.has(requested)) return requested;
  throw new ValidationError(`Unknown model '${requested}'. This app serves: ${[...deployments.keys()].join(', ')}.`, {
    code: 'UnknownModel',
    target: 'model',
  });
}
