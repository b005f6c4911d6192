import { createHash, createHmac } from 'node:crypto';

import { z } from 'zod';

import { AppError, ConflictError, NotFoundError, StorageError, ValidationError } from './errors';
import type { JobRecord } from './image-jobs';
import { cancelJob, FINISHED, readJob } from './image-jobs';
import type { JobDependencies } from './image-jobs';
import { accessTokenHash, accessTokenMatches, newAccessToken } from './job-tokens';
import type { Clock, DocumentStore, ImageStore, Versioned } from './ports';

/**
 * Push instead of polling. A caller names a URL (the HTTP Webhook pattern: `listCallbackUrl()` of a
 * flow's action; or a connector trigger's notification URL) and the app POSTs to it when a job ends
 * or an inbox edit is done. Deliveries go through their own queue, one attempt per message, retried
 * with backoff a bounded number of times, and stop as soon as the subscription is gone. Every body
 * is signed (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`).
 */

// ---- ports ----------------------------------------------------------------------------------

export type CallbackMessage =
  | { readonly kind: 'job'; readonly jobId: string; readonly attempt: number }
  | { readonly kind: 'inbox'; readonly subscriptionId: string; readonly manifestName: string; readonly attempt: number };

export const callbackMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('job'), jobId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/), attempt: z.number().int().min(1) }),
  z.object({ kind: z.literal('inbox'), subscriptionId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/), manifestName: z.string().min(1), attempt: z.number().int().min(1) }),
]);

export interface CallbackQueue {
  enqueue(message: CallbackMessage, options?: { readonly delayInSeconds?: number | undefined }): Promise<void>;
}

/** What the receiver answered. */
export interface CallbackReply {
  readonly status: number;
  readonly retryAfterSeconds?: number | undefined;
}

export interface CallbackSender {
  /**
   * POSTs `body` to `url` with `headers`, connecting only to addresses the sender's policy allows
   * (checked after resolving, on the very address it connects to). Throws CallbackRefusedError when
   * the URL or its addresses are not allowed; other throws are network failures, worth a retry.
   */
  post(url: string, body: string, headers: Readonly<Record<string, string>>): Promise<CallbackReply>;
}

/** A URL, or the addresses its host resolves to, that callbacks may not go to. Never retried. */
export class CallbackRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallbackRefusedError';
  }
}

/** One subscription of the inbox trigger. */
export interface InboxSubscription {
  readonly id: string;
  readonly callbackUrl: string;
  /** Only uploads under this folder ('' for all). */
  readonly folder: string;
  readonly tokenHash: string;
  readonly createdAt: string;
}

export const inboxSubscriptionSchema = z.object({
  id: z.string(),
  callbackUrl: z.string(),
  folder: z.string(),
  tokenHash: z.string(),
  createdAt: z.string(),
});

export interface SubscriptionStore {
  create(subscription: InboxSubscription): Promise<void>;
  read(id: string): Promise<InboxSubscription | undefined>;
  /** True when there was one to delete. */
  delete(id: string): Promise<boolean>;
  list(): Promise<InboxSubscription[]>;
}

// ---- which URLs ------------------------------------------------------------------------------

export interface CallbackPolicy {
  /** Exact host names, or `*.suffix` for names under the suffix. */
  readonly allowedHosts: readonly string[];
  /** Local development only: http(s) receivers on loopback addresses too. */
  readonly allowLoopback: boolean;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
export const MAX_CALLBACK_URL_LENGTH = 2048;

export function isLoopbackHostName(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function hostAllowed(host: string, allowedHosts: readonly string[]): boolean {
  return allowedHosts.some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern));
}

/** Why `url` may not receive callbacks, or undefined when it may (its addresses are checked when it is called). */
export function callbackUrlProblem(url: string, policy: CallbackPolicy): string | undefined {
  if (url.length > MAX_CALLBACK_URL_LENGTH) return `is longer than ${MAX_CALLBACK_URL_LENGTH} characters`;
  if (!URL.canParse(url)) return 'is not an absolute URL';
  const parsed = new URL(url);
  if (parsed.username !== '' || parsed.password !== '') return 'carries credentials';
  const loopback = policy.allowLoopback && isLoopbackHostName(parsed.hostname);
  if (parsed.protocol !== 'https:' && !(loopback && parsed.protocol === 'http:')) return 'is not https';
  if (loopback) return undefined;
  if (!hostAllowed(parsed.hostname, policy.allowedHosts)) return `names a host (${parsed.hostname}) this app does not send callbacks to`;
  return undefined;
}

export function assertCallbackUrl(url: string, target: string, policy: CallbackPolicy): void {
  const problem = callbackUrlProblem(url, policy);
  if (problem !== undefined) {
    throw new ValidationError(`The callback URL in ${target} ${problem}; use the URL Power Automate or Logic Apps gives (listCallbackUrl()).`, {
      code: 'CallbackUrlNotAllowed',
      target,
    });
  }
}

// ---- signing --------------------------------------------------------------------------------

/**
 * The Standard Webhooks signature of one delivery: HMAC-SHA256 of `id.timestamp.body` under the
 * base64-decoded secret, as `v1,<base64>`. Receivers verify it with any Standard Webhooks library.
 */
export function signatureOf(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export function signedHeaders(secret: string, id: string, nowInMs: number, body: string): Record<string, string> {
  const timestamp = Math.floor(nowInMs / 1000);
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatureOf(secret, id, timestamp, body),
  };
}

// ---- retries --------------------------------------------------------------------------------

export const MAX_DELIVERY_ATTEMPTS = 8;
const FIRST_RETRY_SECONDS = 10;
const MAX_RETRY_SECONDS = 3600;

/** Seconds before attempt `attempt + 1`: the receiver's Retry-After, else 10 s tripled each time with ±20% jitter, within 1 s-1 h. */
export function retryDelaySeconds(attempt: number, retryAfterSeconds: number | undefined, random: () => number = Math.random): number {
  const base = retryAfterSeconds ?? FIRST_RETRY_SECONDS * 3 ** (attempt - 1) * (0.8 + 0.4 * random());
  return Math.round(Math.min(Math.max(base, 1), MAX_RETRY_SECONDS));
}

export type DeliveryVerdict =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'retry'; readonly delayInSeconds: number; readonly reason: string }
  | { readonly kind: 'give-up'; readonly reason: string }
  /** The receiver says the subscription no longer exists. */
  | { readonly kind: 'gone'; readonly reason: string };

/** What one attempt's outcome means: retry timeouts, throttling, 5xx and network failures a bounded number of times. */
export function deliveryVerdict(outcome: CallbackReply | { readonly error: unknown }, attempt: number, random?: () => number): DeliveryVerdict {
  let reason: string;
  let retryAfter: number | undefined;
  if ('error' in outcome) {
    if (outcome.error instanceof CallbackRefusedError) return { kind: 'give-up', reason: outcome.error.message };
    reason = `the request failed (${outcome.error instanceof Error ? outcome.error.message : 'unknown error'})`;
  } else {
    if (outcome.status >= 200 && outcome.status < 300) return { kind: 'delivered' };
    if (outcome.status === 404 || outcome.status === 410) return { kind: 'gone', reason: `the receiver answered ${outcome.status}` };
    if (!(outcome.status === 408 || outcome.status === 429 || outcome.status >= 500)) return { kind: 'give-up', reason: `the receiver answered ${outcome.status}` };
    reason = `the receiver answered ${outcome.status}`;
    retryAfter = outcome.retryAfterSeconds;
  }
  if (attempt >= MAX_DELIVERY_ATTEMPTS) return { kind: 'give-up', reason: `${reason}, and that was attempt ${attempt} of ${MAX_DELIVERY_ATTEMPTS}` };
  return { kind: 'retry', delayInSeconds: retryDelaySeconds(attempt, retryAfter, random), reason };
}

// ---- job callbacks (the HTTP Webhook pattern) -----------------------------------------------

type JobCallbackStatus = 'active' | 'unsubscribed' | 'delivered';

const jobCallbackSchema = z.object({
  jobId: z.string(),
  url: z.string(),
  // The job's token, so that the callback carries the same body as the job's link (job_token
  // included) and an unsubscribe can cancel the job. Kept where the job's own records are.
  token: z.string(),
  status: z.enum(['active', 'unsubscribed', 'delivered']),
  createdAt: z.string(),
  updatedAt: z.string(),
});
type JobCallback = z.infer<typeof jobCallbackSchema>;

const callbackName = (jobId: string) => `callbacks/jobs/${jobId}.json`;
const urlIndexName = (url: string) => `callbacks/urls/${createHash('sha256').update(url).digest('hex')}.json`;
const urlIndexSchema = z.object({ jobId: z.string() });

export interface CallbackDependencies {
  readonly documents: DocumentStore;
  readonly clock: Clock;
  readonly callbackQueue: CallbackQueue;
}

async function readCallback(jobId: string, documents: DocumentStore): Promise<Versioned<JobCallback> | undefined> {
  const found = await documents.read(callbackName(jobId));
  if (!found) return undefined;
  const parsed = jobCallbackSchema.safeParse(found.value);
  if (!parsed.success) throw new StorageError(`The callback record of job ${jobId} is not in the expected shape.`, parsed.error);
  return { value: parsed.data, etag: found.etag };
}

/** Writes `value` whether or not a document of that name exists (the latest subscriber wins). */
async function put(documents: DocumentStore, name: string, value: unknown): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if ((await documents.create(name, value)) !== undefined) return;
    const current = await documents.read(name);
    if (current && (await documents.replace(name, value, current.etag)) !== undefined) return;
  }
  throw new StorageError(`${name} kept changing while it was being written.`);
}

/**
 * Makes `url` the job's callback. A job that ended already (an Idempotency-Key replay) is delivered
 * at once; otherwise its end schedules the delivery (see `watchJobEnds`).
 */
export async function registerJobCallback(job: JobRecord, token: string, url: string, dependencies: CallbackDependencies): Promise<void> {
  const now = dependencies.clock.now().toISOString();
  const callback: JobCallback = { jobId: job.id, url, token, status: 'active', createdAt: now, updatedAt: now };
  await put(dependencies.documents, callbackName(job.id), callback);
  await put(dependencies.documents, urlIndexName(url), { jobId: job.id });
  // The job may have ended between its submission and this record: nothing would announce it then.
  const current = await readJob(job.id, dependencies);
  if (current && FINISHED.has(current.value.status)) await scheduleJobCallback(job.id, dependencies);
}

/**
 * Ends the subscription of `url` (the flow's run was cancelled, or timed out): nothing is delivered
 * to it any more, and its job is cancelled if it has not started, so that it is not paid for.
 */
export async function unsubscribeJobCallback(url: string, dependencies: CallbackDependencies & { readonly jobs: JobDependencies }): Promise<{ jobId: string; jobCancelled: boolean }> {
  const index = await dependencies.documents.read(urlIndexName(url));
  const jobId = index === undefined ? undefined : urlIndexSchema.safeParse(index.value).data?.jobId;
  const found = jobId === undefined ? undefined : await readCallback(jobId, dependencies.documents);
  if (jobId === undefined || !found || found.value.url !== url) {
    throw new NotFoundError('CallbackNotFound', 'No job reports to this callback URL; send the URL the job was started with (listCallbackUrl()).');
  }
  let callback = found;
  while (callback.value.status === 'active') {
    const unsubscribed = { ...callback.value, status: 'unsubscribed' as const, updatedAt: dependencies.clock.now().toISOString() };
    if ((await dependencies.documents.replace(callbackName(jobId), unsubscribed, callback.etag)) !== undefined) break;
    const again = await readCallback(jobId, dependencies.documents);
    if (!again) break;
    callback = again;
  }
  let jobCancelled = false;
  try {
    jobCancelled = (await cancelJob(jobId, callback.value.token, dependencies.jobs)).status === 'cancelled';
  } catch (error: unknown) {
    // Running or ended already: the subscription is what ends; the job finishes as it would have.
    if (!(error instanceof ConflictError || error instanceof NotFoundError)) throw error;
  }
  return { jobId, jobCancelled };
}

/** Puts the delivery of the job's callback on the queue, when it has an active one. */
export async function scheduleJobCallback(jobId: string, dependencies: CallbackDependencies): Promise<boolean> {
  const callback = await readCallback(jobId, dependencies.documents);
  if (callback?.value.status !== 'active') return false;
  await dependencies.callbackQueue.enqueue({ kind: 'job', jobId, attempt: 1 });
  return true;
}

const JOB_DOCUMENT = /^jobs\/([A-Za-z0-9-]{1,64})\.json$/;

/**
 * The one place where jobs are seen to end: every state change of a job is a compare-and-swap of
 * its record, so the record store tells `onJobEnded` when a write made a job finished, whichever
 * path (worker, poison queue, cancel, timeout) wrote it. A failing `onJobEnded` never fails the
 * write: the job's outcome is recorded either way, and `onError` reports it.
 */
export function watchJobEnds(documents: DocumentStore, onJobEnded: (jobId: string) => Promise<unknown>, onError: (jobId: string, error: unknown) => void): DocumentStore {
  return {
    read: (name) => documents.read(name),
    create: (name, value) => documents.create(name, value),
    async replace(name, value, etag) {
      const written = await documents.replace(name, value, etag);
      const jobId = JOB_DOCUMENT.exec(name)?.[1];
      const status: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, 'status') : undefined;
      if (written !== undefined && jobId !== undefined && FINISHED.has(status as JobRecord['status'])) {
        await onJobEnded(jobId).catch((error: unknown) => onError(jobId, error));
      }
      return written;
    },
  };
}

// ---- inbox trigger subscriptions ------------------------------------------------------------

export interface SubscriptionDependencies {
  readonly subscriptions: SubscriptionStore;
  readonly clock: Clock;
  readonly callbackQueue: CallbackQueue;
  readonly ids: { newId(): string };
}

/** A subscription of the inbox trigger, and its token (shown once: only its hash is kept). */
export async function subscribeInbox(callbackUrl: string, folder: string, dependencies: SubscriptionDependencies): Promise<{ subscription: InboxSubscription; token: string }> {
  const token = newAccessToken();
  const subscription: InboxSubscription = {
    id: dependencies.ids.newId(),
    callbackUrl,
    folder: folder.replace(/^\/+|\/+$/g, ''),
    tokenHash: accessTokenHash(token),
    createdAt: dependencies.clock.now().toISOString(),
  };
  await dependencies.subscriptions.create(subscription);
  return { subscription, token };
}

/** Deletes a subscription for the holder of its token; a wrong token looks like a missing subscription. */
export async function unsubscribeInbox(id: string, token: string | undefined, dependencies: Pick<SubscriptionDependencies, 'subscriptions'>): Promise<void> {
  const subscription = /^[A-Za-z0-9-]{1,64}$/.test(id) ? await dependencies.subscriptions.read(id) : undefined;
  if (!subscription || token === undefined || !accessTokenMatches(token, subscription.tokenHash)) {
    throw new NotFoundError('SubscriptionNotFound', `There is no subscription ${id}, or the link's token is wrong; use the Location the subscription was created with.`);
  }
  await dependencies.subscriptions.delete(id);
}

/** Whether an upload named `uploadName` is under the subscription's folder. */
export const watches = (subscription: InboxSubscription, uploadName: string) => subscription.folder === '' || uploadName.startsWith(`${subscription.folder}/`);

/** Queues the manifest of an inbox edit for every subscription that watches the upload. */
export async function scheduleInboxNotifications(
  uploadName: string,
  manifestName: string,
  dependencies: Pick<SubscriptionDependencies, 'subscriptions' | 'callbackQueue'>,
): Promise<number> {
  const subscriptions = (await dependencies.subscriptions.list()).filter((subscription) => watches(subscription, uploadName));
  await Promise.all(subscriptions.map((subscription) => dependencies.callbackQueue.enqueue({ kind: 'inbox', subscriptionId: subscription.id, manifestName, attempt: 1 })));
  return subscriptions.length;
}

// ---- delivery ---------------------------------------------------------------------------------

export interface DeliveryDependencies extends CallbackDependencies, SubscriptionDependencies {
  readonly sender: CallbackSender;
  /** The Standard Webhooks secret; undefined when callbacks are not configured. */
  readonly signingSecret: string | undefined;
  readonly outputStore: Pick<ImageStore, 'readRecord'>;
  readonly jobs: Pick<JobDependencies, 'documents'>;
  /** The body the job's link answers with now that the job ended (fresh links, the job token). */
  readonly renderFinishedJob: (job: JobRecord, token: string) => Promise<{ readonly status: number; readonly body: unknown }>;
  readonly random?: () => number;
}

export type DeliveryOutcome =
  | { readonly kind: 'delivered'; readonly attempt: number }
  | { readonly kind: 'retrying'; readonly attempt: number; readonly delayInSeconds: number; readonly reason: string }
  | { readonly kind: 'dropped'; readonly reason: string };

/** One attempt at one delivery; a failure worth retrying goes back on the queue with its delay. */
export async function deliverCallback(message: CallbackMessage, dependencies: DeliveryDependencies): Promise<DeliveryOutcome> {
  const secret = dependencies.signingSecret;
  if (secret === undefined) return { kind: 'dropped', reason: 'callbacks are not configured (no signing secret)' };
  const prepared = message.kind === 'job' ? await prepareJobDelivery(message.jobId, dependencies) : await prepareInboxDelivery(message, dependencies);
  if ('dropped' in prepared) return { kind: 'dropped', reason: prepared.dropped };

  const body = JSON.stringify(prepared.body);
  const headers = { ...signedHeaders(secret, prepared.deliveryId, dependencies.clock.now().getTime(), body), ...prepared.headers };
  let outcome: CallbackReply | { error: unknown };
  try {
    outcome = await dependencies.sender.post(prepared.url, body, headers);
  } catch (error: unknown) {
    outcome = { error };
  }
  const verdict = deliveryVerdict(outcome, message.attempt, dependencies.random);
  switch (verdict.kind) {
    case 'delivered':
      await prepared.onDelivered();
      return { kind: 'delivered', attempt: message.attempt };
    case 'retry':
      await dependencies.callbackQueue.enqueue({ ...message, attempt: message.attempt + 1 }, { delayInSeconds: verdict.delayInSeconds });
      return { kind: 'retrying', attempt: message.attempt, delayInSeconds: verdict.delayInSeconds, reason: verdict.reason };
    case 'gone':
      await prepared.onGone();
      return { kind: 'dropped', reason: verdict.reason };
    case 'give-up':
      return { kind: 'dropped', reason: verdict.reason };
  }
}

interface PreparedDelivery {
  readonly url: string;
  readonly deliveryId: string;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  onDelivered(): Promise<void>;
  onGone(): Promise<void>;
}

async function prepareJobDelivery(jobId: string, dependencies: DeliveryDependencies): Promise<PreparedDelivery | { dropped: string }> {
  const callback = await readCallback(jobId, dependencies.documents);
  if (!callback) return { dropped: `job ${jobId} has no callback` };
  if (callback.value.status !== 'active') return { dropped: `the callback of job ${jobId} is ${callback.value.status}` };
  const job = await readJob(jobId, dependencies.jobs);
  if (!job || !FINISHED.has(job.value.status)) return { dropped: `job ${jobId} has not ended` };
  const answer = await dependencies.renderFinishedJob(job.value, callback.value.token);
  const settle = (status: JobCallbackStatus) => async () => {
    const current = await readCallback(jobId, dependencies.documents);
    if (current?.value.status === 'active') {
      await dependencies.documents.replace(callbackName(jobId), { ...current.value, status, updatedAt: dependencies.clock.now().toISOString() }, current.etag);
    }
  };
  return {
    url: callback.value.url,
    deliveryId: `job_${jobId}`,
    body: answer.body,
    headers: { 'imagegen-event': 'job.ended', 'imagegen-job-status': job.value.status, 'imagegen-status-code': String(answer.status) },
    onDelivered: settle('delivered'),
    onGone: settle('unsubscribed'),
  };
}

async function prepareInboxDelivery(
  message: Extract<CallbackMessage, { kind: 'inbox' }>,
  dependencies: DeliveryDependencies,
): Promise<PreparedDelivery | { dropped: string }> {
  const subscription = await dependencies.subscriptions.read(message.subscriptionId);
  if (!subscription) return { dropped: `subscription ${message.subscriptionId} was deleted` };
  const manifest = await dependencies.outputStore.readRecord(message.manifestName);
  if (manifest === undefined) return { dropped: `the manifest ${message.manifestName} is gone` };
  return {
    url: subscription.callbackUrl,
    deliveryId: `inbox_${createHash('sha256').update(`${subscription.id}\u0000${message.manifestName}`).digest('hex').slice(0, 32)}`,
    body: manifest,
    headers: { 'imagegen-event': 'inbox.edited' },
    onDelivered: () => Promise.resolve(),
    // The flow is gone without unsubscribing: stop sending it anything.
    onGone: async () => {
      await dependencies.subscriptions.delete(subscription.id);
    },
  };
}

/** A refusal the HTTP layer renders like any other: callbacks cannot be used until the operator sets them up. */
export class CallbacksNotConfiguredError extends AppError {
  constructor() {
    super('CallbacksNotConfigured', 501, 'CALLBACK_SIGNING_SECRET is not set, so callbacks cannot be signed; set it (a Key Vault reference in Azure).', {
      publicMessage: "This app does not send callbacks yet; the app's operator must configure them.",
    });
  }
}
