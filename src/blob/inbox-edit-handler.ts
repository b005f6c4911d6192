import type { InvocationContext } from '@azure/functions';

import { processInboxUpload } from '../domain/inbox-edits';
import { inboxBookkeeping, jobDependencies } from '../http/jobs';
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
    const outcome = await processInboxUpload(name, { ...inboxBookkeeping(services), ...jobDependencies(services), parseRequest: (blob) => parseInboxRequest(blob, services.config) });
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
        context.info(`${quoted}: job ${outcome.jobId} is running in another invocation right now; its end writes the manifest.`);
        return;
      case 'deferred':
        context.info(
          `${quoted}: job ${outcome.jobId} waits for upstream capacity; the jobs worker runs it in about ${outcome.retryInSeconds} s, and its end writes the manifest ${outcome.manifestName}.`,
        );
        return;
      case 'finished':
        // Logged where the bookkeeping was finished (see inboxBookkeeping), whoever finished it.
        return;
    }
  };
}
