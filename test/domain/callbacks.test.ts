import { Webhook } from 'standardwebhooks';

import type { CallbackMessage, DeliveryDependencies } from '../../src/domain/callbacks';
import {
  callbackUrlProblem,
  CallbackRefusedError,
  deliverCallback,
  deliveryVerdict,
  MAX_DELIVERY_ATTEMPTS,
  registerJobCallback,
  retryDelaySeconds,
  scheduleInboxNotifications,
  scheduleJobCallback,
  signedHeaders,
  subscribeInbox,
  unsubscribeInbox,
  unsubscribeJobCallback,
  watchJobEnds,
} from '../../src/domain/callbacks';
import { DEFAULT_CALLBACK_HOSTS } from '../../src/config';
import { cancelJob, readJob, submitJob } from '../../src/domain/image-jobs';
import { jobDependencies } from '../../src/http/jobs';
import { InMemorySubscriptionStore, RecordingCallbackQueue, ScriptedCallbackSender } from '../fakes/callbacks';
import { InMemoryDocumentStore } from '../fakes/in-memory-documents';
import { makeFakeServices } from '../fakes/services';

const SECRET = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
const FLOW = 'https://prod-03.westus.logic.azure.com:443/workflows/abc/runs/def/actions/HTTP_Webhook/run?api-version=2016-06-01&sp=%2Fruns&sv=1.0&sig=xyz';
const policy = { allowedHosts: [...DEFAULT_CALLBACK_HOSTS], allowLoopback: false };

describe('callbackUrlProblem', () => {
  it.each([
    FLOW,
    'https://prod-11.usgovvirginia.logic.azure.us/workflows/a/triggers/manual/paths/invoke',
    'https://default1234.09.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/1/triggers/manual/paths/invoke?api-version=1',
  ])('accepts the callback hosts of Power Automate and Logic Apps: %s', (url) => {
    expect(callbackUrlProblem(url, policy)).toBeUndefined();
  });

  it.each([
    ['http://prod-03.westus.logic.azure.com/workflows/a', 'is not https'],
    ['https://evil.example.com/hook', 'names a host (evil.example.com) this app does not send callbacks to'],
    ['https://logic.azure.com.evil.example.com/hook', 'names a host (logic.azure.com.evil.example.com) this app does not send callbacks to'],
    ['https://10.0.0.5/hook', 'names a host (10.0.0.5) this app does not send callbacks to'],
    ['https://169.254.169.254/metadata', 'names a host (169.254.169.254) this app does not send callbacks to'],
    ['https://user:pass@prod-03.westus.logic.azure.com/w', 'carries credentials'],
    ['http://127.0.0.1:9000/hook', 'is not https'],
    ['file:///etc/passwd', 'is not https'],
    ['/relative', 'is not an absolute URL'],
  ])('refuses %s: it %s', (url, problem) => {
    expect(callbackUrlProblem(url, policy)).toBe(problem);
  });

  it('takes loopback receivers over http only when told to (local development)', () => {
    const local = { ...policy, allowLoopback: true };

    expect(callbackUrlProblem('http://127.0.0.1:9000/hook', local)).toBeUndefined();
    expect(callbackUrlProblem('http://localhost:9000/hook', local)).toBeUndefined();
    expect(callbackUrlProblem('http://10.0.0.5:9000/hook', local)).toBe('is not https');
    expect(callbackUrlProblem('https://evil.example.com/hook', local)).toBe('names a host (evil.example.com) this app does not send callbacks to');
  });
});

describe('signed deliveries', () => {
  it('verify with a Standard Webhooks library under the same secret, and not under another', () => {
    const body = JSON.stringify({ id: 'job-1', data: [] });
    const headers = signedHeaders(SECRET, 'job_job-1', Date.now(), body);

    expect(new Webhook(SECRET).verify(body, headers)).toEqual({ id: 'job-1', data: [] });
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 4).toString('base64')}`).verify(body, headers)).toThrow();
    expect(() => new Webhook(SECRET).verify(`${body} `, headers)).toThrow();
  });
});

describe('deliveryVerdict', () => {
  it('is delivered on 2xx, retried on 408, 429, 5xx and network failures, and given up otherwise', () => {
    expect(deliveryVerdict({ status: 204 }, 1)).toEqual({ kind: 'delivered' });
    expect(deliveryVerdict({ status: 503, retryAfterSeconds: 7 }, 1)).toMatchObject({ kind: 'retry', delayInSeconds: 7 });
    expect(deliveryVerdict({ status: 429 }, 2)).toMatchObject({ kind: 'retry' });
    expect(deliveryVerdict({ error: new Error('ECONNRESET') }, 1)).toMatchObject({ kind: 'retry' });
    expect(deliveryVerdict({ status: 400 }, 1)).toMatchObject({ kind: 'give-up' });
    expect(deliveryVerdict({ status: 410 }, 1)).toMatchObject({ kind: 'gone' });
    expect(deliveryVerdict({ error: new CallbackRefusedError('private address') }, 1)).toMatchObject({ kind: 'give-up', reason: 'private address' });
  });

  it(`gives up after ${MAX_DELIVERY_ATTEMPTS} attempts`, () => {
    expect(deliveryVerdict({ status: 500 }, MAX_DELIVERY_ATTEMPTS - 1)).toMatchObject({ kind: 'retry' });
    expect(deliveryVerdict({ status: 500 }, MAX_DELIVERY_ATTEMPTS)).toMatchObject({ kind: 'give-up' });
  });

  it('backs off exponentially with jitter, within 1 s and 1 h, honouring Retry-After', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((attempt) => retryDelaySeconds(attempt, undefined, () => 0.5));

    expect(delays).toEqual([10, 30, 90, 270, 810, 2430, 3600]);
    expect(retryDelaySeconds(1, undefined, () => 0)).toBe(8);
    expect(retryDelaySeconds(1, undefined, () => 1)).toBe(12);
    expect(retryDelaySeconds(3, 0)).toBe(1);
    expect(retryDelaySeconds(3, 86_400)).toBe(3600);
  });
});

/** A queued generate job with a callback, in fakes. */
async function jobWithCallback() {
  const services = makeFakeServices();
  const dependencies = jobDependencies(services);
  const submitted = await submitJob({ operation: 'generate', command: { prompt: 'a fox', model: 'gpt-image-1.5', options: {}, caller: { id: 'user:ana', source: 'user' } } }, { enqueue: true }, dependencies);
  await registerJobCallback(submitted.job, submitted.accessToken, FLOW, { documents: services.documents, clock: services.clock, callbackQueue: services.callbacks.queue });
  return { services, dependencies, submitted };
}

function deliveryDependencies(services: ReturnType<typeof makeFakeServices>, sender = services.callbacks.sender): DeliveryDependencies {
  return {
    documents: services.documents,
    // Real time: receivers refuse signatures whose timestamp is more than minutes off.
    clock: { now: () => new Date() },
    callbackQueue: services.callbacks.queue,
    ids: services.ids,
    subscriptions: services.callbacks.subscriptions,
    sender,
    signingSecret: SECRET,
    outputStore: services.outputStore,
    jobs: services,
    renderFinishedJob: (job, token) => Promise.resolve({ status: 410, body: { id: job.id, token } }),
    random: () => 0.5,
  };
}

describe('job callbacks', () => {
  it('are scheduled when the job record is written finished, by whichever path', async () => {
    const { services, dependencies, submitted } = await jobWithCallback();

    expect(services.callbacks.queue.sent).toEqual([]);
    const found = await readJob(submitted.job.id, dependencies);
    await dependencies.documents.replace(`jobs/${submitted.job.id}.json`, { ...found?.value, status: 'running' }, found?.etag ?? '');
    expect(services.callbacks.queue.sent).toEqual([]);

    const running = await readJob(submitted.job.id, dependencies);
    await dependencies.documents.replace(`jobs/${submitted.job.id}.json`, { ...running?.value, status: 'cancelled' }, running?.etag ?? '');

    expect(services.callbacks.queue.sent).toEqual([{ message: { kind: 'job', jobId: submitted.job.id, attempt: 1 }, delayInSeconds: undefined }]);
  });

  it('never fail the write of a finished job', async () => {
    const documents = new InMemoryDocumentStore();
    const failures: unknown[] = [];
    const watched = watchJobEnds(documents, () => Promise.reject(new Error('queue down')), (_jobId, error) => failures.push(error));
    const etag = (await documents.create('jobs/j1.json', { status: 'running' })) ?? '';

    await expect(watched.replace('jobs/j1.json', { status: 'failed' }, etag)).resolves.toEqual(expect.any(String));
    expect(failures).toEqual([new Error('queue down')]);
  });

  it('deliver the job answer, signed, and only once', async () => {
    const { services, dependencies, submitted } = await jobWithCallback();
    await cancelJob(submitted.job.id, submitted.accessToken, dependencies);
    const message = services.callbacks.queue.sent[0]?.message as CallbackMessage;

    const first = await deliverCallback(message, deliveryDependencies(services));
    const second = await deliverCallback(message, deliveryDependencies(services));

    expect(first).toEqual({ kind: 'delivered', attempt: 1 });
    expect(second).toEqual({ kind: 'dropped', reason: `the callback of job ${submitted.job.id} is delivered` });
    const [post] = services.callbacks.sender.posts;
    expect(post?.url).toBe(FLOW);
    expect(post?.headers).toMatchObject({ 'imagegen-event': 'job.ended', 'imagegen-job-status': 'cancelled', 'imagegen-status-code': '410', 'webhook-id': `job_${submitted.job.id}` });
    expect(new Webhook(SECRET).verify(post?.body ?? '', { ...post?.headers })).toEqual({ id: submitted.job.id, token: submitted.accessToken });
  });

  it('put a failed attempt back on the queue with its delay, and stop when the subscription is gone', async () => {
    const { services, dependencies, submitted } = await jobWithCallback();
    await cancelJob(submitted.job.id, submitted.accessToken, dependencies);
    const sender = new ScriptedCallbackSender([{ status: 502 }, { status: 410 }]);
    const message = services.callbacks.queue.sent[0]?.message as CallbackMessage;

    const retrying = await deliverCallback(message, deliveryDependencies(services, sender));
    const next = services.callbacks.queue.sent[1];
    const gone = await deliverCallback(next?.message as CallbackMessage, deliveryDependencies(services, sender));
    const after = await deliverCallback(next?.message as CallbackMessage, deliveryDependencies(services, sender));

    expect(retrying).toMatchObject({ kind: 'retrying', attempt: 1, delayInSeconds: 10 });
    expect(next).toEqual({ message: { ...message, attempt: 2 }, delayInSeconds: 10 });
    expect(gone).toEqual({ kind: 'dropped', reason: 'the receiver answered 410' });
    expect(after).toEqual({ kind: 'dropped', reason: `the callback of job ${submitted.job.id} is unsubscribed` });
    expect(sender.posts).toHaveLength(2);
  });

  it('end on unsubscribe: nothing is delivered, and a job that has not started is cancelled', async () => {
    const { services, dependencies, submitted } = await jobWithCallback();

    const result = await unsubscribeJobCallback(FLOW, { documents: services.documents, clock: services.clock, callbackQueue: services.callbacks.queue, jobs: dependencies });

    expect(result).toEqual({ jobId: submitted.job.id, jobCancelled: true });
    expect((await readJob(submitted.job.id, dependencies))?.value.status).toBe('cancelled');
    // The cancel ended the job, which scheduled nothing: the subscription was already gone.
    expect(services.callbacks.queue.sent).toEqual([]);
    await expect(scheduleJobCallback(submitted.job.id, { documents: services.documents, clock: services.clock, callbackQueue: services.callbacks.queue })).resolves.toBe(false);
  });

  it('cannot be unsubscribed with a URL no job reports to', async () => {
    const { services, dependencies } = await jobWithCallback();

    await expect(
      unsubscribeJobCallback(`${FLOW}x`, { documents: services.documents, clock: services.clock, callbackQueue: services.callbacks.queue, jobs: dependencies }),
    ).rejects.toMatchObject({ code: 'CallbackNotFound', status: 404 });
  });
});

describe('inbox subscriptions', () => {
  function subscriptionDependencies() {
    return { subscriptions: new InMemorySubscriptionStore(), clock: { now: () => new Date('2026-11-25T12:00:00Z') }, callbackQueue: new RecordingCallbackQueue(), ids: { newId: () => 'sub-1' } };
  }

  it('queue the manifest for each subscription that watches the upload', async () => {
    const dependencies = subscriptionDependencies();
    await subscribeInbox(FLOW, '/product-shots/', dependencies);

    expect(await scheduleInboxNotifications('product-shots/chair.png', 'product-shots/chair.png/abc/manifest.json', dependencies)).toBe(1);
    expect(await scheduleInboxNotifications('other/chair.png', 'other/chair.png/abc/manifest.json', dependencies)).toBe(0);
    expect(await scheduleInboxNotifications('product-shots-2/chair.png', 'x/manifest.json', dependencies)).toBe(0);
    expect(dependencies.callbackQueue.sent.map((sent) => sent.message)).toEqual([
      { kind: 'inbox', subscriptionId: 'sub-1', manifestName: 'product-shots/chair.png/abc/manifest.json', attempt: 1 },
    ]);
  });

  it('are deleted only with their token; a deleted one gets nothing more', async () => {
    const dependencies = subscriptionDependencies();
    const { token } = await subscribeInbox(FLOW, '', dependencies);

    await expect(unsubscribeInbox('sub-1', 'wrong', dependencies)).rejects.toMatchObject({ code: 'SubscriptionNotFound' });
    await unsubscribeInbox('sub-1', token, dependencies);

    expect(await scheduleInboxNotifications('a.png', 'a.png/abc/manifest.json', dependencies)).toBe(0);
  });
});
