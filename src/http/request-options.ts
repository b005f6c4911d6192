import { ValidationError } from '../domain/errors';
import type { ImageModel, ImageOptions } from '../domain/image-models';
import { isImageModel } from '../domain/image-models';
import type { Services } from '../services';
import type { ImageOptionFields } from './schemas';

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
