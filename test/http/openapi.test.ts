import SwaggerParser from '@apidevtools/swagger-parser';

import { IMAGE_MODELS } from '../../src/domain/image-models';
import { describeModel, outputFormatsOf } from '../../src/domain/model-options';
import { requestBodySchema } from '../../src/http/connector-fields';
import { apiTarget, openApiDocument } from '../../src/http/openapi';
import { connectorRuleViolations, isSentenceCase, isTitleCase, operations } from '../helpers/connector-rules';

// The connector definition, checked as the designer and a certification review would: a Swagger 2.0
// validator, then the connector rules as explicit checks. The end-to-end run of every operation is
// test/e2e/connector-designer.test.ts.

type Json = Record<string, unknown>;

const document = () => openApiDocument(apiTarget('https://myapp.azurewebsites.net/api')) as unknown as Json;
const operation = (id: string) => operations(document()).find((entry) => entry.operation['operationId'] === id)?.operation ?? {};
const parameter = (id: string, name: string) => ((operation(id)['parameters'] as Json[]).find((entry) => entry['name'] === name) ?? {});
const definition = (name: string) => ((document()['definitions'] as Record<string, Json>)[name]?.['properties'] ?? {}) as Record<string, Json>;

describe('the connector definition', () => {
  it('is valid Swagger 2.0', async () => {
    await expect(SwaggerParser.validate(structuredClone(document()) as never)).resolves.toBeDefined();
  });

  it('follows the connector rules', () => {
    expect(connectorRuleViolations(document())).toEqual([]);
  });

  it('is for the host it was made for, with the function key as its API key', () => {
    expect(document()).toMatchObject({
      host: 'myapp.azurewebsites.net',
      basePath: '/api',
      schemes: ['https'],
      securityDefinitions: { api_key: { type: 'apiKey', in: 'header', name: 'x-functions-key' } },
    });
  });

  it.each(['GenerateImage', 'EditImage'])('%s runs as a job whatever the client: async is internal, required and true by default', (id) => {
    expect(parameter(id, 'async')).toMatchObject({ in: 'query', type: 'boolean', required: true, default: true, 'x-ms-visibility': 'internal' });
  });

  it.each(['GenerateImage', 'EditImage'])('%s takes its model from the deployment and its form from the model', (id) => {
    expect(parameter(id, 'model')).toMatchObject({ required: true, 'x-ms-dynamic-values': { operationId: 'ListModels' } });
    expect(parameter(id, 'model')).not.toHaveProperty('enum');
    expect(parameter(id, 'output_format')).toMatchObject({ 'x-ms-dynamic-values': { operationId: 'GetModel' } });
    expect(parameter(id, 'body')['schema']).toMatchObject({
      'x-ms-dynamic-schema': { operationId: 'GetRequestSchema', 'value-path': 'schema' },
      'x-ms-dynamic-properties': { operationId: 'GetRequestSchema', itemValuePath: 'schema' },
    });
  });

  it('declares the job token as an output of every answer a later step may need it from', () => {
    expect(Object.keys(definition('ImagesResponse'))).toEqual(expect.arrayContaining(['id', 'job_token', 'background']));
    expect(Object.keys(definition('Job'))).toEqual(expect.arrayContaining(['id', 'token', 'statusUrl', 'resultUrl']));
    expect(Object.keys(definition('InboxManifest'))).toEqual(expect.arrayContaining(['jobId', 'jobToken']));
  });

  it('declares the answers of the job route: 202, 410 when cancelled, and the 5xx, each with the error schema', () => {
    const responses = operation('GetJob')['responses'] as Record<string, Json>;

    expect(Object.keys(responses)).toEqual(expect.arrayContaining(['200', '202', '400', '404', '410', '500', '502', '503', '504']));
    expect(responses['410']?.['schema']).toEqual({ $ref: '#/definitions/Error' });
  });

  it('has a trigger for inbox edits that subscribes with the notification URL and is unsubscribed by DELETE', () => {
    const trigger = operation('OnInboxImageEdited');
    const body = parameter('OnInboxImageEdited', 'body')['schema'] as Json;

    expect(trigger).toMatchObject({ 'x-ms-trigger': 'single', responses: { '201': { headers: { Location: { type: 'string' } } } } });
    expect((body['properties'] as Record<string, Json>)['callbackUrl']).toMatchObject({ 'x-ms-notification-url': true, 'x-ms-visibility': 'internal' });
    expect((document()['paths'] as Record<string, Json>)['/subscriptions']?.['x-ms-notification-content']).toMatchObject({ schema: { $ref: '#/definitions/InboxManifest' } });
    expect(operation('DeleteInboxSubscription')).toMatchObject({ 'x-ms-visibility': 'internal', security: [] });
  });

  const forms = IMAGE_MODELS.flatMap((model) =>
    describeModel(model, model).operations.flatMap((op) => [undefined, ...outputFormatsOf(model)].map((format) => [model, op, format ?? 'png by default'] as const)),
  );

  it.each(forms)('%s %s (%s): the form the designer gets follows the rules too', async (model, op, format) => {
    const schema = requestBodySchema(model, op, format === 'png by default' ? undefined : format);
    const withForm = { ...document(), definitions: { ...(document()['definitions'] as Json), Form: schema } };

    await expect(SwaggerParser.validate(structuredClone(withForm) as never)).resolves.toBeDefined();
    expect(connectorRuleViolations(withForm)).toEqual([]);
  });
});

describe('the connector rules', () => {
  it('catch what a review found in the first definition', () => {
    const first = document();
    const broken = {
      ...first,
      info: { title: 'Image generation with Azure OpenAI', description: 'Too short.', version: '1.0' },
      'x-ms-connector-metadata': undefined,
      paths: {
        '/images/generations': {
          post: {
            ...operation('GenerateImage'),
            summary: 'Generate Images.',
            parameters: [{ name: 'async', in: 'query', type: 'boolean', default: true, required: false, 'x-ms-visibility': 'internal', 'x-ms-summary': 'Run as a job', description: 'x' }],
            responses: { default: { description: 'Anything.' } },
          },
        },
      },
    };

    expect(connectorRuleViolations(broken)).toEqual(
      expect.arrayContaining([
        "info.title 'Image generation with Azure OpenAI' must be 1-30 characters (it has 34)",
        "info.title 'Image generation with Azure OpenAI' contains 'azure'",
        'info.description must be 30-500 characters (it has 10)',
        'info.contact needs a name and a url or email',
        'x-ms-connector-metadata lacks Website',
        "POST /images/generations: summary 'Generate Images.' must be sentence case, 1-80 characters, no period",
        'POST /images/generations: declares a default response; declare each status',
        'POST /images/generations: declares no 2xx response',
        "POST /images/generations parameter async: x-ms-summary 'Run as a job' is not Title Case",
        'POST /images/generations parameter async: internal but not required with a default',
      ]),
    );
  });

  it('know Title Case and sentence case', () => {
    expect(['Run as Job', 'Number of Images', 'Job ID', 'JPEG Compression'].every(isTitleCase)).toBe(true);
    expect(['Run as a job', 'Job id', 'number of Images'].some(isTitleCase)).toBe(false);
    expect(['Generate an image', 'When an inbox image is edited', 'Get a PNG'].every(isSentenceCase)).toBe(true);
    expect(['Generate An Image', 'Generate an image.', 'generate an image'].some(isSentenceCase)).toBe(false);
  });
});
