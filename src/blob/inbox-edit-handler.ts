import type { InvocationContext } from '@azure/functions';

import { scheduleInboxNotifications } from '../domain/callbacks';
import { processInboxUpload } from '../domain/inbox-edits';
import { jobDependencies } from '../http/jobs';
import type { Services } from '../services';
import { parseInboxRequest } from './inbox-request';

/**
 * The inbox blob trigger (Event Grid source). The host also hands over the blob's bytes, but they
 * are read again here with their ETag, so that the bytes, the metadata and the version recorded
 * always belong together even when the blob is overwritten meanwhile.
 */
export function createInboxEditHandler(getServices: () => Promise<Services>) {
  return async (_blob: unknown, context: InvocationContext): Promise<void> => {
    const name = context.triggerMetadata?.['name'];
    if (typeof name !== 'string' || name === '') {
      context.error('The blob trigger gave no blob name; nothing to do.');
      return;
    }
    // Quoted: a name may hold anything, line breaks included, and must not forge log lines.
    const quoted = JSON.stringify(name);
    const services = await getServices();
    const outcome = await processInboxUpload(name, {
      ...jobDependencies(services),
      inbox: services.inbox,
      parseRequest: (blob) => parseInboxRequest(blob, services.config),
    });
    if (outcome.kind === 'succeeded' || outcome.kind === 'failed') {
      // The inbox trigger's subscribers hear of it; the edit's outcome stands whether or not they can be told.
      try {
        const notified = await scheduleInboxNotifications(name, outcome.manifestName, {
          ...services,
          subscriptions: services.callbacks.subscriptions,
          callbackQueue: services.callbacks.queue,
        });
        if (notified > 0) context.info(`${quoted}: the manifest goes to ${notified} subscription(s).`);
      } catch (error: unknown) {
        context.warn(`${quoted}: the subscriptions could not be told of the manifest:`, error instanceof Error ? error.message : error);
      }
    }
    switch (outcome.kind) {
      case 'ticket-input':
        context.info(`${quoted} is in a '_' folder: an input for tickets, not edited on its own.`);
        return;
      case 'gone':
        context.warn(`${quoted} was deleted before it could be edited.`);
        return;
      case 'already-processed':
        context.info(`${quoted}: the same upload was already handled${outcome.jobId === undefined ? '' : ` by job ${outcome.jobId}`} (${outcome.status}); nothing to do.`);
        return;
      case 'in-progress':
        context.info(`${quoted}: job ${outcome.jobId} is being run by another invocation.`);
        return;
      case 'succeeded':
        context.info(`${quoted} edited by job ${outcome.job.id}; manifest ${outcome.manifestName}.`);
        return;
      case 'failed':
        context.warn(`${quoted} could not be edited: ${outcome.error.code}: ${outcome.error.logDetail ?? outcome.error.message} (manifest ${outcome.manifestName}).`);
    }
  };
}
