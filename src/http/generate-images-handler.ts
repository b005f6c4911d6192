import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';

import { ValidationError } from '../domain/errors';
import { generateImages } from '../domain/generate-images';
import type { ImageModel, ImageOptions } from '../domain/image-models';
import { isImageModel } from '../domain/image-models';
import type { Services } from '../services';
import { toImagesResponse } from './images-response';
import { handleAsJob, needsJob, readJobMode, refuseInlineImagesForJobs } from './jobs';
import { readJsonBody } from './read-body';
import type { ImageOptionFields } from './schemas';
import { generateImagesBody } from './schemas';

/** POST /images/generations: the upstream's request and response shape, with every image stored and linked. */
export function createGenerateImagesHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const services = await getServices();
    const mode = readJobMode(request);
    const body = await readJsonBody(request, generateImagesBody, services.config.limits.maxJsonBodyBytes);
    const model = resolveModel(body.model, services);
    const command = { prompt: body.prompt, model, user: body.user, options: { ...imageOptionsOf(body), style: body.style } };
    if (needsJob(mode)) {
      refuseInlineImagesForJobs(body.response_format);
      return handleAsJob(request, { operation: 'generate', command }, mode, services);
    }
    const result = await generateImages(
      { ...command, includeBase64: body.response_format === 'b64_json' },
      { ...services, deploymentFor: deploymentFor(services) },
    );
    context.info(`Generated ${result.images.length} image(s) as request ${result.requestId} with ${model}.`);
    return { status: 200, headers: { 'x-request-id': result.requestId }, jsonBody: toImagesResponse(result) };
  };
}

/** The parameters generations and edits share, from their wire names to the core's. */
export function imageOptionsOf(fields: ImageOptionFields): ImageOptions {
  return {
    n: fields.n,
    size: fields.size,
    quality: fields.quality,
    outputFormat: fields.output_format,
    outputCompression: fields.output_compression,
    background: fields.background,
    moderation: fields.moderation,
  };
}

/** The configured deployment of a model (a model without an entry is served by a deployment of its name). */
export const deploymentFor =
  (services: Pick<Services, 'config'>) =>
  (model: ImageModel): string =>
    services.config.openai.deployments.get(model) ?? model;

export function resolveModel(requested: string | undefined, services: Pick<Services, 'config'>): ImageModel {
  const { deployments, defaultModel } = services.config.openai;
  if (requested === undefined) return defaultModel;
  if (isImageModel(requested) && deployments.has(requested)) return requested;
  throw new ValidationError(`Unknown model '${requested}'. This app serves: ${[...deployments.keys()].join(', ')}.`, {
    code: 'UnknownModel',
    target: 'model',
  });
}
