import { BlobServiceClient } from '@azure/storage-blob';
import { setTimeout as sleep } from 'node:timers/promises';

import type { EmulatorFault } from '../../emulator/server';
import { APP_SETTING_NAMES } from '../../src/config';
import { inputPng } from '../e2e/edits-fixtures';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { deliverInboxEvent } from '../helpers/blob-events';
import { readJsonBlob } from '../helpers/blobs';

// Finding 4 of the attack run: 502 bodies named our settings (AZURE_OPENAI_AUTH,
// AZURE_OPENAI_ENDPOINT, ...), UpstreamBadRequest relayed the upstream's message word for word, and
// InvalidJson echoed a fragment of the request body. Callers get what they can fix; operators get the
// rest in the log, under the id the caller was given.

interface ErrorBody {
  error: { code: string; message: string; target?: string; details?: Record<string, unknown> };
}

const SETTING_NAMES = new RegExp(APP_SETTING_NAMES.join('|'));

async function generate(stack: AppStack, body: string | object, query = ''): Promise<{ status: number; text: string; json: ErrorBody; headers: Headers }> {
  const response = await fetch(`${stack.host.url}/api/images/generations${query}`, {
    method: 'POST',
    headers: { 'x-functions-key': stack.host.functionKey, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: JSON.parse(text) as ErrorBody, headers: response.headers };
}

describe('error bodies', () => {
  describe('when our own configuration is wrong', () => {
    let stack: AppStack | undefined;
    const storage = BlobServiceClient.fromConnectionString(testStorageConnectionString());
    const inbox = storage.getContainerClient(uniqueContainerName('sec-err-inbox'));
    const outputs = storage.getContainerClient(uniqueContainerName('sec-err-outputs'));

    beforeAll(async () => {
      stack = await startAppStack({
        settings: {
          AZURE_OPENAI_API_KEY: 'not-the-emulator-key',
          AZURE_OPENAI_MAX_RETRIES: '0',
          INBOX_CONTAINER: inbox.containerName,
          OUTPUTS_CONTAINER: outputs.containerName,
        },
        host: { runQueueTriggers: true, queueTriggerSettings: { maxDequeueCount: 1, visibilityTimeoutInSeconds: 0 }, blobTriggers: 'webhook' },
      });
    });
    afterAll(() => stack?.close());

    it('name no setting in a 502, and log the details under the id the caller got', async () => {
      if (!stack) throw new Error('no stack');
      const refused = await generate(stack, { prompt: 'a lighthouse' });

      expect(refused.status).toBe(502);
      expect(refused.json.error.code).toBe('UpstreamAuthenticationFailed');
      expect(refused.text).not.toMatch(SETTING_NAMES);
      const invocationId = refused.headers.get('x-ms-invocation-id') ?? 'missing';
      expect(refused.json.error.message).toContain(invocationId);
      expect(stack.host.logs.some((line) => line.includes(invocationId) && line.includes('AZURE_OPENAI_AUTH'))).toBe(true);
    });

    it('name no setting in a failed job', async () => {
      if (!stack) throw new Error('no stack');
      const accepted = await fetch(`${stack.host.url}/api/images/generations?async=true`, {
        method: 'POST',
        headers: { 'x-functions-key': stack.host.functionKey, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'a job that cannot authenticate' }),
      });
      const { statusUrl: statusLink, resultUrl } = (await accepted.json()) as { statusUrl: string; resultUrl: string };
      let status: { status: string; error?: { code: string; message: string } } = { status: 'queued' };
      for (const deadline = Date.now() + 20_000; ['queued', 'running'].includes(status.status) && Date.now() < deadline; await sleep(100)) {
        status = (await (await fetch(statusLink)).json()) as typeof status;
      }

      expect(status.error?.code).toBe('UpstreamAuthenticationFailed');
      expect(JSON.stringify(status)).not.toMatch(SETTING_NAMES);
      const final = await fetch(resultUrl);
      expect(final.status).toBe(502);
      expect(await final.text()).not.toMatch(SETTING_NAMES);
    });

    it('name no setting in the manifest of a failed inbox edit', async () => {
      if (!stack) throw new Error('no stack');
      const upload = await inbox.getBlockBlobClient('photos/door.png').upload(inputPng, inputPng.length, { metadata: { prompt: 'paint it red' } });
      expect((await deliverInboxEvent(stack.host, inbox.getBlobClient('photos/door.png').url)).status).toBe(202);

      const manifest = outputs.getBlobClient(`photos/door.png/${(upload.etag ?? '').replace(/[^A-Za-z0-9]/g, '')}/manifest.json`);
      const text = JSON.stringify(await readJsonBlob<unknown>(manifest));
      expect(text).toContain('UpstreamAuthenticationFailed');
      expect(text).not.toMatch(SETTING_NAMES);
    });
  });

  describe('when the configured deployment does not exist', () => {
    let stack: AppStack | undefined;

    beforeAll(async () => {
      stack = await startAppStack({ settings: { AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1.5=deployment-nobody-made', AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-1.5' } });
    });
    afterAll(() => stack?.close());

    it('name neither the settings nor the deployment', async () => {
      if (!stack) throw new Error('no stack');
      const refused = await generate(stack, { prompt: 'a lighthouse' });

      expect(refused.status).toBe(502);
      expect(refused.json.error.code).toBe('UpstreamDeploymentNotFound');
      expect(refused.text).not.toMatch(SETTING_NAMES);
      expect(refused.text).not.toContain('deployment-nobody-made');
    });
  });

  describe('for what the caller sent', () => {
    let stack: AppStack | undefined;

    beforeAll(async () => {
      stack = await startAppStack({ settings: { AZURE_OPENAI_MAX_RETRIES: '0' } });
    });
    afterAll(() => stack?.close());
    beforeEach(() => stack?.emulator.reset());

    const refuse = (error: Extract<EmulatorFault, { kind: 'error' }>['error']) => stack?.emulator.enqueueFaults({ kind: 'error', status: 400, error });

    it("pass on an upstream parameter error, trimmed, without URLs or anything like a secret", async () => {
      if (!stack) throw new Error('no stack');
      refuse({
        code: 'invalid_value',
        param: 'size',
        type: 'invalid_request_error',
        message:
          "Invalid value: '1024x1024'. Supported values are: 'auto'. Sent to https://oai-prod-7.openai.azure.com/openai/deployments/prod-images " +
          `with api-key=0123456789abcdef0123456789abcdef and Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl. ${'More detail. '.repeat(200)}`,
      });
      const refused = await generate(stack, { prompt: 'a lighthouse', size: '1024x1024' });

      expect(refused.status).toBe(400);
      expect(refused.json.error).toMatchObject({ code: 'UpstreamBadRequest', target: 'size' });
      expect(refused.json.error.message).toContain("Invalid value: '1024x1024'. Supported values are: 'auto'.");
      expect(refused.text).not.toMatch(/oai-prod-7|prod-images|0123456789abcdef|eyJhbGciOi|c2lnbmF0dXJl/);
      expect(refused.json.error.message.length).toBeLessThan(600);
    });

    it('do not relay an upstream refusal that names no parameter', async () => {
      if (!stack) throw new Error('no stack');
      refuse({ code: 'tenant_policy', message: 'Routing table rt-eu-7 refused tenant 4f1c0a on shard 12 (internal).' });
      const refused = await generate(stack, { prompt: 'a lighthouse' });

      expect(refused.status).toBe(400);
      expect(refused.json.error.code).toBe('UpstreamBadRequest');
      expect(refused.text).not.toMatch(/rt-eu-7|tenant 4f1c0a|shard/);
    });

    it('pass on the content filter categories that refused the prompt', async () => {
      if (!stack) throw new Error('no stack');
      refuse({
        code: 'moderation_blocked',
        type: 'image_generation_user_error',
        param: null,
        message: 'Your request was rejected by the safety system. Include the request ID 7d1c-secret-request. safety_violations=[violence].',
        moderation_details: { moderation_stage: 'input', categories: ['violence'] },
      });
      const refused = await generate(stack, { prompt: 'a lighthouse' });

      expect(refused.status).toBe(400);
      expect(refused.json.error).toMatchObject({ code: 'contentFilter', details: { stage: 'input', categories: ['violence'] } });
      expect(refused.text).not.toContain('7d1c-secret-request');
    });

    it('give the position of a JSON syntax error, not the text around it', async () => {
      if (!stack) throw new Error('no stack');
      const broken = await generate(stack, '{"prompt": SECRETFRAGMENT-4711}');
      const multiline = await generate(stack, '{\n  "prompt": "fine",\n  PRIVATE-WORD\n}');
      const cut = await generate(stack, '{"prompt": "HIDDEN-TEXT');

      expect([broken.status, multiline.status, cut.status]).toEqual([400, 400, 400]);
      expect([broken, multiline, cut].map((response) => response.json.error.code)).toEqual(['InvalidJson', 'InvalidJson', 'InvalidJson']);
      expect(broken.json.error.message).toMatch(/line 1, column 12\b/);
      expect(multiline.json.error.message).toMatch(/line 3, column 3\b/);
      expect(cut.json.error.message).toMatch(/line 1, column 24\b/);
      expect([broken.text, multiline.text, cut.text].join('\n')).not.toMatch(/SECRETFRAGMENT|4711|PRIVATE|HIDDEN/);
    });
  });
});
