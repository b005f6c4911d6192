import { blobCreatedEvent } from '../../local-host/blob-trigger';
import type { TestFunctionsHost } from './functions-host';

/**
 * Delivers a BlobCreated event for `blobUrl` to the inbox trigger through the host's Event Grid
 * webhook, as Event Grid does; the answer (202) comes once the invocation and its retries are over.
 */
export function deliverInboxEvent(host: TestFunctionsHost, blobUrl: string): Promise<Response> {
  return fetch(`${host.url}/runtime/webhooks/blobs?functionName=Host.Functions.inbox-edit&code=${host.functionKey}`, {
    method: 'POST',
    headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
    body: JSON.stringify([blobCreatedEvent(blobUrl)]),
  });
}
