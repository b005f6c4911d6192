import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { setTimeout as sleep } from 'node:timers/promises';

import { invocationLog } from '../adapters/invocation-log';

import type { CallbackDependencies } from '../domain/callbacks';
import { assertCallbackUrl, CallbacksNotConfiguredError, registerJobCallback, scheduleJobCallback, watchJobEnds } from '../domain/callbacks';
import { ValidationError } from '../domain/errors';
import type { JobDependencies, JobRecord, JobSpec } from '../domain/image-jobs';
import { FINISHED, jobErrorToAppError, jobResult, publicJobError, readJobWithToken, runJob, submitJob } from '../domain/image-jobs';
import type { AppConfig } from '../config';
import type { EditLimits } from '../domain/edit-images';
import type { FinishedInboxEdit, InboxBookkeepingDependencies } from '../domain/inbox-edits';
import { finishInboxJob } from '../domain/inbox-edits';
import type { Services } from '../services';
import { toImagesResponse } from './images-response';
import { apiUrl } from './public-url';
import { readQueryBoolean } from './query-values';
import { deploymentFor } from './request-options';

/** How the caller wants the work done: `Prefer: respond-async` / `?async=true`, `?wait=N`, `Idempotency-Key`, `Callback-Url`. */
export interface JobMode {
  readonly async: boolean;
  readonly waitSeconds: number;
  readonly idempotencyKey: string | undefined;
  /** Where to POST the result when the job ends (the HTTP Webhook pattern); implies async. */
  readonly callbackUrl: string | undefined;
}

const MAX_WAIT_SECONDS = 100;

export function readJobMode(request: HttpRequest): JobMode {
  const prefer = request.headers.get('prefer') ?? '';
  const asyncQuery = readQueryBoolean(request, 'async');
  const waitQuery = request.query.get('wait');
  if (waitQuery !== null && !(/^\d{1,3}$/.test(waitQuery) && Number(waitQuery) <= MAX_WAIT_SECONDS)) {
    throw new ValidationError(`wait must be a whole number of seconds from 0 to ${MAX_WAIT_SECONDS}.`, { code: 'InvalidParameter', target: 'wait' });
  }
  const idempotencyKey = request.headers.get('idempotency-key') ?? undefined;
  if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    throw new ValidationError('Idempotency-Key must be 1-255 visible ASCII characters (a UUID is a good choice).', {
      code: 'InvalidParameter',
      target: 'Idempotency-Key',
    });
  }
  const callbackUrl = request.headers.get('callback-url') ?? undefined;
  return {
    async: /(^|[,;\s])respond-async($|[,;\s])/i.test(prefer) || asyncQuery === true || callbackUrl !== undefined,
    callbackUrl,
    waitSeconds: waitQuery === null ? 0 : Number(waitQuery),
    idempotencyKey,
  };
}

/** Jobs answer with links only: their results are read later, from storage. */
export function refuseInlineImagesForJobs(responseFormat: string | undefined): void {
  if (responseFormat === 'b64_json') {
    throw new ValidationError('response_format b64_json is not available for jobs (async or Idempotency-Key); read the images from data[].url.', {
      code: 'UnsupportedParameter',
      target: 'response_format',
    });
  }
}

/** True when the request must go through a job rather than the plain synchronous path. */
export const needsJob = (mode: JobMode): boolean => mode.async || mode.idempotencyKey !== undefined;

export function jobDependencies(services: Services): JobDependencies {
  const { config } = services;
  const withCallbacks = watchJobEnds(
    services.documents,
    (jobId) => scheduleJobCallback(jobId, callbackDependencies(services)),
    (jobId, error) => invocationLog.warn(`Job ${jobId} ended, but its callback could not be scheduled: ${messageOf(error)}`),
  );
  return {
    ...services,
    // A job that ends announces itself, whichever path ended it (the inbox trigger, the worker, a
    // deadline, the poison queue, a cancel): to its callback, and for an inbox edit with the upload's
    // manifest, its subscribers and its outcome.
    documents: watchJobEnds(
      withCallbacks,
      (jobId) => finishInboxJob(jobId, { ...inboxBookkeeping(services), documents: services.documents }),
      (jobId, error) => invocationLog.warn(`Job ${jobId} ended, but the bookkeeping of its inbox upload failed (the upload's next delivery finishes it): ${messageOf(error)}`),
    ),
    deploymentFor: deploymentFor(services),
    queue: services.jobQueue,
    settings: {
      editLimits: editLimitsOf(config),
      maxRunInMs: config.jobs.maxRunInMs,
      deadlineInMs: config.jobs.deadlineInMs,
      leaseInMs: config.jobs.leaseInMs,
      idempotencyWindowInMs: config.jobs.idempotencyWindowInMs,
      tokenSecrets: services.jobTokenSecrets,
    },
  };
}

/** What finishing an inbox upload's bookkeeping takes (see `finishInboxEdit`), with its log lines. */
export function inboxBookkeeping(services: Services): InboxBookkeepingDependencies {
  return {
    inbox: services.inbox,
    outputStore: services.outputStore,
    imageStore: services.imageStore,
    clock: services.clock,
    subscriptions: services.callbacks.subscriptions,
    callbackQueue: services.callbacks.queue,
    settings: { tokenSecrets: services.jobTokenSecrets },
    report: reportInboxEdit,
  };
}

function reportInboxEdit(edit: FinishedInboxEdit): void {
  // Quoted: a name may hold anything, line breaks included, and must not forge log lines.
  const quoted = JSON.stringify(edit.uploadName);
  const job = edit.jobId === undefined ? '' : ` by job ${edit.jobId}`;
  if (edit.status === 'succeeded') invocationLog.info(`${quoted} edited${job}; manifest ${edit.manifestName}.`);
  else invocationLog.warn(`${quoted} could not be edited${job}: ${edit.error?.code ?? 'unknown'}: ${edit.error?.message ?? ''} (manifest ${edit.manifestName}).`);
  if (edit.notified > 0) invocationLog.info(`${quoted}: the manifest goes to ${edit.notified} subscription(s).`);
  if (edit.notifyFailure !== undefined) invocationLog.warn(`${quoted}: the subscriptions could not be told of the manifest: ${messageOf(edit.notifyFailure)}`);
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function callbackDependencies(services: Services): CallbackDependencies {
  return { documents: services.documents, clock: services.clock, callbackQueue: services.callbacks.queue };
}

export function editLimitsOf(config: AppConfig): EditLimits {
  const { limits } = config;
  return { maxImageBytes: limits.maxEditImageBytes, maxMaskBytes: limits.maxEditMaskBytes, maxTotalBytes: limits.maxEditBodyBytes };
}

/**
 * Submits the work as a job and answers as the caller asked: async callers get 202 at once (or the
 * result if it is ready within `wait`); synchronous callers with an Idempotency-Key have the job run
 * here and now, unless an earlier request with the key already did (then they get its outcome).
 */
export async function handleAsJob(spec: JobSpec, mode: JobMode, services: Services): Promise<HttpResponseInit> {
  const dependencies = jobDependencies(services);
  if (mode.callbackUrl !== undefined) {
    assertCallbackUrl(mode.callbackUrl, 'Callback-Url', services.config.callbacks);
    if (services.callbacks.signingSecret === undefined) throw new CallbacksNotConfiguredError();
  }
  const submitted = await submitJob(spec, { idempotencyKey: mode.idempotencyKey, enqueue: mode.async }, dependencies);
  if (mode.callbackUrl !== undefined) await registerJobCallback(submitted.job, submitted.accessToken, mode.callbackUrl, callbackDependencies(services));
  let job = submitted.job;
  if (!mode.async && job.status === 'queued') {
    const outcome = await runJob(job.id, dependencies);
    if (outcome.kind === 'finished') job = outcome.job;
  }
  if (mode.waitSeconds > 0 && !FINISHED.has(job.status)) {
    job = await waitForJob(job, submitted.accessToken, mode.waitSeconds * 1000, dependencies);
  }
  return jobResponse(job, submitted.accessToken, services, { replayed: submitted.replayed });
}

async function waitForJob(job: JobRecord, token: string, timeInMs: number, dependencies: JobDependencies): Promise<JobRecord> {
  const until = Date.now() + timeInMs;
  let current = job;
  while (!FINISHED.has(current.status) && Date.now() < until) {
    await sleep(Math.min(1_000, Math.max(0, until - Date.now())));
    current = (await readJobWithToken(job.id, token, dependencies)).value;
  }
  return current;
}

/**
 * The Location contract Power Automate follows: 202 with Retry-After while pending, then the final
 * answer as the synchronous call would have given it (200 with images, or the error), plus the
 * job's token, so that a flow can feed Get job and Cancel job from it.
 */
export async function jobResponse(
  job: JobRecord,
  accessToken: string,
  services: Services,
  flags: { readonly replayed?: boolean } = {},
): Promise<HttpResponseInit> {
  const links = jobLinks(services.config, job.id, accessToken);
  const headers: Record<string, string> = { 'x-request-id': job.id, 'cache-control': 'no-store' };
  if (flags.replayed) headers['idempotent-replayed'] = 'true';
  if (job.status === 'failed') throw jobErrorToAppError(job.error ?? FAILED_WITHOUT_RECORD);
  if (FINISHED.has(job.status)) {
    const answer = await finishedJobAnswer(job, accessToken, services);
    return { status: answer.status, headers: { ...headers, ...answer.headers }, jsonBody: answer.body };
  }
  return {
    status: 202,
    headers: {
      ...headers,
      location: links.resultUrl,
      'operation-location': links.resultUrl,
      'retry-after': String(services.config.jobs.retryAfterSeconds),
    },
    jsonBody: jobSummary(job, accessToken, links),
  };
}

const FAILED_WITHOUT_RECORD = { status: 500, code: 'InternalError', message: 'The job failed.' };

/** A finished job's answer at its Location, as status, headers and body (also what a callback receives). */
export async function finishedJobAnswer(
  job: JobRecord,
  accessToken: string,
  services: Services,
): Promise<{ status: number; headers: Record<string, string>; body: unknown }> {
  switch (job.status) {
    case 'succeeded':
      return { status: 200, headers: {}, body: { ...toImagesResponse(await jobResult(job, services)), job_token: accessToken } };
    case 'cancelled':
      return {
        status: 410,
        headers: { 'x-ms-error-code': 'JobCancelled' },
        body: { error: { code: 'JobCancelled', message: `Job ${job.id} was cancelled before it ran.` } },
      };
    default: {
      const error = publicJobError(job.error ?? FAILED_WITHOUT_RECORD);
      const body = { code: error.code, message: error.message, ...(error.target ? { target: error.target } : {}), ...(error.details === undefined ? {} : { details: error.details }) };
      return { status: error.status, headers: { 'x-ms-error-code': error.code }, body: { error: body } };
    }
  }
}

/** The job's state for makers who poll in a loop: always 200, with the result once there is one. */
export async function jobStatusBody(job: JobRecord, accessToken: string, services: Services) {
  const result = job.status === 'succeeded' ? toImagesResponse(await jobResult(job, services)) : undefined;
  return {
    ...jobSummary(job, accessToken, jobLinks(services.config, job.id, accessToken)),
    ...(job.error ? { error: { code: job.error.code, message: job.error.message, ...(job.error.target ? { target: job.error.target } : {}) } } : {}),
    ...(result ? { result } : {}),
  };
}

function jobSummary(job: JobRecord, accessToken: string, links: JobLinks) {
  return {
    id: job.id,
    // On its own as well as in the links, so that a flow can pass it to Get job and Cancel job.
    token: accessToken,
    status: job.status,
    operation: job.request.operation,
    ...links,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    attempts: job.attempts,
    // More calls than attempts that succeeded means the upstream was paid again (a crash, a throttle).
    upstreamCalls: job.upstreamCalls ?? 0,
  };
}

/**
 * A job's two links. `resultUrl` (the Location) answers 202 until the job ends, then exactly what the
 * synchronous call would have; `statusUrl` always answers 200 with the job's state, for Do-until loops.
 */
interface JobLinks {
  readonly statusUrl: string;
  readonly resultUrl: string;
}

function jobLinks(config: AppConfig, jobId: string, accessToken: string): JobLinks {
  const resultUrl = jobUrl(config, jobId, accessToken);
  const status = new URL(resultUrl);
  status.pathname += '/status';
  return { statusUrl: status.href, resultUrl };
}

/**
 * The absolute URL of the job, carrying its access token: Power Automate does not send custom
 * headers (the function key) when it follows Location, so the link itself must authorise the read.
 */
export function jobUrl(config: AppConfig, jobId: string, accessToken: string): string {
  return apiUrl(config, `/jobs/${encodeURIComponent(jobId)}?token=${encodeURIComponent(accessToken)}`);
}
