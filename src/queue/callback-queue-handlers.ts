import type { InvocationContext } from '@azure/functions';

import type { CallbackMessage } from '../domain/callbacks';
import { callbackMessageSchema, deliverCallback } from '../domain/callbacks';
import { callbackDependencies, finishedJobAnswer } from '../http/jobs';
import type { Services } from '../services';
import { parseQueueMessage } from './queue-message';

/**
 * The callbacks worker: one delivery attempt per message. A failure worth retrying is queued again
 * with its own delay (so a slow receiver does not hold a worker), up to a bounded number of
 * attempts; a throw here is a storage failure, which the queue redelivers.
 */
export function createCallbackWorker(getServices: () => Promise<Services>) {
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    const delivery = parseQueueMessage(message, callbackMessageSchema, context, 'a callback delivery');
    if (delivery === undefined) return;
    const services = await getServices();
    const what = describeDelivery(delivery);
    const outcome = await deliverCallback(delivery, {
      ...callbackDependencies(services),
      ids: services.ids,
      subscriptions: services.callbacks.subscriptions,
      sender: services.callbacks.sender,
      signingSecret: services.callbacks.signingSecret,
      outputStore: services.outputStore,
      jobs: services,
      renderFinishedJob: (job, token) => finishedJobAnswer(job, token, services),
    });
    switch (outcome.kind) {
      case 'delivered':
        context.info(`Delivered ${what} (attempt ${outcome.attempt}).`);
        return;
      case 'retrying':
        context.warn(`Could not deliver ${what} on attempt ${outcome.attempt}: ${outcome.reason}; trying again in ${outcome.delayInSeconds} s.`);
        return;
      case 'dropped':
        context.warn(`Not delivering ${what}: ${outcome.reason}.`);
    }
  };
}

/**
 * Deliveries the worker threw on at every attempt (storage kept failing, so it never reached the
 * receiver): said in the log, so that the receiver's silence has an explanation someone can find.
 */
export function createCallbackPoisonHandler() {
  return (message: unknown, context: InvocationContext): Promise<void> => {
    const delivery = parseQueueMessage(message, callbackMessageSchema, context, 'a callback delivery');
    if (delivery !== undefined) {
      const recourse = delivery.kind === 'job' ? `its caller can still read job ${delivery.jobId}` : `the manifest stays in the outputs container`;
      context.error(`Gave up on ${describeDelivery(delivery)} after every delivery of its queue message failed; ${recourse}.`);
    }
    return Promise.resolve();
  };
}

// Without the URL: it is the receiver's secret (its query carries a signature).
function describeDelivery(delivery: CallbackMessage): string {
  return delivery.kind === 'job' ? `the callback of job ${delivery.jobId}` : `the manifest ${JSON.stringify(delivery.manifestName)} to subscription ${delivery.subscriptionId}`;
}
