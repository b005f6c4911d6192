import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { format } from 'node:util';

import { InvocationContext } from '@azure/functions';
import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';

import { readAll } from '../src/adapters/streams';
import { blobNameProblem } from '../src/domain/blob-names';
import { effectiveOptions } from './http-host';
import type { LogSink } from './log';
import { consoleSink, describeError, redactingSink } from './log';
import { resolveBindingExpression } from './queue-runner';
import type { FunctionRegistration } from './registry';
import { functionsWithTrigger, triggerOf } from './registry';

/** The part of an Event Grid `Microsoft.Storage.BlobCreated` event (Event Grid schema) the host reads. */
export interface BlobCreatedEvent {
  readonly id: string;
  readonly eventType: 'Microsoft.Storage.BlobCreated';
  readonly subject: string;
  readonly eventTime: string;
  readonly topic?: string;
  readonly dataVersion: string;
  readonly metadataVersion: string;
  readonly data: {
    readonly api: string;
    readonly url: string;
    readonly eTag?: string;
    readonly contentType?: string;
    readonly contentLength?: number;
    readonly blobType: string;
  };
}

/** The event Azure Storage publishes when a block blob is written, for hand delivery and the watcher. */
export function blobCreatedEvent(blobUrl: string, properties: { etag?: string | undefined; contentType?: string | undefined; contentLength?: number | undefined } = {}): BlobCreatedEvent {
  const { container, blobName } = splitBlobUrl(blobUrl);
  return {
    id: randomUUID(),
    eventType: 'Microsoft.Storage.BlobCreated',
    subject: `/blobServices/default/containers/${container}/blobs/${blobName}`,
    eventTime: new Date().toISOString(),
    dataVersion: '',
    metadataVersion: '1',
    data: {
      api: 'PutBlob',
      url: blobUrl,
      ...(properties.etag === undefined ? {} : { eTag: properties.etag }),
      ...(properties.contentType === undefined ? {} : { contentType: properties.contentType }),
      ...(properties.contentLength === undefined ? {} : { contentLength: properties.contentLength }),
      blobType: 'BlockBlob',
    },
  };
}

/** Container and blob name from a blob URL, path-style (Azurite) or host-style (Azure). */
function splitBlobUrl(blobUrl: string): { container: string; blobName: string } {
  const url = new URL(blobUrl);
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  // Azurite and other path-style endpoints put the account first.
  const isPathStyle = /^\d+\.\d+\.\d+\.\d+$|^localhost$|^\[/.test(url.hostname);
  const [container, ...rest] = isPathStyle ? parts.slice(1) : parts;
  if (container === undefined || rest.length === 0) throw new Error(`${blobUrl} is not a blob URL.`);
  return { container, blobName: rest.join('/') };
}

interface BlobFunction {
  readonly registration: FunctionRegistration;
  readonly container: ContainerClient;
  readonly poisonQueue: ReturnType<QueueServiceClient['getQueueClient']>;
}

export interface StartBlobTriggersOptions {
  readonly registrations: readonly FunctionRegistration[];
  readonly settings: Readonly<Record<string, string | undefined>>;
  readonly log?: LogSink;
  /** Watch the trigger containers and deliver a BlobCreated event for each new or rewritten blob; default true. */
  readonly watch?: boolean;
  readonly pollIntervalInMs?: number;
  /** Attempts per event before the poison queue, like host.json `extensions.blobs.maxDequeueCount`; default 5. */
  readonly maxAttempts?: number;
}

export interface RunningBlobTriggers {
  readonly functions: readonly { readonly functionName: string; readonly container: string }[];
  /** The Event Grid webhook, as the host serves it at `/runtime/webhooks/blobs?functionName=Host.Functions.<name>`. */
  handleWebhook(functionName: string, eventType: string | undefined, body: unknown): Promise<{ status: number; body?: unknown }>;
  /** Runs one function for one event, with the host's retries; resolves once it succeeded or went to the poison queue. */
  deliver(functionName: string, event: BlobCreatedEvent): Promise<'done' | 'poisoned'>;
  close(): Promise<void>;
}

/**
 * Blob triggers with `source: 'EventGrid'` (the only kind Flex Consumption runs), locally. Azurite
 * publishes no Event Grid events, so a watcher stands in for the subscription and sends the same
 * BlobCreated events through the same path as the webhook: the blob is read and the handler invoked
 * with the trigger metadata the host gives (`blobTrigger`, `name`, `uri`, `properties`, `metadata`).
 */
export async function startBlobTriggers(options: StartBlobTriggersOptions): Promise<RunningBlobTriggers> {
  const log = redactingSink(options.log ?? consoleSink);
  const maxAttempts = options.maxAttempts ?? 5;
  const functions = new Map<string, BlobFunction>();
  for (const registration of functionsWithTrigger(options.registrations, 'blobTrigger')) {
    const { binding } = triggerOf(registration);
    if (binding['source'] !== 'EventGrid') {
      log(`[host] warning: ${registration.name} is a polling blob trigger; Flex Consumption runs only source 'EventGrid', so the local host does not run it.`);
      continue;
    }
    const path = typeof binding['path'] === 'string' ? resolveBindingExpression(binding['path'], options.settings, registration.name) : '';
    const containerName = path.split('/')[0] ?? '';
    const connectionName = typeof binding['connection'] === 'string' && binding['connection'] !== '' ? binding['connection'] : 'AzureWebJobsStorage';
    const connectionString = options.settings[connectionName];
    if (!connectionString) throw new Error(`Function "${registration.name}" reads blobs through connection "${connectionName}", which is not set.`);
    const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(containerName);
    await container.createIfNotExists();
    const hostStorage = options.settings['AzureWebJobsStorage'] ?? connectionString;
    functions.set(registration.name, {
      registration,
      container,
      poisonQueue: QueueServiceClient.fromConnectionString(hostStorage).getQueueClient('webjobs-blobtrigger-poison'),
    });
  }

  async function invokeOnce(fn: BlobFunction, event: BlobCreatedEvent): Promise<void> {
    const { blobName } = splitBlobUrl(event.data.url);
    const blob = fn.container.getBlobClient(blobName);
    // The storage SDK resolves `..` in a name, so reading such a blob would read another container's.
    // The host never does; the function gets the name (as the event gave it) without content.
    const addressable = blobNameProblem(blobName) === undefined;
    // One GET: the content and the properties of the same version.
    const download = addressable ? await blob.download() : undefined;
    const content = download ? await readAll(download.readableStreamBody) : Buffer.alloc(0);
    const invocationId = randomUUID();
    const context = new InvocationContext({
      invocationId,
      functionName: fn.registration.name,
      logHandler: (level, ...args) => {
        for (const line of format(...args).split('\n')) log(`[${fn.registration.name}] ${level}: ${line}`);
      },
      options: effectiveOptions(fn.registration),
      triggerMetadata: {
        blobTrigger: `${fn.container.containerName}/${blobName}`,
        name: blobName,
        uri: addressable ? blob.url : event.data.url,
        properties: {
          eTag: download?.etag ?? event.data.eTag,
          contentType: download?.contentType ?? event.data.contentType,
          length: content.length,
          lastModified: download?.lastModified?.toISOString(),
        },
        metadata: download?.metadata ?? {},
      },
    });
    await fn.registration.handler(content, context);
  }

  async function deliver(functionName: string, event: BlobCreatedEvent): Promise<'done' | 'poisoned'> {
    const fn = functions.get(functionName);
    if (!fn) throw new Error(`No Event Grid blob trigger is named "${functionName}".`);
    for (let attempt = 1; ; attempt++) {
      try {
        await invokeOnce(fn, event);
        log(`[${functionName}] ${event.subject} done (attempt ${attempt})`);
        return 'done';
      } catch (error: unknown) {
        log(`[${functionName}] error: ${event.subject} failed (attempt ${attempt}): ${describeError(error)}`);
        if (attempt >= maxAttempts) {
          const { blobName } = splitBlobUrl(event.data.url);
          await fn.poisonQueue.createIfNotExists();
          const poison = { FunctionId: `Host.Functions.${functionName}`, BlobType: 'BlockBlob', ContainerName: fn.container.containerName, BlobName: blobName, ETag: event.data.eTag };
          await fn.poisonQueue.sendMessage(Buffer.from(JSON.stringify(poison)).toString('base64'));
          log(`[${functionName}] ${event.subject} moved to webjobs-blobtrigger-poison after ${attempt} attempts.`);
          return 'poisoned';
        }
        await delay(Math.min(200 * 2 ** attempt, 5_000));
      }
    }
  }

  async function handleWebhook(functionName: string, eventType: string | undefined, body: unknown): Promise<{ status: number; body?: unknown }> {
    const name = functionName.replace(/^Host\.Functions\./, '');
    if (!functions.has(name)) return { status: 404, body: { error: `No Event Grid blob trigger is named "${name}".` } };
    const events = Array.isArray(body) ? (body as unknown[]) : [];
    if (eventType === 'SubscriptionValidation') {
      const code: unknown = (events[0] as { data?: { validationCode?: unknown } } | undefined)?.data?.validationCode;
      return typeof code === 'string' ? { status: 200, body: { validationResponse: code } } : { status: 400, body: { error: 'No validationCode.' } };
    }
    for (const event of events) {
      if ((event as { eventType?: unknown }).eventType !== 'Microsoft.Storage.BlobCreated') continue;
      await deliver(name, event as BlobCreatedEvent);
    }
    return { status: 202 };
  }

  const controller = new AbortController();
  const watchers = options.watch === false ? [] : [...functions.entries()].map(([name, fn]) => watch(name, fn));

  // Event Grid only reports writes after the subscription exists, so what is there at start is baseline.
  async function watch(name: string, fn: BlobFunction): Promise<void> {
    const seen = new Map<string, string>();
    for await (const item of fn.container.listBlobsFlat()) seen.set(item.name, item.properties.etag ?? '');
    const inFlight = new Set<Promise<unknown>>();
    while (!controller.signal.aborted) {
      try {
        for await (const item of fn.container.listBlobsFlat()) {
          const etag = item.properties.etag ?? '';
          if (seen.get(item.name) === etag) continue;
          seen.set(item.name, etag);
          const event = blobCreatedEvent(fn.container.getBlobClient(item.name).url, {
            etag,
            contentType: item.properties.contentType,
            contentLength: item.properties.contentLength,
          });
          const delivery = deliver(name, event).catch((error: unknown) => log(`[${name}] error: ${describeError(error)}`));
          inFlight.add(delivery);
          void delivery.finally(() => inFlight.delete(delivery));
        }
      } catch (error: unknown) {
        if (!controller.signal.aborted) log(`[${name}] warning: listing ${fn.container.containerName} failed: ${describeError(error)}`);
      }
      await delay(options.pollIntervalInMs ?? 500, undefined, { signal: controller.signal }).catch(() => undefined);
    }
    await Promise.allSettled(inFlight);
  }

  return {
    functions: [...functions.entries()].map(([functionName, fn]) => ({ functionName, container: fn.container.containerName })),
    handleWebhook,
    deliver,
    async close() {
      controller.abort();
      await Promise.allSettled(watchers);
    },
  };
}
