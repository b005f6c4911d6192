import type { InvocationContext } from '@azure/functions';

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
    // Logged without the URL: it is the receiver's secret (its query carries a signature).
    const what = delivery.kind === 'job' ? `the callback of job ${delivery.jobId}` : `the manifest ${JSON.stringify(delivery.manifestName)} to subscription ${delivery.subscriptionId}`;
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
