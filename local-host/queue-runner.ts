import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { format } from 'node:util';

import { InvocationContext } from '@azure/functions';
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import { QueueServiceClient } from '@azure/storage-queue';

import { effectiveOptions } from './http-host';
import type { LogSink } from './log';
import { consoleSink, describeError, redactingSink } from './log';
import type { FunctionRegistration } from './registry';
import { functionsWithTrigger, triggerOf } from './registry';

/** The queue trigger's behaviour that matters here, as `host.json` `extensions.queues` sets it. */
export interface QueueTriggerSettings {
  /** Deliveries before a message moves to `<queue>-poison`; the host's default is 5. */
  readonly maxDequeueCount: number;
  /** How long a failed message stays invisible before its next delivery; the host's default is 0. */
  readonly visibilityTimeoutInSeconds: number;
  /** Messages run at once per queue; the host's default batch is 16. */
  readonly batchSize: number;
  /** The longest wait between polls of an empty queue; the host's default is a minute. */
  readonly maxPollingIntervalInMs: number;
}

export const DEFAULT_QUEUE_TRIGGER_SETTINGS: QueueTriggerSettings = { maxDequeueCount: 5, visibilityTimeoutInSeconds: 0, batchSize: 16, maxPollingIntervalInMs: 60_000 };

/** `host.json` `extensions.queues`, where set: `maxDequeueCount`, `visibilityTimeout` and `maxPollingInterval` ("hh:mm:ss"), `batchSize`. */
export function readQueueTriggerSettings(projectRoot: string): Partial<QueueTriggerSettings> {
  const hostJson: unknown = JSON.parse(readFileSync(join(projectRoot, 'host.json'), 'utf8'));
  const queues: unknown = (hostJson as { extensions?: { queues?: unknown } }).extensions?.queues;
  if (typeof queues !== 'object' || queues === null) return {};
  const { maxDequeueCount, visibilityTimeout, batchSize, maxPollingInterval } = queues as Record<string, unknown>;
  const settings: { -readonly [K in keyof QueueTriggerSettings]?: QueueTriggerSettings[K] } = {};
  if (typeof maxDequeueCount === 'number') settings.maxDequeueCount = maxDequeueCount;
  if (typeof batchSize === 'number') settings.batchSize = batchSize;
  if (typeof visibilityTimeout === 'string') settings.visibilityTimeoutInSeconds = timeSpanInSeconds('visibilityTimeout', visibilityTimeout);
  if (typeof maxPollingInterval === 'string') settings.maxPollingIntervalInMs = timeSpanInSeconds('maxPollingInterval', maxPollingInterval) * 1000;
  return settings;
}

function timeSpanInSeconds(name: string, value: string): number {
  const match = /^(\d+):(\d{2}):(\d{2})$/.exec(value);
  if (!match) throw new Error(`host.json extensions.queues.${name} must look like "00:00:30", not "${value}".`);
  return Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]);
}

export interface StartQueueRunnerOptions {
  readonly registrations: readonly FunctionRegistration[];
  /** App settings: binding expressions (`%JOBS_QUEUE%`) and connections are resolved from them. */
  readonly settings: Readonly<Record<string, string | undefined>>;
  readonly triggerSettings?: Partial<QueueTriggerSettings>;
  readonly log?: LogSink;
  /** Longest wait between polls of an empty queue; default the trigger settings' `maxPollingIntervalInMs`. */
  readonly maxPollIntervalInMs?: number;
}

export interface RunningQueueRunner {
  /** The queue each function listens to, after binding expressions were resolved. */
  readonly queues: readonly { readonly functionName: string; readonly queueName: string }[];
  /** Stops polling and waits for the invocations in progress. */
  close(): Promise<void>;
}

// A message stays invisible this long while it runs and is renewed halfway, as the host does.
const LEASE_SECONDS = 60;

/**
 * Runs the app's Storage Queue triggers against Azurite the way the Functions host does: messages
 * are base64-decoded and parsed as JSON when they are JSON, failures are redelivered, and after
 * `maxDequeueCount` deliveries a message moves to `<queue>-poison`.
 */
export async function startQueueRunner(options: StartQueueRunnerOptions): Promise<RunningQueueRunner> {
  const log = redactingSink(options.log ?? consoleSink);
  const triggerSettings = { ...DEFAULT_QUEUE_TRIGGER_SETTINGS, ...options.triggerSettings };
  const controller = new AbortController();
  const loops: Promise<void>[] = [];
  const queues: { functionName: string; queueName: string }[] = [];

  for (const registration of functionsWithTrigger(options.registrations, 'queueTrigger')) {
    const { binding } = triggerOf(registration);
    const rawQueueName = binding['queueName'];
    if (typeof rawQueueName !== 'string' || rawQueueName === '') throw new Error(`Function "${registration.name}" names no queue.`);
    const queueName = resolveBindingExpression(rawQueueName, options.settings, registration.name);
    const connectionName = typeof binding['connection'] === 'string' && binding['connection'] !== '' ? binding['connection'] : 'AzureWebJobsStorage';
    const connectionString = options.settings[connectionName];
    if (connectionString === undefined || connectionString.trim() === '') {
      throw new Error(`Function "${registration.name}" reads queue "${queueName}" through connection "${connectionName}", which is not set.`);
    }
    const service = QueueServiceClient.fromConnectionString(connectionString);
    const queue = service.getQueueClient(queueName);
    const poison = service.getQueueClient(`${queueName}-poison`);
    await queue.createIfNotExists();
    queues.push({ functionName: registration.name, queueName });
    loops.push(pollQueue(registration, queue, poison, triggerSettings, controller.signal, log, options.maxPollIntervalInMs ?? triggerSettings.maxPollingIntervalInMs));
  }

  return {
    queues,
    async close() {
      controller.abort();
      await Promise.allSettled(loops);
    },
  };
}

/** `%NAME%` parts of a trigger option come from app settings, as in the Functions host. */
export function resolveBindingExpression(value: string, settings: Readonly<Record<string, string | undefined>>, functionName: string): string {
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const resolved = settings[name];
    if (resolved === undefined || resolved.trim() === '') {
      throw new Error(`Function "${functionName}" uses %${name}%, but the app setting ${name} is not set.`);
    }
    return resolved.trim();
  });
}

async function pollQueue(
  registration: FunctionRegistration,
  queue: QueueClient,
  poison: QueueClient,
  settings: QueueTriggerSettings,
  signal: AbortSignal,
  log: LogSink,
  maxPollIntervalInMs: number,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let idleWait = 50;
  while (!signal.aborted) {
    const room = settings.batchSize - running.size;
    let received: DequeuedMessageItem[] = [];
    if (room > 0) {
      try {
        received = (await queue.receiveMessages({ numberOfMessages: Math.min(room, 32), visibilityTimeout: LEASE_SECONDS, abortSignal: signal }))
          .receivedMessageItems;
      } catch (error: unknown) {
        if (signal.aborted) break;
        log(`[${registration.name}] warning: reading queue ${queue.name} failed: ${describeError(error)}`);
      }
    }
    for (const message of received) {
      const invocation = invoke(registration, queue, poison, message, settings, log).finally(() => running.delete(invocation));
      running.add(invocation);
    }
    if (received.length === 0) {
      await delay(idleWait, undefined, { signal }).catch(() => undefined);
      idleWait = Math.min(idleWait * 2, maxPollIntervalInMs);
    } else {
      idleWait = 50;
    }
  }
  await Promise.allSettled(running);
}

async function invoke(
  registration: FunctionRegistration,
  queue: QueueClient,
  poison: QueueClient,
  message: DequeuedMessageItem,
  settings: QueueTriggerSettings,
  log: LogSink,
): Promise<void> {
  const invocationId = randomUUID();
  let popReceipt = message.popReceipt;
  // Keep the message hidden while the function runs, however long that takes.
  const renewal = setInterval(() => {
    queue
      .updateMessage(message.messageId, popReceipt, undefined, LEASE_SECONDS)
      .then((updated) => {
        if (updated.popReceipt) popReceipt = updated.popReceipt;
      })
      .catch((error: unknown) => log(`[${registration.name}] warning: could not extend message ${message.messageId}: ${describeError(error)}`));
  }, (LEASE_SECONDS / 2) * 1000);

  const context = new InvocationContext({
    invocationId,
    functionName: registration.name,
    logHandler: (level, ...args) => {
      for (const line of format(...args).split('\n')) log(`[${registration.name}] ${level}: ${line}`);
    },
    options: effectiveOptions(registration),
    triggerMetadata: {
      id: message.messageId,
      dequeueCount: message.dequeueCount,
      insertionTime: message.insertedOn.toISOString(),
      expirationTime: message.expiresOn.toISOString(),
      nextVisibleTime: message.nextVisibleOn.toISOString(),
      popReceipt: message.popReceipt,
    },
  });

  try {
    await registration.handler(decodeMessage(message.messageText), context);
    clearInterval(renewal);
    await queue.deleteMessage(message.messageId, popReceipt);
    log(`[${registration.name}] message ${message.messageId} done (delivery ${message.dequeueCount}) invocation=${invocationId}`);
  } catch (error: unknown) {
    clearInterval(renewal);
    log(`[${registration.name}] error: message ${message.messageId} failed (delivery ${message.dequeueCount}): ${describeError(error)}`);
    try {
      if (message.dequeueCount >= settings.maxDequeueCount) {
        await poison.createIfNotExists();
        await poison.sendMessage(message.messageText);
        await queue.deleteMessage(message.messageId, popReceipt);
        log(`[${registration.name}] message ${message.messageId} moved to ${poison.name} after ${message.dequeueCount} deliveries.`);
      } else {
        await queue.updateMessage(message.messageId, popReceipt, undefined, settings.visibilityTimeoutInSeconds);
      }
    } catch (followUpError: unknown) {
      log(`[${registration.name}] warning: could not return message ${message.messageId}: ${describeError(followUpError)}`);
    }
  }
}

/** What the Node worker hands a queue-triggered function: base64 decoded, JSON parsed when it is JSON. */
export function decodeMessage(messageText: string): unknown {
  const decoded = /^[A-Za-z0-9+/]*={0,2}$/.test(messageText) ? Buffer.from(messageText, 'base64').toString('utf8') : messageText;
  try {
    return JSON.parse(decoded) as unknown;
  } catch {
    return decoded;
  }
}
