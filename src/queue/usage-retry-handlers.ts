import type { InvocationContext } from '@azure/functions';

import { logUnrecordedUsage } from '../domain/metering';
import { usageRecordSchema } from '../domain/usage';
import type { Services } from '../services';
import { parseQueueMessage } from './queue-message';

/**
 * Writes a usage record the table refused when its request ran. A throw makes the host deliver it
 * again, and after the last attempt move it to the poison queue; a record already there is not
 * counted twice (the table keys it by request and call).
 */
export function createUsageRetryWorker(getServices: () => Promise<Services>) {
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    const record = parseQueueMessage(message, usageRecordSchema, context, 'a usage record');
    if (record === undefined) return;
    const { usageStore } = await getServices();
    const written = await usageStore.recordUsage(record);
    context.info(`Usage of request ${record.requestId} ${written ? 'written' : 'was already written'} on retry.`);
  };
}

/** Records whose retries ran out: the whole record goes to the log, for reconciliation. */
export function createUsageRetryPoisonHandler() {
  return (message: unknown, context: InvocationContext): Promise<void> => {
    const record = parseQueueMessage(message, usageRecordSchema, context, 'a usage record');
    if (record !== undefined) logUnrecordedUsage(record, new Error('every retry failed'), { warn: (line) => context.warn(line), error: (line) => context.error(line) });
    return Promise.resolve();
  };
}
