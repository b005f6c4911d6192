import type { HttpResponseInit } from '@azure/functions';

import type { Services } from '../services';
import type { SchemaObject } from './connector-fields';
import { editInputFields, field, promptField } from './connector-fields';
import { apiUrl } from './public-url';

/**
 * GET /swagger.json: the OpenAPI 2.0 definition of a Power Automate custom connector ("Import from
 * URL", or `npm run connector` for a package), in the connector conventions: PascalCase operation
 * ids, sentence-case summaries, Title Case `x-ms-summary` on every field, plumbing `internal`,
 * required and defaulted. The image operations run as jobs, so the connector polls the 202 instead
 * of timing out after 120 s. The model picker and each model's form come from the deployment
 * (`GET /models`) at design time, so the designer offers only what the server accepts.
 */
export function createOpenApiHandler(getServices: () => Promise<Services>) {
  return async (): Promise<HttpResponseInit> => {
    const { config } = await getServices();
    // Where callers reach the API, from the configuration: the request's Host is the caller's to choose.
    return { status: 200, headers: { 'cache-control': 'no-cache' }, jsonBody: openApiDocument(apiTarget(apiUrl(config, ''))) };
  };
}

/** Where the connector calls: scheme, host and base path. */
export interface ApiTarget {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly basePath: string;
}

/** The target of an absolute API base URL such as `https://myapp.azurewebsites.net/api`. */
export function apiTarget(apiBaseUrl: string): ApiTarget {
  const url = new URL(apiBaseUrl);
  return { scheme: url.protocol === 'https:' ? 'https' : 'http', host: url.host, basePath: url.pathname.replace(/\/+$/, '') || '/' };
}

/** Who publishes the connector; defaults to the deployment itself. */
export interface ConnectorPublisher {
  readonly website?: string | undefined;
  readonly privacyPolicy?: string | undefined;
  readonly contactName?: string | undefined;
  readonly contactEmail?: string | undefined;
}

export const CONNECTOR_TITLE = 'Imagegen Image Generation';
export const CONNECTOR_DESCRIPTION =
  'Generates and edits images with the gpt-image models of your own Azure deployment, keeps every result in your Blob Storage and ' +
  'returns read-only links. Long work runs as jobs, so flows never hit the 120-second limit.';

const errorSchema = { $ref: '#/definitions/Error' };
const ERROR_TEXT: Readonly<Record<string, string>> = {
  '400': 'The request is invalid, or the content filter refused the prompt or the image.',
  '404': 'There is no such resource, or its token is wrong.',
  '409': 'The request clashes with the current state: a reused Idempotency-Key, or a job that already runs.',
  '410': 'The job was cancelled before it ran.',
  '413': 'An input is too large.',
  '415': 'An input is not a PNG or JPEG image, or the body is not JSON.',
  '429': 'Azure OpenAI is throttling; retry after Retry-After.',
  '501': 'This app does not send callbacks until its operator configures them.',
  '500': 'The request failed unexpectedly, or the app is misconfigured; the message names the invocation to look up.',
  '502': 'Azure OpenAI failed or refused the app itself.',
  '503': 'The app could not use its storage; retry after Retry-After.',
  '504': 'Azure OpenAI or the job took too long.',
};

const retryAfterHeader = { 'Retry-After': { type: 'integer', description: 'Seconds to wait before trying again.' } };

/** Each status with its description and the error body; 401 comes from the Functions host with no body. */
function errorResponses(...statuses: string[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((status) => {
      if (status === '401') return [status, { description: 'The function key is missing or wrong (the host answers with no body).' }];
      const headers = status === '429' || status === '503' ? { headers: retryAfterHeader } : {};
      return [status, { description: ERROR_TEXT[status] ?? 'The request failed.', schema: errorSchema, ...headers }];
    }),
  );
}

const SERVER_ERRORS = ['500', '502', '503', '504'];

export function openApiDocument(target: ApiTarget, publisher: ConnectorPublisher = {}) {
  const siteUrl = `${target.scheme}://${target.host}`;
  const website = publisher.website ?? siteUrl;

  const asyncParameter = {
    name: 'async',
    in: 'query',
    type: 'boolean',
    required: true,
    default: true,
    'x-ms-visibility': 'internal',
    'x-ms-summary': 'Run as Job',
    description: 'Answer 202 at once and let the caller poll, so long work never hits the 120-second limit.',
  };
  const idempotencyParameter = {
    name: 'Idempotency-Key',
    in: 'header',
    type: 'string',
    required: false,
    'x-ms-visibility': 'advanced',
    'x-ms-summary': 'Idempotency Key',
    description: 'The same key with the same request returns the first result instead of paying again; use guid() from a Compose before the action.',
  };
  const modelParameter = (operation: 'generate' | 'edit') => ({
    name: 'model',
    in: 'query',
    type: 'string',
    required: true,
    'x-ms-visibility': 'important',
    'x-ms-summary': 'Model',
    description: operation === 'generate' ? 'The image model, from those this deployment serves.' : 'The image model, from those of this deployment that can edit.',
    'x-ms-dynamic-values': { operationId: 'ListModels', parameters: { operation }, 'value-collection': 'value', 'value-path': 'id', 'value-title': 'title' },
    'x-ms-dynamic-list': { operationId: 'ListModels', parameters: { operation: { value: operation } }, itemsPath: 'value', itemValuePath: 'id', itemTitlePath: 'title' },
  });
  const outputFormatParameter = {
    name: 'output_format',
    in: 'query',
    type: 'string',
    required: false,
    'x-ms-summary': 'Output Format',
    description: 'PNG (the default) or JPEG, where the model lets you choose; the options below follow it.',
    'x-ms-dynamic-values': { operationId: 'GetModel', parameters: { model: { parameter: 'model' } }, 'value-collection': 'outputFormats', 'value-path': 'id', 'value-title': 'title' },
    'x-ms-dynamic-list': { operationId: 'GetModel', parameters: { model: { parameterReference: 'model' } }, itemsPath: 'outputFormats', itemValuePath: 'id', itemTitlePath: 'title' },
  };
  // The form below the model: fetched per model and output format, so that it holds only what they accept.
  const requestBody = (operation: 'generate' | 'edit') => ({
    name: 'body',
    in: 'body',
    required: true,
    'x-ms-summary': 'Image Request',
    description: 'The prompt and the options the chosen model accepts.',
    schema: {
      type: 'object',
      required: operation === 'generate' ? ['prompt'] : ['prompt', 'images'],
      properties: { prompt: promptField(operation), ...(operation === 'edit' ? editInputFields() : {}) },
      'x-ms-dynamic-schema': {
        operationId: 'GetRequestSchema',
        parameters: { model: { parameter: 'model' }, operation, output_format: { parameter: 'output_format' } },
        'value-path': 'schema',
      },
      'x-ms-dynamic-properties': {
        operationId: 'GetRequestSchema',
        parameters: { model: { parameterReference: 'model' }, operation: { value: operation }, output_format: { parameterReference: 'output_format' } },
        itemValuePath: 'schema',
      },
    },
  });
  const jobIdParameter = {
    name: 'id',
    in: 'path',
    type: 'string',
    required: true,
    'x-ms-url-encoding': 'single',
    'x-ms-summary': 'Job ID',
    description: 'The id of the job (id in the answer of Generate or Edit).',
  };
  const tokenParameter = {
    name: 'token',
    in: 'query',
    type: 'string',
    required: true,
    'x-ms-summary': 'Job Token',
    description: 'The job token (job_token in the answer of Generate or Edit, token in a job, jobToken in an inbox manifest).',
  };
  const accepted = {
    description: 'Accepted: the job runs; the connector polls the Location until it answers something other than 202.',
    headers: {
      Location: { type: 'string', description: 'The job link to poll; it carries the job token.' },
      ...retryAfterHeader,
    },
    schema: { $ref: '#/definitions/Job' },
  };
  const imageResponses = {
    '200': { description: 'The images, stored in Blob Storage, with read-only links.', schema: { $ref: '#/definitions/ImagesResponse' } },
    '202': accepted,
    ...errorResponses('400', '401', '409', '413', '415', '429', ...SERVER_ERRORS),
  };
  const imageOperation = (operationId: string, summary: string, description: string, operation: 'generate' | 'edit') => ({
    operationId,
    summary,
    description,
    'x-ms-visibility': 'important',
    parameters: [asyncParameter, modelParameter(operation), outputFormatParameter, idempotencyParameter, requestBody(operation)],
    responses: imageResponses,
  });
  const modelPathParameter = {
    name: 'model',
    in: 'path',
    type: 'string',
    required: true,
    'x-ms-url-encoding': 'single',
    'x-ms-summary': 'Model',
    description: 'The id of a model this deployment serves.',
  };

  return {
    swagger: '2.0',
    info: {
      title: CONNECTOR_TITLE,
      description: CONNECTOR_DESCRIPTION,
      version: '1.1',
      contact: { name: publisher.contactName ?? 'Imagegen operator', url: website, ...(publisher.contactEmail ? { email: publisher.contactEmail } : {}) },
    },
    'x-ms-connector-metadata': [
      { propertyName: 'Website', propertyValue: website },
      { propertyName: 'Privacy policy', propertyValue: publisher.privacyPolicy ?? website },
      { propertyName: 'Categories', propertyValue: 'AI;Content and Files' },
    ],
    host: target.host,
    basePath: target.basePath,
    schemes: [target.scheme],
    consumes: ['application/json'],
    produces: ['application/json'],
    securityDefinitions: { api_key: { type: 'apiKey', in: 'header', name: 'x-functions-key' } },
    security: [{ api_key: [] }],
    'x-ms-capabilities': { testConnection: { operationId: 'ListModels', parameters: {} } },
    paths: {
      '/images/generations': {
        post: imageOperation('GenerateImage', 'Generate an image', 'Draws one or more images from a prompt and returns read-only links to them.', 'generate'),
      },
      '/images/edits': {
        post: imageOperation(
          'EditImage',
          'Edit an image',
          'Changes one or more images as the prompt says, optionally only where a mask allows, and returns links to the results.',
          'edit',
        ),
      },
      '/jobs/{id}': {
        get: {
          operationId: 'GetJob',
          summary: 'Get a job result',
          description: 'Waits for a generation or edit job to end, then returns its images with fresh links, or its error.',
          security: [],
          parameters: [jobIdParameter, tokenParameter],
          responses: {
            '200': { description: 'The images of the finished job, with fresh links.', schema: { $ref: '#/definitions/ImagesResponse' } },
            '202': accepted,
            ...errorResponses('400', '404', '410', '413', '415', '429', ...SERVER_ERRORS),
          },
        },
        delete: {
          operationId: 'CancelJob',
          summary: 'Cancel a job',
          description: 'Cancels a job that has not started yet, so that it is never run or paid for.',
          security: [],
          parameters: [jobIdParameter, tokenParameter],
          responses: {
            '200': { description: 'The job, now cancelled.', schema: { $ref: '#/definitions/Job' } },
            ...errorResponses('404', '409', '500', '503'),
          },
        },
      },
      '/jobs/{id}/status': {
        get: {
          operationId: 'GetJobStatus',
          summary: 'Get a job status',
          description: 'Returns the state of a job at once, with its result once there is one, for loops that poll on their own.',
          security: [],
          parameters: [jobIdParameter, tokenParameter],
          responses: {
            '200': { description: 'The state of the job.', schema: { $ref: '#/definitions/Job' } },
            ...errorResponses('404', '500', '503'),
          },
        },
      },
      '/models': {
        get: {
          operationId: 'ListModels',
          summary: 'List models',
          description: 'Lists the image models this deployment serves, with the sizes, qualities, formats and options each accepts.',
          parameters: [
            {
              name: 'operation',
              in: 'query',
              type: 'string',
              required: false,
              enum: ['generate', 'edit'],
              'x-ms-summary': 'Operation',
              description: 'Only the models that can do this: generate or edit.',
            },
          ],
          responses: { '200': { description: 'The models.', schema: { $ref: '#/definitions/ModelList' } }, ...errorResponses('400', '401', '500') },
        },
      },
      '/models/{model}': {
        get: {
          operationId: 'GetModel',
          summary: 'Get a model',
          description: 'Describes one image model of this deployment and the options it accepts.',
          'x-ms-visibility': 'internal',
          parameters: [modelPathParameter],
          responses: { '200': { description: 'The model.', schema: { $ref: '#/definitions/Model' } }, ...errorResponses('401', '404', '500') },
        },
      },
      '/models/{model}/schema': {
        get: {
          operationId: 'GetRequestSchema',
          summary: 'Get the request form of a model',
          description: 'Returns the request body a model accepts as a schema, which the designer turns into the form of Generate and Edit.',
          'x-ms-visibility': 'internal',
          parameters: [
            modelPathParameter,
            {
              name: 'operation',
              in: 'query',
              type: 'string',
              required: true,
              default: 'generate',
              enum: ['generate', 'edit'],
              'x-ms-summary': 'Operation',
              description: 'The form of which operation: generate or edit.',
            },
            { ...outputFormatParameter, 'x-ms-dynamic-values': undefined, 'x-ms-dynamic-list': undefined, enum: ['png', 'jpeg'] },
          ].map(withoutUndefined),
          responses: { '200': { description: 'The schema.', schema: { $ref: '#/definitions/RequestSchema' } }, ...errorResponses('400', '401', '404', '500') },
        },
      },
      '/subscriptions': {
        'x-ms-notification-content': {
          description: 'The manifest of the edit: its status, the links to the results (or the error), and the job link.',
          schema: { $ref: '#/definitions/InboxManifest' },
        },
        post: {
          operationId: 'OnInboxImageEdited',
          summary: 'When an inbox image is edited',
          description: 'Starts the flow when an image uploaded to the inbox has been edited (or could not be), with the manifest of the edit.',
          'x-ms-trigger': 'single',
          'x-ms-trigger-hint': 'To see it work, upload an image with a prompt in its metadata to the inbox container.',
          parameters: [
            {
              name: 'body',
              in: 'body',
              required: true,
              'x-ms-summary': 'Subscription',
              description: 'Where to send the manifests, and which uploads to send them for.',
              schema: {
                type: 'object',
                required: ['callbackUrl'],
                properties: {
                  callbackUrl: field('string', 'Callback URL', 'Where the manifests are sent; the platform fills it in.', {
                    'x-ms-notification-url': true,
                    'x-ms-visibility': 'internal',
                  }),
                  folder: field('string', 'Folder', "Only uploads under this inbox folder, such as 'product-shots'; empty for every upload.", {
                    'x-ms-visibility': 'important',
                  }),
                },
              },
            },
          ],
          responses: {
            '201': {
              description: 'Subscribed; deleting the Location ends the subscription.',
              headers: { Location: { type: 'string', description: 'The subscription link, to delete it.' } },
              schema: { $ref: '#/definitions/Subscription' },
            },
            ...errorResponses('400', '401', '500', '501', '503'),
          },
        },
      },
      '/subscriptions/{id}': {
        delete: {
          operationId: 'DeleteInboxSubscription',
          summary: 'Delete an inbox subscription',
          description: 'Ends a subscription of the inbox trigger; the platform calls it when the flow is turned off or deleted.',
          'x-ms-visibility': 'internal',
          security: [],
          parameters: [
            { name: 'id', in: 'path', type: 'string', required: true, 'x-ms-url-encoding': 'single', 'x-ms-summary': 'Subscription ID', description: 'The id of the subscription.' },
            { name: 'token', in: 'query', type: 'string', required: true, 'x-ms-summary': 'Subscription Token', description: 'The token from the subscription link.' },
          ],
          responses: { '204': { description: 'The subscription is gone.' }, ...errorResponses('404', '500', '503') },
        },
      },
    },
    definitions: DEFINITIONS,
  };
}

const withoutUndefined = (value: Record<string, unknown>) => Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));

const text = (summary: string, description: string, extra: SchemaObject = {}) => field('string', summary, description, extra);
const integer = (summary: string, description: string) => field('integer', summary, description, { format: 'int32' });
const strings = (summary: string, description: string, itemSummary: string) =>
  field('array', summary, description, { items: text(itemSummary, `One ${itemSummary.toLowerCase()}.`) });

const tokenCounts = (prefix: string) => ({
  text_tokens: integer(`${prefix} Text Tokens`, 'Tokens of text.'),
  image_tokens: integer(`${prefix} Image Tokens`, 'Tokens of images.'),
});

const ERROR_FIELDS = {
  code: text('Error Code', 'A stable, machine-readable code such as contentFilter or InvalidParameter.'),
  message: text('Error Message', 'What went wrong and how to fix it.'),
  target: text('Error Field', 'The field the error concerns.'),
  details: { 'x-ms-summary': 'Error Details', description: 'More about the error: every problem of a request, or what the content filter found.' },
};

const DEFINITIONS = {
  ImagesResponse: {
    type: 'object',
    properties: {
      id: text('Job ID', 'The id of the request, which is also the id of its job.'),
      job_token: text('Job Token', 'The job token, present when the request ran as a job: with the job ID it feeds Get job and Cancel job.'),
      created: integer('Created', 'Unix time of the generation.'),
      model: text('Model', 'The model that made the images.'),
      size: text('Size', 'The size of the images.'),
      quality: text('Quality', 'The quality of the images.'),
      output_format: text('Output Format', 'png or jpeg.'),
      background: text('Background', 'transparent or opaque, as the model made them.'),
      data: field('array', 'Images', 'One entry per image.', { items: { $ref: '#/definitions/Image' } }),
      usage: field('object', 'Usage', 'Tokens used, as Azure OpenAI counted them.', {
        properties: {
          input_tokens: integer('Input Tokens', 'Tokens of the prompt and input images.'),
          output_tokens: integer('Output Tokens', 'Tokens of the images made.'),
          total_tokens: integer('Total Tokens', 'Input and output tokens together.'),
          input_tokens_details: field('object', 'Input Token Details', 'Input tokens by kind.', { properties: tokenCounts('Input') }),
          output_tokens_details: field('object', 'Output Token Details', 'Output tokens by kind.', { properties: tokenCounts('Output') }),
        },
      }),
    },
  },
  Image: {
    type: 'object',
    properties: {
      url: text('Image Link', 'A read-only link to the image, valid until the link expiry.'),
      b64_json: text('Image Content', 'The image itself, base64-encoded, only when a synchronous request asked for it.', { format: 'byte' }),
      expires_at: text('Link Expiry', 'When the link stops working; Get job gives fresh links.', { format: 'date-time' }),
      blob_name: text('Blob Name', 'The name of the image in the images container.'),
      content_type: text('Content Type', 'image/png or image/jpeg.'),
      bytes: integer('File Size', 'The size of the image file in bytes.'),
      width: integer('Width', 'In pixels.'),
      height: integer('Height', 'In pixels.'),
      revised_prompt: text('Revised Prompt', 'The prompt as the model rewrote it, when it did.'),
    },
  },
  Job: {
    type: 'object',
    properties: {
      id: text('Job ID', 'The id of the job.'),
      token: text('Job Token', 'The job token: with the job ID it feeds Get job and Cancel job.'),
      status: text('Status', 'queued, running, succeeded, failed or cancelled.', { enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] }),
      operation: text('Operation', 'generate or edit.', { enum: ['generate', 'edit'] }),
      resultUrl: text('Result Link', 'The Location (GET /jobs/{id}): 202 until the job ends, then the images or the error; it carries the job token.'),
      statusUrl: text('Status Link', 'The job status route (GET /jobs/{id}/status): always 200 with the state, for Do until loops; it carries the job token.'),
      createdAt: text('Created', 'When the job was accepted.', { format: 'date-time' }),
      updatedAt: text('Updated', 'When the job last changed.', { format: 'date-time' }),
      attempts: integer('Attempts', 'How many times a worker has started the job.'),
      upstreamCalls: integer('Upstream Calls', 'Requests sent to Azure OpenAI for the job; more than one means one was refused, failed or repeated after a crash.'),
      error: { $ref: '#/definitions/ErrorBody' },
      result: { $ref: '#/definitions/ImagesResponse' },
    },
  },
  ModelList: {
    type: 'object',
    properties: { value: field('array', 'Models', 'The models this deployment serves.', { items: { $ref: '#/definitions/Model' } }) },
  },
  Model: {
    type: 'object',
    properties: {
      id: text('Model', 'The model id to send as model.'),
      title: text('Model Title', 'The id, marked when it is the default model.'),
      isDefault: field('boolean', 'Is Default', 'True for the model requests get when they name none.'),
      operations: strings('Operations', 'generate, and edit when the model can edit.', 'Operation'),
      sizes: strings('Sizes', 'The sizes the model offers.', 'Size'),
      customSizes: field('boolean', 'Custom Sizes', 'True when sizes other than those listed are accepted within the size rule.'),
      sizeRule: text('Size Rule', 'Which custom sizes are accepted, when they are.'),
      qualities: strings('Qualities', 'The qualities the model offers.', 'Quality'),
      outputFormats: field('array', 'Output Formats', 'The output formats the model lets you choose.', {
        items: {
          type: 'object',
          'x-ms-summary': 'Output Format',
          description: 'One output format.',
          properties: { id: text('Format', 'png or jpeg.'), title: text('Format Title', 'What the format is good for.') },
        },
      }),
      backgrounds: strings('Backgrounds', 'The backgrounds the model offers.', 'Background'),
      moderations: strings('Moderation Levels', 'The moderation levels the model offers.', 'Moderation Level'),
      styles: strings('Styles', 'The styles the model offers.', 'Style'),
      inputFidelities: strings('Input Fidelities', 'The input fidelities the model offers for edits.', 'Input Fidelity'),
      maxImages: integer('Max Images', 'The most images one request may ask for.'),
      maxPromptLength: integer('Max Prompt Length', 'The longest prompt the model accepts, in characters.'),
    },
  },
  RequestSchema: {
    type: 'object',
    properties: { schema: field('object', 'Request Schema', 'The request body the model accepts, as a JSON schema.') },
  },
  Subscription: {
    type: 'object',
    properties: {
      id: text('Subscription ID', 'The id of the subscription.'),
      folder: text('Folder', 'The inbox folder it watches; empty for all of the inbox.'),
      createdAt: text('Created', 'When the subscription was made.', { format: 'date-time' }),
    },
  },
  InboxManifest: {
    type: 'object',
    properties: {
      status: text('Status', 'succeeded or failed.'),
      jobId: text('Job ID', 'The id of the edit job.'),
      jobToken: text('Job Token', 'The job token: with the job ID it feeds Get job.'),
      source: field('object', 'Upload', 'The uploaded blob that was edited.', {
        properties: {
          name: text('Upload Name', 'The name of the upload in the inbox container.'),
          etag: text('Upload ETag', 'The version of the upload that was edited.'),
          bytes: integer('Upload Size', 'The size of the upload in bytes.'),
        },
      }),
      model: text('Model', 'The model that made the images.'),
      size: text('Size', 'The size of the images.'),
      quality: text('Quality', 'The quality of the images.'),
      outputFormat: text('Output Format', 'png or jpeg.'),
      images: field('array', 'Images', 'One entry per image made.', {
        items: {
          type: 'object',
          'x-ms-summary': 'Image',
          description: 'One image made.',
          properties: {
            blobName: text('Blob Name', 'The name of the image in the outputs container.'),
            url: text('Image Link', 'A read-only link to the image.'),
            expiresAt: text('Link Expiry', 'When the link stops working.', { format: 'date-time' }),
            contentType: text('Content Type', 'image/png or image/jpeg.'),
            bytes: integer('File Size', 'The size of the image file in bytes.'),
            width: integer('Width', 'In pixels.'),
            height: integer('Height', 'In pixels.'),
            revisedPrompt: text('Revised Prompt', 'The prompt as the model rewrote it, when it did.'),
          },
        },
      }),
      usage: field('object', 'Usage', 'Tokens used, as Azure OpenAI counted them.'),
      error: field('object', 'Edit Error', 'Why the edit failed, when it did.', {
        properties: {
          status: integer('Error Status', 'The HTTP status the same request would have been answered with.'),
          ...ERROR_FIELDS,
        },
      }),
      updatedAt: text('Updated', 'When the manifest was written.', { format: 'date-time' }),
    },
  },
  Error: { type: 'object', properties: { error: { $ref: '#/definitions/ErrorBody' } } },
  ErrorBody: { type: 'object', properties: ERROR_FIELDS },
};
