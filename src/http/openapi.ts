import type { HttpResponseInit } from '@azure/functions';

import type { AppConfig } from '../config';
import { MODEL_RULES } from '../domain/image-models';
import type { Services } from '../services';
import { apiUrl } from './public-url';

/**
 * GET /swagger.json: an OpenAPI 2.0 description for a Power Automate custom connector ("Import from
 * URL"), in the connector conventions: PascalCase operation ids, a summary and a description on
 * every operation, `x-ms-summary` on every field, plumbing hidden with `x-ms-visibility: internal`.
 * The image operations run as jobs (`async` defaults to true), so the connector polls instead of
 * timing out after 120 s; the 202 and its headers are declared.
 */
export function createOpenApiHandler(getServices: () => Promise<Services>) {
  return async (): Promise<HttpResponseInit> => {
    const { config } = await getServices();
    // Where callers reach the API, from the configuration: the request's Host is the caller's to choose.
    const api = new URL(apiUrl(config, ''));
    return {
      status: 200,
      headers: { 'cache-control': 'no-cache' },
      jsonBody: openApiDocument(config, { host: api.host, basePath: api.pathname, scheme: api.protocol === 'https:' ? 'https' : 'http' }),
    };
  };
}

const field = (type: string, summary: string, description: string, extra: Record<string, unknown> = {}) => ({
  type,
  'x-ms-summary': summary,
  description,
  ...extra,
});

const errorResponse = (description: string) => ({ description, schema: { $ref: '#/definitions/Error' } });

export function openApiDocument(config: AppConfig, { host, basePath, scheme }: { host: string; basePath: string; scheme: 'http' | 'https' }) {
  const models = [...config.openai.deployments.keys()];
  const editModels = models.filter((model) => MODEL_RULES[model].supportsEdits);
  const asyncParameter = {
    name: 'async',
    in: 'query',
    type: 'boolean',
    default: true,
    required: false,
    'x-ms-visibility': 'internal',
    'x-ms-summary': 'Run as a job',
    description: 'Answer 202 at once and let the caller poll, so long generations do not time out.',
  };
  const idempotencyParameter = {
    name: 'Idempotency-Key',
    in: 'header',
    type: 'string',
    required: false,
    'x-ms-visibility': 'advanced',
    'x-ms-summary': 'Idempotency key',
    description: 'The same key with the same request returns the first result instead of paying for another; use @{guid()} from a Compose.',
  };
  const jobIdParameter = { name: 'id', in: 'path', type: 'string', required: true, 'x-ms-summary': 'Job id', description: 'The id of the job.' };
  const tokenParameter = {
    name: 'token',
    in: 'query',
    type: 'string',
    required: true,
    'x-ms-summary': 'Job token',
    description: 'The token from the job links (resultUrl, statusUrl).',
  };
  const imageResponses = {
    '200': { description: 'The images, stored in Blob Storage, with read-only links.', schema: { $ref: '#/definitions/ImagesResponse' } },
    '202': {
      description: 'Accepted: the job runs; poll the Location until it answers something other than 202.',
      headers: {
        Location: { type: 'string', description: 'The job link to poll.' },
        'Retry-After': { type: 'integer', description: 'Seconds to wait before polling.' },
      },
      schema: { $ref: '#/definitions/Job' },
    },
    '400': errorResponse('The request is invalid, or the prompt or output was refused by the content filter.'),
    '401': { description: 'The function key is missing or wrong.' },
    '409': errorResponse('The Idempotency-Key was used with another request.'),
    '413': errorResponse('An input is too large.'),
    '415': errorResponse('An input is not a PNG or JPEG image.'),
    '429': errorResponse('Azure OpenAI is throttling; retry after Retry-After.'),
  };
  // Generation and edit differ only in their names and body fields; both run as jobs and answer alike.
  const imageOperation = (operationId: string, summary: string, description: string, required: string[], properties: Record<string, unknown>) => ({
    operationId,
    summary,
    description,
    parameters: [asyncParameter, idempotencyParameter, { name: 'body', in: 'body', required: true, schema: { type: 'object', required, properties } }],
    responses: imageResponses,
  });
  const common = {
    size: field('string', 'Size', "Width x height, e.g. 1024x1024, or 'auto'."),
    quality: field('string', 'Quality', 'low, medium, high or auto.', { enum: ['low', 'medium', 'high', 'auto'] }),
    n: field('integer', 'Number of images', 'How many images to return (1-10).', { minimum: 1, maximum: 10 }),
    output_format: field('string', 'Output format', 'png or jpeg.', { enum: ['png', 'jpeg'], 'x-ms-visibility': 'advanced' }),
    background: field('string', 'Background', 'transparent, opaque or auto.', { enum: ['transparent', 'opaque', 'auto'], 'x-ms-visibility': 'advanced' }),
    user: field('string', 'User', 'An id of the end user, for abuse monitoring.', { 'x-ms-visibility': 'advanced' }),
  };

  return {
    swagger: '2.0',
    info: {
      title: 'Image generation with Azure OpenAI',
      description: 'Generates and edits images with Azure OpenAI gpt-image models; every result is stored in Blob Storage and returned as a read-only link.',
      version: '1.0',
    },
    host,
    basePath,
    schemes: [scheme],
    consumes: ['application/json'],
    produces: ['application/json'],
    securityDefinitions: { function_key: { type: 'apiKey', in: 'header', name: 'x-functions-key' } },
    security: [{ function_key: [] }],
    paths: {
      '/images/generations': {
        post: imageOperation('GenerateImage', 'Generate images', 'Generates images from a prompt and returns links to them.', ['prompt'], {
          prompt: field('string', 'Prompt', 'What to draw.', { 'x-ms-visibility': 'important' }),
          model: field('string', 'Model', 'The image model.', { enum: models, default: config.openai.defaultModel }),
          ...common,
        }),
      },
      '/images/edits': {
        post: imageOperation(
          'EditImage',
          'Edit images',
          'Edits one or more images with a prompt, optionally within a mask, and returns links to the results.',
          ['prompt', 'images'],
          {
            prompt: field('string', 'Prompt', 'What to change.', { 'x-ms-visibility': 'important' }),
            images: field('array', 'Images', 'The PNG or JPEG images to edit (file content); the first is the one the mask applies to.', {
              'x-ms-visibility': 'important',
              items: field('string', 'Image', 'The file content of one image.', { format: 'byte' }),
            }),
            mask: field('string', 'Mask', 'A PNG with an alpha channel, the size of the first image; transparent pixels mark what to change.', {
              format: 'byte',
            }),
            model: field('string', 'Model', 'The image model.', editModels.length > 0 ? { enum: editModels } : {}),
            input_fidelity: field('string', 'Input fidelity', 'How closely to keep the input (low or high), where the model allows it.', {
              enum: ['low', 'high'],
              'x-ms-visibility': 'advanced',
            }),
            ...common,
          },
        ),
      },
      '/jobs/{id}': {
        get: {
          operationId: 'GetJob',
          summary: 'Get a job result',
          description: 'Answers 202 while the job runs, then the result of the generation or edit.',
          'x-ms-visibility': 'internal',
          security: [],
          parameters: [jobIdParameter, tokenParameter],
          responses: { ...imageResponses, '404': errorResponse('There is no such job, or the token is wrong.') },
        },
        delete: {
          operationId: 'CancelJob',
          summary: 'Cancel a job',
          description: 'Cancels a job that has not started yet.',
          security: [],
          parameters: [jobIdParameter, tokenParameter],
          responses: {
            '200': { description: 'The job, now cancelled.', schema: { $ref: '#/definitions/Job' } },
            '404': errorResponse('There is no such job, or the token is wrong.'),
            '409': errorResponse('The job already runs or ended.'),
          },
        },
      },
      '/jobs/{id}/status': {
        get: {
          operationId: 'GetJobStatus',
          summary: 'Get a job status',
          description: 'Always answers with the job status, and with the result once there is one.',
          security: [],
          parameters: [jobIdParameter, tokenParameter],
          responses: {
            '200': { description: 'The job status.', schema: { $ref: '#/definitions/Job' } },
            '404': errorResponse('There is no such job, or the token is wrong.'),
          },
        },
      },
    },
    definitions: {
      ImagesResponse: {
        type: 'object',
        properties: {
          id: field('string', 'Request id', 'The id of the request (and of its job).'),
          created: field('integer', 'Created', 'Unix time of the generation.'),
          model: field('string', 'Model', 'The model that made the images.'),
          size: field('string', 'Size', 'The size of the images.'),
          quality: field('string', 'Quality', 'The quality of the images.'),
          output_format: field('string', 'Output format', 'png or jpeg.'),
          data: field('array', 'Images', 'One entry per image.', { items: { $ref: '#/definitions/Image' } }),
          usage: field('object', 'Usage', 'Tokens used, as the upstream reports them.'),
        },
      },
      Image: {
        type: 'object',
        properties: {
          url: field('string', 'Link', 'A read-only link to the image, valid until expires_at.'),
          expires_at: field('string', 'Link expiry', 'When the link stops working.', { format: 'date-time' }),
          blob_name: field('string', 'Blob name', 'The name of the image in the images container.'),
          content_type: field('string', 'Content type', 'image/png or image/jpeg.'),
          bytes: field('integer', 'Size in bytes', 'The size of the image file.'),
          width: field('integer', 'Width', 'In pixels.'),
          height: field('integer', 'Height', 'In pixels.'),
          revised_prompt: field('string', 'Revised prompt', 'The prompt as the model rewrote it, when it did.'),
        },
      },
      Job: {
        type: 'object',
        properties: {
          id: field('string', 'Job id', 'The id of the job.'),
          status: field('string', 'Status', 'queued, running, succeeded, failed or cancelled.'),
          operation: field('string', 'Operation', 'generate or edit.'),
          resultUrl: field('string', 'Result link', 'The Location: 202 until the job ends, then the images or the error (GET /jobs/{id}); it carries the job token.'),
          statusUrl: field('string', 'Status link', 'The job status route (GET /jobs/{id}/status): always 200 with the state, for Do-until loops; it carries the job token.'),
          createdAt: field('string', 'Created', 'When the job was accepted.', { format: 'date-time' }),
          updatedAt: field('string', 'Updated', 'When the job last changed.', { format: 'date-time' }),
          attempts: field('integer', 'Attempts', 'How many times a worker has started the job.'),
          upstreamCalls: field('integer', 'Upstream calls', 'Requests sent to Azure OpenAI for the job; more than one means one was refused, failed or repeated after a crash.'),
          error: { $ref: '#/definitions/ErrorBody' },
          result: { $ref: '#/definitions/ImagesResponse' },
        },
      },
      Error: { type: 'object', properties: { error: { $ref: '#/definitions/ErrorBody' } } },
      ErrorBody: {
        type: 'object',
        properties: {
          code: field('string', 'Error code', 'A stable, machine-readable code such as contentFilter or InvalidParameter.'),
          message: field('string', 'Error message', 'What went wrong and how to fix it.'),
          target: field('string', 'Field', 'The field the error concerns.'),
        },
      },
    },
  };
}
