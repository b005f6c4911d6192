import { BlobServiceClient } from '@azure/storage-blob';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';

import type { RunningEmulator } from '../../emulator/server';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { deliverInboxEvent } from '../helpers/blob-events';
import type { CallbackReceiver, ReceivedCallback } from '../helpers/callback-receiver';
import { startCallbackReceiver } from '../helpers/callback-receiver';
import type { TestFunctionsHost } from '../helpers/functions-host';

// Push instead of polling, through the local stack: the HTTP Webhook pattern (Callback-Url, DELETE
// /callbacks) and the inbox trigger's subscriptions, delivered to a local receiver. Loopback
// receivers are allowed here by CALLBACK_ALLOW_LOOPBACK, the setting for local development only.

const SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const HOUSE = readFileSync(join(__dirname, '..', '..', 'samples', 'house.png'));

interface JobBody {
  id: string;
  token: string;
  status: string;
  statusUrl: string;
  resultUrl: string;
}

const verify = (callback: ReceivedCallback): unknown => new Webhook(SECRET).verify(callback.body, callback.headers);

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutInMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutInMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function stackSettings(names: { jobs: string; callbacks: string; inbox: string; outputs: string; jobsQueue: string }) {
  return {
    settings: {
      CALLBACK_SIGNING_SECRET: SECRET,
      CALLBACK_ALLOW_LOOPBACK: 'true',
      JOBS_CONTAINER: names.jobs,
      JOBS_QUEUE: names.jobsQueue,
      CALLBACKS_QUEUE: names.callbacks,
      INBOX_CONTAINER: names.inbox,
      OUTPUTS_CONTAINER: names.outputs,
      JOBS_RETRY_AFTER_SECONDS: '1',
    },
    host: { runQueueTriggers: true, blobTriggers: 'webhook' as const },
  };
}

const freshNames = () => ({
  jobs: uniqueContainerName('cb-jobs'),
  callbacks: uniqueContainerName('cb-callbacks'),
  inbox: uniqueContainerName('cb-inbox'),
  outputs: uniqueContainerName('cb-outputs'),
  jobsQueue: uniqueContainerName('cb-jobs-q'),
});

describe('callbacks through the local stack', () => {
  const names = freshNames();
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;
  let emulator: RunningEmulator;
  let receiver: CallbackReceiver;

  beforeAll(async () => {
    receiver = await startCallbackReceiver();
    stack = await startAppStack(stackSettings(names));
    ({ host, emulator } = stack);
  });

  afterAll(async () => {
    await stack?.close();
    await receiver.close();
  });

  beforeEach(() => {
    receiver.reset();
    emulator.reset();
  });

  const generate = (prompt: string, callbackUrl: string) =>
    fetch(`${host.url}/api/images/generations`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', 'callback-url': callbackUrl },
      body: JSON.stringify({ prompt, quality: 'low' }),
    });

  describe('the HTTP Webhook pattern', () => {
    it('answers 202 at once and POSTs the body the job link gives when the job ends, signed', async () => {
      const start = await generate('a lighthouse', `${receiver.url}/flows/run-1?sig=secret-of-the-flow`);
      const job = (await start.json()) as JobBody;

      expect(start.status).toBe(202);
      const [callback] = await receiver.waitFor(1);
      const atLink = await fetch(job.resultUrl);
      const linkBody = (await atLink.json()) as Record<string, unknown>;

      expect(callback).toMatchObject({ method: 'POST', path: '/flows/run-1?sig=secret-of-the-flow' });
      expect(callback?.headers).toMatchObject({ 'content-type': 'application/json', 'imagegen-event': 'job.ended', 'imagegen-job-status': 'succeeded', 'imagegen-status-code': '200', 'webhook-id': `job_${job.id}` });
      const delivered = verify(callback as ReceivedCallback) as Record<string, unknown>;
      // The same answer as the link's, down to the job token; only the freshly signed links differ.
      const withoutLinks = (body: Record<string, unknown>) => JSON.stringify(body, (key, value: unknown) => (key === 'url' || key === 'expires_at' ? undefined : value));
      expect(withoutLinks(delivered)).toBe(withoutLinks(linkBody));
      expect(delivered).toMatchObject({ id: job.id, job_token: job.token });
      expect(emulator.requests).toHaveLength(1);
    });

    it("delivers a failed job's error as its link answers it", async () => {
      const start = await generate('a cat [emulator:filter-input]', `${receiver.url}/flows/run-2`);

      expect(start.status).toBe(202);
      const [callback] = await receiver.waitFor(1);
      expect(callback?.headers).toMatchObject({ 'imagegen-job-status': 'failed', 'imagegen-status-code': '400' });
      expect(verify(callback as ReceivedCallback)).toMatchObject({ error: { code: 'contentFilter' } });
    });

    it('tries again after a failure, when the receiver says (Retry-After)', async () => {
      receiver.answerNext({ status: 503, headers: { 'retry-after': '1' } });

      const start = await generate('a windmill', `${receiver.url}/flows/run-3`);
      const job = (await start.json()) as JobBody;
      const [first, second] = await receiver.waitFor(2);

      expect(first?.headers['webhook-id']).toBe(`job_${job.id}`);
      expect(second?.headers['webhook-id']).toBe(`job_${job.id}`);
      expect(verify(second as ReceivedCallback)).toMatchObject({ id: job.id });
      expect(host.logs.some((line) => line.includes(`Could not deliver the callback of job ${job.id} on attempt 1: the receiver answered 503; trying again in 1 s.`))).toBe(true);
    });

    it('stops when the subscription is deleted, as Power Automate does when the run is cancelled', async () => {
      const url = `${receiver.url}/flows/cancelled-run`;
      const start = await generate('a slow ship [emulator:slow=2500]', url);
      const job = (await start.json()) as JobBody;
      await waitUntil(async () => ((await (await fetch(job.statusUrl)).json()) as JobBody).status === 'running', 'the job to run');

      const unsubscribe = await fetch(`${host.url}/api/callbacks`, { method: 'DELETE', headers: { 'x-functions-key': host.functionKey, 'callback-url': url } });
      expect(unsubscribe.status).toBe(204);
      await waitUntil(async () => ((await (await fetch(job.statusUrl)).json()) as JobBody).status === 'succeeded', 'the job to end');
      // A job started afterwards reports to its own callback; the unsubscribed one gets nothing.
      const control = (await (await generate('a control', `${receiver.url}/flows/control`)).json()) as JobBody;
      const [callback] = await receiver.waitFor(1);
      await sleep(500);

      expect(callback?.headers['webhook-id']).toBe(`job_${control.id}`);
      expect(receiver.received.map((received) => received.path)).toEqual(['/flows/control']);
      const again = await fetch(`${host.url}/api/callbacks`, { method: 'DELETE', headers: { 'x-functions-key': host.functionKey, 'callback-url': `${url}-other` } });
      expect(again.status).toBe(404);
    });

    it.each([
      ['https://evil.example.com/hook', 'names a host (evil.example.com) this app does not send callbacks to'],
      ['https://10.0.0.1/hook', 'names a host (10.0.0.1) this app does not send callbacks to'],
      ['http://192.168.1.10/hook', 'is not https'],
      ['file:///etc/passwd', 'is not https'],
    ])('refuses the callback %s before any work', async (url, problem) => {
      const response = await generate('a fox', url);

      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: { code: 'CallbackUrlNotAllowed', target: 'Callback-Url', message: expect.stringContaining(problem) as unknown } });
      expect(emulator.requests).toHaveLength(0);
    });
  });

  describe('the inbox trigger', () => {
    const storage = BlobServiceClient.fromConnectionString(testStorageConnectionString());
    const inbox = () => storage.getContainerClient(names.inbox);

    async function uploadAndDeliver(name: string): Promise<void> {
      const blob = inbox().getBlockBlobClient(name);
      await blob.upload(HOUSE, HOUSE.length, { metadata: { prompt: 'paint the front door red', quality: 'low' } });
      const delivered = await deliverInboxEvent(host, blob.url);
      expect(delivered.status).toBe(202);
    }

    const subscribe = (body: unknown) =>
      fetch(`${host.url}/api/subscriptions`, { method: 'POST', headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    it('subscribes with 201 + Location, sends the manifest of each edit under its folder, and stops once deleted', async () => {
      const created = await subscribe({ callbackUrl: `${receiver.url}/trigger?sig=abc`, folder: 'shots' });
      const location = created.headers.get('location') ?? '';

      expect(created.status).toBe(201);
      expect(location).toMatch(new RegExp(`^${host.url}/api/subscriptions/[0-9a-f-]+\\?token=`));
      expect(await created.json()).toEqual({ id: expect.any(String) as unknown, folder: 'shots', createdAt: expect.any(String) as unknown });

      await uploadAndDeliver('shots/house.png');
      const [callback] = await receiver.waitFor(1);
      const manifest = verify(callback as ReceivedCallback) as { status: string; jobId: string; jobToken: string; source: { name: string }; images: { url: string }[] };
      expect(callback?.headers['imagegen-event']).toBe('inbox.edited');
      expect(manifest).toMatchObject({ status: 'succeeded', source: { name: 'shots/house.png' } });
      expect((await fetch(manifest.images[0]?.url ?? '')).status).toBe(200);
      expect((await fetch(`${host.url}/api/jobs/${manifest.jobId}/status?token=${manifest.jobToken}`)).status).toBe(200);

      await uploadAndDeliver('elsewhere/house.png');
      expect(host.logs.some((line) => line.includes('"elsewhere/house.png": the manifest goes to'))).toBe(false);

      const deleted = await fetch(location, { method: 'DELETE' });
      expect(deleted.status).toBe(204);
      expect((await fetch(location, { method: 'DELETE' })).status).toBe(404);
      await uploadAndDeliver('shots/house-2.png');
      expect(host.logs.some((line) => line.includes('"shots/house-2.png": the manifest goes to'))).toBe(false);
      expect(receiver.received).toHaveLength(1);
    });

    it('refuses a subscription whose callback may not be called, or that is not for a folder', async () => {
      const refused = await subscribe({ callbackUrl: 'https://evil.example.com/hook' });
      const badFolder = await subscribe({ callbackUrl: `${receiver.url}/trigger`, folder: '../jobs' });

      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CallbackUrlNotAllowed');
      expect(badFolder.status).toBe(400);
    });
  });
});

describe('inbox trigger subscriptions across a restart', () => {
  it('are kept in storage: a subscription made before a restart gets the manifests after it', async () => {
    const names = freshNames();
    const receiver = await startCallbackReceiver();
    try {
      const before = await startAppStack(stackSettings(names));
      try {
        const created = await fetch(`${before.host.url}/api/subscriptions`, {
          method: 'POST',
          headers: { 'x-functions-key': before.host.functionKey, 'content-type': 'application/json' },
          body: JSON.stringify({ callbackUrl: `${receiver.url}/after-restart` }),
        });
        expect(created.status).toBe(201);
      } finally {
        await before.close();
      }

      const after = await startAppStack(stackSettings(names));
      try {
        const blob = BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(names.inbox).getBlockBlobClient('restart.png');
        await blob.upload(HOUSE, HOUSE.length, { metadata: { prompt: 'paint the front door red', quality: 'low' } });
        expect((await deliverInboxEvent(after.host, blob.url)).status).toBe(202);

        const [callback] = await receiver.waitFor(1);
        expect(callback?.path).toBe('/after-restart');
        expect(new Webhook(SECRET).verify(callback?.body ?? '', callback?.headers ?? {})).toMatchObject({ status: 'succeeded', source: { name: 'restart.png' } });
      } finally {
        await after.close();
      }
    } finally {
      await receiver.close();
    }
  });
});
