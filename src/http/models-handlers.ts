import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { z } from 'zod';

import { NotFoundError, ValidationError } from '../domain/errors';
import type { ImageModel } from '../domain/image-models';
import { isImageModel, OUTPUT_FORMATS } from '../domain/image-models';
import { describeModel, operationsOf, outputFormatsOf } from '../domain/model-options';
import type { Services } from '../services';
import { requestBodySchema } from './connector-fields';
import { parseWith } from './read-body';
import { oneOf } from './schemas';

// The deployment's models and what each accepts, from the rules request validation uses: the
// connector's model picker (x-ms-dynamic-values) and per-model form (x-ms-dynamic-schema) read them.

const operationField = oneOf('operation', ['generate', 'edit']);
const listQuery = z.object({ operation: operationField.optional() });
const schemaQuery = z.object({
  operation: operationField.optional().transform((value) => value ?? 'generate'),
  output_format: oneOf('output_format', OUTPUT_FORMATS).optional(),
});

const queryOf = (request: HttpRequest, names: readonly string[]) => Object.fromEntries(names.map((name) => [name, request.query.get(name) ?? undefined]));
const headers = { 'cache-control': 'no-cache' };

function deployedModel(request: HttpRequest, services: Services): ImageModel {
  const model = request.params['model'] ?? '';
  if (!isImageModel(model) || !services.config.openai.deployments.has(model)) {
    throw new NotFoundError('ModelNotFound', `This app serves no model '${model}'; GET /api/models lists the ones it serves.`);
  }
  return model;
}

/** GET /models[?operation=edit]: the models this deployment serves (those that can do `operation`). */
export function createListModelsHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const services = await getServices();
    const { operation } = parseWith(listQuery, queryOf(request, ['operation']));
    const { deployments, defaultModel } = services.config.openai;
    const models = [...deployments.keys()].filter((model) => operation === undefined || operationsOf(model).includes(operation));
    return { status: 200, headers, jsonBody: { value: models.map((model) => describeModel(model, defaultModel)) } };
  };
}

/** GET /models/{model}: one model's description. */
export function createGetModelHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const services = await getServices();
    const model = deployedModel(request, services);
    return { status: 200, headers, jsonBody: describeModel(model, services.config.openai.defaultModel) };
  };
}

/** GET /models/{model}/schema?operation=&output_format=: the request body the model accepts, as a Swagger schema. */
export function createModelSchemaHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const services = await getServices();
    const model = deployedModel(request, services);
    const query = parseWith(schemaQuery, queryOf(request, ['operation', 'output_format']));
    if (!operationsOf(model).includes(query.operation)) {
      throw new ValidationError(`${model} cannot ${query.operation} images; GET /api/models?operation=${query.operation} lists the models that can.`, {
        code: 'OperationNotSupported',
        target: 'operation',
      });
    }
    if (query.output_format !== undefined && !outputFormatsOf(model).includes(query.output_format)) {
      throw new ValidationError(`${model} does not let callers choose the output format; omit output_format.`, {
        code: 'UnsupportedParameter',
        target: 'output_format',
      });
    }
    return { status: 200, headers, jsonBody: { schema: requestBodySchema(model, query.operation, query.output_format) } };
  };
}
