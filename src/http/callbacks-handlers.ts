import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { z } from 'zod';

import { assertValidBlobName } from '../domain/blob-names';
import { assertCallbackUrl, CallbacksNotConfiguredError, subscribeInbox, unsubscribeInbox, unsubscribeJobCallback } from '../domain/callbacks';
import { ValidationError } from '../domain/errors';
import type { Services } from '../services';
import { callbackDependencies, jobDependencies } from './jobs';
import { apiUrl } from './public-url';
import { readJsonBody } from './read-body';
import { withoutNulls } from './schemas';

const MAX_SUBSCRIPTION_BODY_BYTES = 16 * 1024;

/**
 * DELETE /callbacks with `Callback-Url`: the unsubscribe of the HTTP Webhook pattern. Power Automate
 * calls it with the same `listCallbackUrl()` when the run is cancelled or times out: nothing is sent
 * to that URL any more, and its job is cancelled if it has not started.
 */
export function createUnsubscribeCallbackHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const services = await getServices();
    const url = request.headers.get('callback-url');
    if (url === null || url === '') {
      throw new ValidationError('Send the callback URL to unsubscribe in the Callback-Url header, as when the job was started.', {
        code: 'MissingParameter',
        target: 'Callback-Url',
      });
    }
    const { jobId, jobCancelled } = await unsubscribeJobCallback(url, { ...callbackDependencies(services), jobs: jobDependencies(services) });
    context.info(`The callback of job ${jobId} was unsubscribed${jobCancelled ? '; the job was cancelled before it ran' : ''}.`);
    return { status: 204, headers: { 'cache-control': 'no-store' } };
  };
}

const subscriptionBody = z.preprocess(
  withoutNulls,
  z.strictObject({
    callbackUrl: z.string({ error: 'callbackUrl is required: the URL to send the manifests to.' }),
    folder: z.string({ error: 'folder must be a string.' }).optional(),
  }),
);

/** POST /subscriptions: the inbox trigger subscribes; 201 with the Location that unsubscribes it. */
export function createSubscribeHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const services = await getServices();
    const body = await readJsonBody(request, subscriptionBody, MAX_SUBSCRIPTION_BODY_BYTES);
    assertCallbackUrl(body.callbackUrl, 'callbackUrl', services.config.callbacks);
    const folder = (body.folder ?? '').replace(/^\/+|\/+$/g, '');
    if (folder !== '') assertValidBlobName(folder, 'folder', 'InvalidParameter');
    if (services.callbacks.signingSecret === undefined) throw new CallbacksNotConfiguredError();
    const { subscription, token } = await subscribeInbox(body.callbackUrl, folder, { ...services, subscriptions: services.callbacks.subscriptions, callbackQueue: services.callbacks.queue });
    context.info(`Inbox subscription ${subscription.id} created${folder === '' ? '' : ` for ${JSON.stringify(folder)}`}.`);
    return {
      status: 201,
      headers: {
        location: apiUrl(services.config, `/subscriptions/${subscription.id}?token=${encodeURIComponent(token)}`),
        'cache-control': 'no-store',
      },
      jsonBody: { id: subscription.id, folder: subscription.folder, createdAt: subscription.createdAt },
    };
  };
}

/** DELETE /subscriptions/{id}?token=: the platform unsubscribes the trigger through the Location it was given. */
export function createUnsubscribeHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const services = await getServices();
    const id = request.params['id'] ?? '';
    await unsubscribeInbox(id, request.query.get('token') ?? undefined, { subscriptions: services.callbacks.subscriptions });
    context.info(`Inbox subscription ${id} deleted.`);
    return { status: 204, headers: { 'cache-control': 'no-store' } };
  };
}
