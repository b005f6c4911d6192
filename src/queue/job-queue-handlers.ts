import type { InvocationContext } from '@azure/functions';
import { z } from 'zod';

import { failExhaustedJob, runJob } from '../domain/image-jobs';
import { jobDependencies } from '../http/jobs';
import type { Services } from '../services';
import { parseQueueMessage } from './queue-message';

const jobMessage = z.object({ jobId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/), watchAttempt: z.number().int().min(1).optional() });

/**
 * The queue worker. A throw makes the host deliver the message again (and after the last attempt
 * move it to the poison queue); everything the job itself decided is recorded in the job instead.
 */
export function createJobWorker(getServices: () => Promise<Services>) {
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    const parsed = parseQueueMessage(message, jobMessage, context, '{"jobId": "..."}');
    if (parsed === undefined) return;
    const { jobId, watchAttempt } = parsed;
    const services = await getServices();
    const dependencies = jobDependencies(services);
    const outcome = await runJob(jobId, dependencies, { watchAttempt });
    switch (outcome.kind) {
      case 'missing':
        context.warn(`Job ${jobId} has no record; nothing to do.`);
        return;
      case 'busy':
        if (watchAttempt === undefined) {
          // A duplicate delivery while another attempt holds the job: that attempt's watchdog looks after it.
          context.info(`Job ${jobId} is being run elsewhere; its watchdog looks after it.`);
          return;
        }
        // The attempt is alive (it renewed its lease): look again when the lease would run out.
        await dependencies.queue.enqueue(jobId, { delayInSeconds: outcome.retryInSeconds + 1, watchAttempt });
        context.info(`Job ${jobId} attempt ${watchAttempt} is alive; looking again in ${outcome.retryInSeconds + 1} s.`);
        return;
      case 'superseded':
        context.info(`Job ${jobId} attempt ${watchAttempt ?? '?'} is over; its watchdog stops.`);
        return;
      case 'deferred':
        context.info(`Job ${jobId} waits for upstream capacity; queued again in ${outcome.retryInSeconds} s.`);
        return;
      case 'finished': {
        const { error } = outcome.job;
        if (error) context.warn(`Job ${jobId} ${outcome.job.status}: ${error.code}: ${error.logDetail ?? error.message}`);
        else context.info(`Job ${jobId} ${outcome.job.status}.`);
      }
    }
  };
}

/** Messages whose retries ran out: their jobs end as failed, with the last failure recorded. */
export function createPoisonJobHandler(getServices: () => Promise<Services>) {
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    const jobId = parseQueueMessage(message, jobMessage, context, '{"jobId": "..."}')?.jobId;
    if (jobId === undefined) return;
    const job = await failExhaustedJob(jobId, jobDependencies(await getServices()));
    context.warn(`Job ${jobId} gave up after its retries: ${job?.error?.logDetail ?? job?.error?.message ?? 'no record'}.`);
  };
}
