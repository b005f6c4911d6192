import { BlobServiceClient } from '@azure/storage-blob';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { deliverInboxEvent } from '../helpers/blob-events';
import type { CallbackReceiver } from '../helpers/callback-receiver';
import { startCallbackReceiver } from '../helpers/callback-receiver';
import { ConnectorDriver, fillForm, followLikeTheRuntime, undeclaredFields } from '../helpers/connector-driver';

// Every operation of the connector, run as the designer and the runtime would, knowing only the
// definition the deployment serves: pick lists and forms fetched from the deployment, internal
// parameters defaulted, booleans as True, files as base64 and as $content objects, 202 followed
// without the key, ids and tokens fed from earlier steps, and the trigger delivered to a receiver.

const HOUSE = readFileSync(join(__dirname, '..', '..', 'samples', 'house.png'));
const MASK = readFileSync(join(__dirname, '..', '..', 'samples', 'door-mask.png'));

type Json = Record<string, unknown>;

interface Images {
  id: string;
  job_token: string;
  model: string;
  output_format: string;
  data: { url: string; content_type: string }[];
}

const drivers: ConnectorDriver[] = [];

/** What an answer holds that the operation's declared schema for its status does not name. */
function undeclared(driver: ConnectorDriver, operationId: string, status: number, body: unknown): string[] {
  const responses = driver.find(operationId).operation['responses'] as Record<string, Json>;
  return undeclaredFields(driver.document, responses[String(status)]?.['schema'], body);
}

async function driverFor(stack: AppStack | undefined): Promise<ConnectorDriver> {
  if (!stack) throw new Error('the stack did not start');
  const response = await fetch(`${stack.host.url}/api/swagger.json`);
  expect(response.status).toBe(200);
  const driver = new ConnectorDriver((await response.json()) as Json, stack.host.functionKey);
  drivers.push(driver);
  return driver;
}

describe('the connector, driven as the designer would', () => {
  const inboxName = uniqueContainerName('designer-inbox');
  let stack: AppStack | undefined;
  let receiver: CallbackReceiver;
  let driver: ConnectorDriver;

  beforeAll(async () => {
    receiver = await startCallbackReceiver();
    stack = await startAppStack({
      settings: {
        JOBS_RETRY_AFTER_SECONDS: '1',
        INBOX_CONTAINER: inboxName,
        OUTPUTS_CONTAINER: uniqueContainerName('designer-outputs'),
        CALLBACKS_QUEUE: uniqueContainerName('designer-callbacks'),
        CALLBACK_SIGNING_SECRET: `whsec_${Buffer.alloc(32, 5).toString('base64')}`,
        CALLBACK_ALLOW_LOOPBACK: 'true',
      },
      host: { runQueueTriggers: true, blobTriggers: 'webhook' },
    });
    driver = await driverFor(stack);
  });

  afterAll(async () => {
    await stack?.close();
    await receiver.close();
  });

  it('offers the deployed models, only those that edit for Edit image, and the formats each lets you choose', async () => {
    const generateModels = await driver.dynamicValues('GenerateImage', 'model');
    const editModels = await driver.dynamicValues('EditImage', 'model');

    expect(generateModels.map((model) => model.value).sort()).toEqual(['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2']);
    expect(generateModels.find((model) => model.value === 'gpt-image-1.5')?.title).toBe('gpt-image-1.5 (default)');
    expect(editModels.map((model) => model.value).sort()).toEqual(['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2']);
    expect((await driver.dynamicValues('GenerateImage', 'output_format', { model: 'gpt-image-1' })).map((format) => format.value)).toEqual(['png', 'jpeg']);
  });

  it('gives each model a form with only what it accepts', async () => {
    const jpeg = await driver.dynamicSchema('GenerateImage', { model: 'gpt-image-1.5', output_format: 'jpeg' });
    const mini = await driver.dynamicSchema('EditImage', { model: 'gpt-image-1-mini' });
    const two = await driver.dynamicSchema('EditImage', { model: 'gpt-image-2' });
    const property = (schema: Json, name: string) => (schema['properties'] as Record<string, Json>)[name];

    expect(property(jpeg, 'background')?.['enum']).toEqual(['opaque', 'auto']);
    expect(property(jpeg, 'output_compression')).toMatchObject({ minimum: 0, maximum: 100 });
    expect(property(mini, 'input_fidelity')?.['enum']).toEqual(['low']);
    expect(property(two, 'input_fidelity')).toBeUndefined();
  });

  it.each(['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2'])(
    'runs Generate image with every field of the %s form filled, in each output format, to the images',
    async (model) => {
      for (const format of (await driver.dynamicValues('GenerateImage', 'output_format', { model })).map((choice) => choice.value)) {
        const form = await driver.dynamicSchema('GenerateImage', { model, output_format: format });
        const body = fillForm(form, { prompt: `a lighthouse drawn by ${model}`, user: 'maker-1' });

        const answer = await followLikeTheRuntime(await driver.call('GenerateImage', { model, output_format: format, body }));

        expect([model, format, answer.status]).toEqual([model, format, 200]);
        const images = (await answer.json()) as Images;
        expect(undeclared(driver, 'GenerateImage', 200, images)).toEqual([]);
        expect(images).toMatchObject({ model, output_format: format, job_token: expect.any(String) as unknown });
        expect(images.data[0]?.content_type).toBe(`image/${format}`);
      }
    },
  );

  it('runs Edit image with files as base64 (format: byte) and as $content objects', async () => {
    const form = await driver.dynamicSchema('EditImage', { model: 'gpt-image-1' });
    const asBase64 = fillForm(form, { prompt: 'paint the front door red', images: [HOUSE.toString('base64')], mask: MASK.toString('base64') });
    const asContent = fillForm(form, {
      prompt: 'paint the front door blue',
      images: [{ $content: HOUSE.toString('base64'), '$content-type': 'image/png' }],
      mask: { $content: MASK.toString('base64'), '$content-type': 'image/png' },
    });

    for (const body of [asBase64, asContent]) {
      const answer = await followLikeTheRuntime(await driver.call('EditImage', { model: 'gpt-image-1', body }));

      expect(answer.status).toBe(200);
      const images = (await answer.json()) as Images;
      expect((await fetch(images.data[0]?.url ?? '')).status).toBe(200);
    }
  });

  it('chains Get job and Get job status from the outputs of an earlier step', async () => {
    const started = await driver.call('GenerateImage', { model: 'gpt-image-1.5', body: { prompt: 'a chained step [emulator:slow=1500]', quality: 'low' } });
    // With the asynchronous pattern off, the step's output is the 202 body: the job and its token.
    const job = (await started.json()) as { id: string; token: string };
    const status = await driver.call('GetJobStatus', { id: job.id, token: job.token });
    const result = await followLikeTheRuntime(await driver.call('GetJob', { id: job.id, token: job.token }));
    const images = (await result.json()) as Images;
    const finalStatus = (await (await driver.call('GetJobStatus', { id: job.id, token: job.token })).json()) as Json;
    // Every field a later step may want is declared, so the designer offers it as dynamic content.
    expect(undeclared(driver, 'GenerateImage', 202, job)).toEqual([]);
    expect(undeclared(driver, 'GetJobStatus', 200, finalStatus)).toEqual([]);
    expect(finalStatus['result']).toBeDefined();
    // Later, from the images step's own outputs: fresh links to the same images.
    const again = await driver.call('GetJob', { id: images.id, token: images.job_token });

    expect(started.status).toBe(202);
    expect(status.status).toBe(200);
    expect(result.status).toBe(200);
    expect(again.status).toBe(200);
    expect(((await again.json()) as Images).data.map((image) => new URL(image.url).pathname)).toEqual(images.data.map((image) => new URL(image.url).pathname));
  });

  it('starts a flow when an inbox image is edited: the trigger subscribes, gets the manifest, and is unsubscribed', async () => {
    const body = Object.fromEntries(
      Object.entries(((driver.parameters('OnInboxImageEdited').find((parameter) => parameter.in === 'body')?.['schema'] as Json)['properties'] as Record<string, Json>)).flatMap(
        ([name, property]) => (property['x-ms-notification-url'] === true ? [[name, `${receiver.url}/flow-trigger?sig=s`]] : name === 'folder' ? [[name, 'designer']] : []),
      ),
    );
    const subscribed = await driver.call('OnInboxImageEdited', { body });
    const location = subscribed.headers.get('location') ?? '';

    expect(subscribed.status).toBe(201);
    const blob = BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(inboxName).getBlockBlobClient('designer/house.png');
    await blob.upload(HOUSE, HOUSE.length, { metadata: { prompt: 'paint the front door red', quality: 'low' } });
    if (!stack) throw new Error('the stack did not start');
    expect((await deliverInboxEvent(stack.host, blob.url)).status).toBe(202);
    const [notification] = await receiver.waitFor(1);
    const manifest: unknown = JSON.parse(notification?.body ?? '{}');
    expect(manifest).toMatchObject({ status: 'succeeded', source: { name: 'designer/house.png' } });
    const paths = driver.document['paths'] as Record<string, Json>;
    expect(undeclaredFields(driver.document, (paths['/subscriptions']?.['x-ms-notification-content'] as Json)['schema'], manifest)).toEqual([]);
    expect(undeclared(driver, 'OnInboxImageEdited', 201, await subscribed.clone().json())).toEqual([]);

    // The platform unsubscribes with DELETE on the Location: the DeleteInboxSubscription operation.
    const { pathname, searchParams } = new URL(location);
    const [, id = ''] = /\/subscriptions\/([^/]+)$/.exec(pathname) ?? [];
    const deleted = await driver.call('DeleteInboxSubscription', { id, token: searchParams.get('token') });
    expect(deleted.status).toBe(204);
  });
});

describe('the connector, cancelling a job before it runs', () => {
  let stack: AppStack | undefined;

  // No queue worker here, so that the job is still queued when it is cancelled.
  beforeAll(async () => {
    stack = await startAppStack({ settings: { JOBS_QUEUE: uniqueContainerName('designer-idle') } });
  });

  afterAll(() => stack?.close());

  it('runs Cancel job and the operations the designer calls on its own, from the definition', async () => {
    const driver = await driverFor(stack);
    const models = await driver.call('ListModels', {});
    const model = await driver.call('GetModel', { model: 'gpt-image-1.5' });
    const form = await driver.call('GetRequestSchema', { model: 'gpt-image-1.5', operation: 'generate' });
    const started = await driver.call('GenerateImage', { model: 'gpt-image-1.5', body: { prompt: 'never drawn' } });
    const job = (await started.json()) as { id: string; token: string };

    const cancelled = await driver.call('CancelJob', { id: job.id, token: job.token });
    const afterwards = await driver.call('GetJob', { id: job.id, token: job.token });

    expect([models.status, model.status, form.status, started.status]).toEqual([200, 200, 200, 202]);
    expect(undeclared(driver, 'ListModels', 200, await models.json())).toEqual([]);
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ id: job.id, status: 'cancelled' });
    expect(afterwards.status).toBe(410);
    expect(await afterwards.json()).toEqual({ error: { code: 'JobCancelled', message: expect.any(String) as unknown } });
  });
});

describe('every operation of the definition', () => {
  it('was driven by the tests above', () => {
    const called = new Set(drivers.flatMap((driver) => [...driver.called]));

    expect(drivers.length).toBeGreaterThan(0);
    for (const driver of drivers) expect(driver.operationIds().filter((id) => !called.has(id))).toEqual([]);
  });
});
