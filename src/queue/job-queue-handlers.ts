import type { InvocationContext } from '@azure/functions';
import { z } from 'zod';

import { failExhaustedJob, runJob } from '../domain/image-jobs';
import { jobDependencies } from '../http/jobs';
import type { Services } from '../services';

// The Functions host hands over the message already decoded from base64 and, being JSON, parsed.
const jobMessage = z.object({ jobId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/) });

function parseMessage(message: unknown, context: InvocationContext): string | undefined {
  const parsed = jobMessage.safeParse(typeof message === 'string' ? safeJson(message) : message);
  if (!parsed.success) {
    // Not ours to retry: no delivery will make it a job.
    context.error('Dropping a queue message that is not {"jobId": "..."}.');
    return undefined;
  }
  return parsed.data.jobId;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The queue worker. A throw makes the host deliver the message again (and after the last attempt
 * move it to the poison queue); everything the job itself decided is recorded in the job instead.
 */
export function createJobWorker(getServices: () => Promise<Services>) {
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    const jobId = parseMessage(message, context);
    if (jobId === undefined) return;
    const services = await getServices();
    const dependencies = jobDependencies(services);
    const outcome = await runJob(jobId, dependencies);
    switch (outcome.kind) {
      case 'missing':
        context.warn(`Job ${jobId} has no record; nothing to do.`);
        return;
      case 'busy':
        // A duplicate delivery while another attempt holds the job: look again when its lease ends,
        // so the job still finishes if that attempt died.
        await dependencies.queue.enqueue(jobId, { delayInSeconds: outcome.retryInSeconds });
        context.info(`Job ${jobId} is being run elsewhere; checking again in ${outcome.retryInSeconds} s.`);
        return;
      case 'deferred':
        context.info(`Job ${jobId} was throttled upstream; queued again in ${outcome.retryInSeconds} s.`);
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
    const jobId = parseMessage(message, context);
    if (jobId === undefined) return;
    const job = await failExhaustedJob(jobId, jobDependencies(await getServices()));
    context.warn(`Job ${jobId} gave up after its retries: ${job?.error?.logDetail ?? job?.error?.message ?? 'no record'}.`);
  };
}
