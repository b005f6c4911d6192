import { createHash } from 'node:crypto';

import { z } from 'zod';

import { defaultCaller } from './callers';
import { AppError, ConflictError, NotFoundError, StorageError, UpstreamError, UpstreamThrottledError } from './errors';
import type { EditImagesCommand, EditInputs, EditLimits, RawEditInput } from './edit-images';
import { checkInputSize, editImages, prepareEditInputs } from './edit-images';
import type { GenerateImagesCommand, GenerateImagesDependencies, GenerateImagesResult } from './generate-images';
import { assertValidGeneration, assertValidOptions, generateImages, loadStoredResult } from './generate-images';
import { IMAGE_MODELS } from './image-models';
import { accessTokenHash, accessTokenMatches, deriveAccessToken, newAccessToken, reissueAccessToken } from './job-tokens';
import type { DocumentStore, ImageStore, InputImageStore, JobQueue, Versioned } from './ports';

/**
 * Image work as jobs: recorded before it starts, run by a queue worker (or inline), and readable by
 * id until it ends. A job's id is also its request id, so its blobs have fixed names: a second run of
 * the same job finds the first run's result instead of paying the upstream again.
 */

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const FINISHED: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/** An edit input kept in storage for the job: its own copy (jobs container) or the uploaded blob (inbox). */
export interface StoredEditInput {
  readonly container: 'jobs' | 'inbox';
  readonly blobName: string;
  /** The field the caller sent it in, for error targets. */
  readonly target: string;
  readonly fileName?: string | undefined;
}

export interface StoredEditInputs {
  readonly images: readonly StoredEditInput[];
  readonly mask?: StoredEditInput | undefined;
}

export type GenerateJobCommand = Omit<GenerateImagesCommand, 'includeBase64'>;
export type EditJobCommand = Omit<EditImagesCommand, 'includeBase64' | 'inputs'>;

/**
 * Where a job's images and record go: by default the images container under the job id; blob-triggered
 * edits write to the outputs container under a prefix derived from the source blob.
 */
export interface ResultLocation {
  readonly store: 'images' | 'outputs';
  readonly prefix: string;
}

/** What the job does; JSON, because it travels through storage. */
export type JobRequest = (
  | { readonly operation: 'generate'; readonly command: GenerateJobCommand }
  | { readonly operation: 'edit'; readonly command: EditJobCommand; readonly inputs: StoredEditInputs }
) & { readonly result?: ResultLocation | undefined };

/**
 * The work to submit. An edit's inputs either arrived with the request (`uploads`, kept in the jobs
 * container for the job) or are in storage already (`inputs`, e.g. an inbox upload).
 */
export type JobSpec =
  | { readonly operation: 'generate'; readonly command: GenerateJobCommand }
  | { readonly operation: 'edit'; readonly command: EditJobCommand; readonly uploads: EditInputs }
  | { readonly operation: 'edit'; readonly command: EditJobCommand; readonly inputs: StoredEditInputs; readonly result?: ResultLocation | undefined };

/** An AppError as stored: enough to answer the caller exactly as the synchronous call would have. */
export interface JobError {
  readonly status: number;
  readonly code: string;
  /** What the caller is told. */
  readonly message: string;
  /** What only the log may show (settings to check), when it differs from `message`. */
  readonly logDetail?: string | undefined;
  readonly target?: string | undefined;
  readonly details?: unknown;
}

export interface JobRecord {
  readonly id: string;
  readonly status: JobStatus;
  readonly request: JobRequest;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly startedAt?: string | undefined;
  readonly finishedAt?: string | undefined;
  readonly attempts: number;
  /** While running: until when the current worker owns the job; past it, another may take over. */
  readonly leaseUntil?: string | undefined;
  readonly accessTokenHash: string;
  readonly requestHash: string;
  readonly error?: JobError | undefined;
  /** The last transient failure, kept for the record when the retries run out. */
  readonly lastError?: JobError | undefined;
}

const jobErrorSchema = z.object({
  status: z.number(),
  code: z.string(),
  message: z.string(),
  logDetail: z.string().optional(),
  target: z.string().optional(),
  details: z.unknown().optional(),
});

// Jobs recorded before callers were kept are charged to the default caller's name.
const callerSchema = z.object({ id: z.string(), source: z.enum(['principal', 'user', 'inbox', 'default']) }).default(defaultCaller('unattributed'));
const commandSchema = z.object({
  prompt: z.string(),
  model: z.enum(IMAGE_MODELS),
  options: z.record(z.string(), z.unknown()),
  user: z.string().optional(),
  caller: callerSchema,
});
const storedInputSchema = z.object({ container: z.enum(['jobs', 'inbox']), blobName: z.string(), target: z.string(), fileName: z.string().optional() });
const resultLocationSchema = z.object({ store: z.enum(['images', 'outputs']), prefix: z.string() }).optional();

const jobRecordSchema = z.object({
  id: z.string(),
  status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
  request: z.discriminatedUnion('operation', [
    z.object({ operation: z.literal('generate'), command: commandSchema, result: resultLocationSchema }),
    z.object({
      operation: z.literal('edit'),
      command: commandSchema,
      inputs: z.object({ images: z.array(storedInputSchema).min(1), mask: storedInputSchema.optional() }),
      result: resultLocationSchema,
    }),
  ]),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  attempts: z.number(),
  leaseUntil: z.string().optional(),
  accessTokenHash: z.string(),
  requestHash: z.string(),
  error: jobErrorSchema.optional(),
  lastError: jobErrorSchema.optional(),
});

const idempotencyClaimSchema = z.object({ jobId: z.string(), requestHash: z.string(), expiresAt: z.string() });

export interface JobDependencies extends GenerateImagesDependencies {
  readonly documents: DocumentStore;
  readonly queue: JobQueue;
  readonly inputImages: InputImageStore;
  /** Where blob-triggered edits put their results. */
  readonly outputStore: ImageStore;
  readonly settings: {
    readonly editLimits: EditLimits;
    /** How long a job may run before it is reported failed. */
    readonly maxRunInMs: number;
    /** How long one attempt may own a running job (the upstream deadline and some slack). */
    readonly leaseInMs: number;
    readonly idempotencyWindowInMs: number;
    /** Secrets for derived access tokens: the first derives, all are tried for replays (see job-tokens). */
    readonly tokenSecrets: readonly [string, ...string[]];
  };
}

const jobName = (id: string) => `jobs/${id}.json`;
const claimName = (keyHash: string) => `idempotency/${keyHash}.json`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A job and its access token (random and shown once, or derived with the server's secret from an Idempotency-Key or a token seed). */
export interface SubmittedJob {
  readonly job: JobRecord;
  /** True when an earlier request with the same Idempotency-Key created this job. */
  readonly replayed: boolean;
  readonly accessToken: string;
}

export interface SubmitOptions {
  readonly idempotencyKey?: string | undefined;
  /** Put the job on the queue (async mode); otherwise the caller runs it with `runJob` right away. */
  readonly enqueue: boolean;
  /**
   * A job id derived from the work itself (a blob-triggered edit's source and content): a second
   * submission of the same work finds the first job instead of creating another.
   */
  readonly jobId?: string | undefined;
  /**
   * With `jobId`: what identifies the work (e.g. its content hash), from which the access token
   * derives with the server's secret, so that whoever submits the same work again can hand out a
   * working link too.
   */
  readonly tokenSeed?: string | undefined;
}

/**
 * Records a job after checking the request as the synchronous path would. With an Idempotency-Key,
 * the same key and body return the job the key first created; another body under that key is a 409.
 */
export async function submitJob(spec: JobSpec, options: SubmitOptions, dependencies: JobDependencies): Promise<SubmittedJob> {
  if (spec.operation === 'generate') assertValidGeneration(spec.command);
  else assertValidOptions(spec.command.model, spec.command.prompt, spec.command.options, 'edit');
  const { documents, clock, ids } = dependencies;
  const now = clock.now();
  const requestHash = sha256(canonicalJson(fingerprintOf(spec)));
  const id = options.jobId ?? ids.newId();
  // With a key (or seed), the token derives from it, the job and the secret, so that a replay can hand
  // the same link out again; without one, it is random and shown once.
  const seed = options.idempotencyKey ?? options.tokenSeed;
  const secrets = dependencies.settings.tokenSecrets;
  const accessToken = seed === undefined ? newAccessToken() : deriveAccessToken(secrets[0], id, seed);
  const tokenOf = (existing: JobRecord) => (seed === undefined ? accessToken : reissuedToken(existing, seed, secrets));

  if (options.idempotencyKey !== undefined) {
    const existing = await claimIdempotencyKey(options.idempotencyKey, id, requestHash, dependencies);
    if (existing !== undefined) {
      if (existing.requestHash !== requestHash) {
        throw new ConflictError(
          'IdempotencyKeyReused',
          'This Idempotency-Key was already used with a different request body; use a new key for a new request.',
        );
      }
      const job = await readJob(existing.jobId, dependencies);
      if (job) return { job: job.value, replayed: true, accessToken: tokenOf(job.value) };
      // The claim was written but its job was not (a crash in between): this request creates it.
    }
  }
  if (options.jobId !== undefined) {
    const existing = await readJob(options.jobId, dependencies);
    if (existing) return { job: existing.value, replayed: true, accessToken: tokenOf(existing.value) };
  }

  const job: JobRecord = {
    id,
    status: 'queued',
    request: await toJobRequest(spec, id, dependencies),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    attempts: 0,
    accessTokenHash: accessTokenHash(accessToken),
    requestHash,
  };
  if ((await documents.create(jobName(id), job)) === undefined) {
    const raced = options.jobId === undefined ? undefined : await readJob(id, dependencies);
    if (raced) return { job: raced.value, replayed: true, accessToken: tokenOf(raced.value) };
    throw new StorageError(`Job ${id} exists already.`);
  }
  if (options.enqueue) await dependencies.queue.enqueue(id);
  return { job, replayed: false, accessToken };
}

/** The token of a job handed out again, re-derived with whichever configured secret made it. */
function reissuedToken(job: JobRecord, seed: string, secrets: readonly string[]): string {
  const token = reissueAccessToken(secrets, job.id, seed, job.accessTokenHash);
  if (token === undefined) {
    throw new ConflictError(
      'IdempotencyKeyUnavailable',
      "This request's job was made under a job-token secret that has since been retired, so its link cannot be handed out again; send it as a new request (with a new Idempotency-Key).",
    );
  }
  return token;
}

/** What makes two submissions the same request: parameters and the inputs' content, not where they were kept. */
function fingerprintOf(spec: JobSpec): unknown {
  if (spec.operation === 'generate' || !('uploads' in spec)) return spec;
  const byContent = (input: EditInputs['images'][number]) => ({ target: input.target, sha256: input.sha256 });
  const { images, mask } = spec.uploads;
  return { operation: 'edit', command: spec.command, images: images.map(byContent), mask: mask && byContent(mask) };
}

/** Keeps an edit's uploaded inputs in the jobs container, so the job can run anywhere, later. */
async function toJobRequest(spec: JobSpec, jobId: string, dependencies: JobDependencies): Promise<JobRequest> {
  if (spec.operation === 'generate' || !('uploads' in spec)) return spec;
  const { uploads } = spec;
  const keep = async (input: EditInputs['images'][number], name: string): Promise<StoredEditInput> => {
    const blobName = `inputs/${jobId}/${name}-${input.fileName}`;
    await dependencies.inputImages.saveJobInput(blobName, input);
    return { container: 'jobs', blobName, target: input.target, fileName: input.fileName };
  };
  const images = await Promise.all(uploads.images.map((input, index) => keep(input, String(index))));
  const mask = uploads.mask && (await keep(uploads.mask, 'mask'));
  return { operation: 'edit', command: spec.command, inputs: { images, mask } };
}

/** Returns the live claim for this key, or undefined when this call made the claim for `jobId`. */
async function claimIdempotencyKey(
  key: string,
  jobId: string,
  requestHash: string,
  dependencies: JobDependencies,
): Promise<z.infer<typeof idempotencyClaimSchema> | undefined> {
  const { documents, clock, settings } = dependencies;
  const name = claimName(sha256(key));
  const claim = { jobId, requestHash, expiresAt: new Date(clock.now().getTime() + settings.idempotencyWindowInMs).toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    if ((await documents.create(name, claim)) !== undefined) return undefined;
    const current = await documents.read(name);
    if (!current) continue; // removed in between: try to create it again
    const parsed = idempotencyClaimSchema.safeParse(current.value);
    if (!parsed.success) throw new StorageError(`The idempotency record ${name} is not in the expected shape.`, parsed.error);
    if (Date.parse(parsed.data.expiresAt) > clock.now().getTime()) return parsed.data;
    // Expired: the key may start a new job, but only one of the callers racing for it.
    if ((await documents.replace(name, claim, current.etag)) !== undefined) return undefined;
  }
  throw new ConflictError('IdempotencyKeyBusy', 'Another request with this Idempotency-Key is being recorded; retry in a moment.');
}

/** Reads a job by id; undefined when there is none. */
export async function readJob(id: string, dependencies: Pick<JobDependencies, 'documents'>): Promise<Versioned<JobRecord> | undefined> {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) return undefined;
  const found = await dependencies.documents.read(jobName(id));
  if (!found) return undefined;
  const parsed = jobRecordSchema.safeParse(found.value);
  if (!parsed.success) throw new StorageError(`The record of job ${id} is not in the expected shape.`, parsed.error);
  return { value: parsed.data, etag: found.etag };
}

/** Reads a job for a caller holding its access token; a wrong token looks like a missing job. */
export async function readJobWithToken(id: string, token: string | undefined, dependencies: JobDependencies): Promise<Versioned<JobRecord>> {
  const found = await readJob(id, dependencies);
  if (!found || token === undefined || !accessTokenMatches(token, found.value.accessTokenHash)) {
    throw new NotFoundError('JobNotFound', `There is no job ${id}, or the link's token is wrong; use the Location URL the job was created with.`);
  }
  return reportOverdue(found, dependencies);
}

/** A job running past its window is reported (and recorded) as failed rather than pending forever. */
async function reportOverdue(found: Versioned<JobRecord>, dependencies: JobDependencies): Promise<Versioned<JobRecord>> {
  const job = found.value;
  const startedAt = Date.parse(job.startedAt ?? job.createdAt);
  if (job.status !== 'running' || dependencies.clock.now().getTime() - startedAt <= dependencies.settings.maxRunInMs) return found;
  const failed = finish(job, 'failed', dependencies, {
    status: 504,
    code: 'JobTimedOut',
    message: `The job did not finish within ${Math.round(dependencies.settings.maxRunInMs / 60_000)} minutes; submit it again.`,
  });
  const etag = await dependencies.documents.replace(jobName(job.id), failed, found.etag);
  return etag === undefined ? ((await readJob(job.id, dependencies)) ?? found) : { value: failed, etag };
}

/** The store and blob-name prefix of a job's results. */
function resultTarget(job: JobRecord, dependencies: Pick<JobDependencies, 'imageStore' | 'outputStore'>): { imageStore: ImageStore; prefix: string } {
  const location = job.request.result;
  return location
    ? { imageStore: location.store === 'outputs' ? dependencies.outputStore : dependencies.imageStore, prefix: location.prefix }
    : { imageStore: dependencies.imageStore, prefix: job.id };
}

/** The stored images of a succeeded job, with fresh links. */
export async function jobResult(job: JobRecord, dependencies: Pick<JobDependencies, 'imageStore' | 'outputStore'>): Promise<GenerateImagesResult> {
  const { imageStore, prefix } = resultTarget(job, dependencies);
  const result = await loadStoredResult(prefix, { imageStore });
  if (!result) throw new StorageError(`Job ${job.id} succeeded but its record ${prefix}/request.json is missing.`);
  return result;
}

/** Cancels a job that has not started; a job that runs or ended cannot be cancelled. */
export async function cancelJob(id: string, token: string | undefined, dependencies: JobDependencies): Promise<JobRecord> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await readJobWithToken(id, token, dependencies);
    const job = found.value;
    if (job.status === 'cancelled') return job;
    if (job.status !== 'queued') {
      throw new ConflictError('JobNotCancellable', `Job ${id} is ${job.status}; only a queued job can be cancelled.`);
    }
    const cancelled = finish(job, 'cancelled', dependencies);
    if ((await dependencies.documents.replace(jobName(id), cancelled, found.etag)) !== undefined) return cancelled;
  }
  throw new ConflictError('JobBusy', `Job ${id} changed while it was being cancelled; try again.`);
}

export type RunOutcome =
  | { readonly kind: 'finished'; readonly job: JobRecord }
  /** Someone else owns the job for now; look again after the delay. */
  | { readonly kind: 'busy'; readonly retryInSeconds: number }
  /** The upstream is throttling; the job is queued again for later. */
  | { readonly kind: 'deferred'; readonly retryInSeconds: number }
  | { readonly kind: 'missing' };

/**
 * Runs a job once, whoever asks (queue worker, a redelivery, an inline caller). Every state change is
 * guarded by the record's ETag, so two deliveries never both call the upstream: the loser sees the job
 * running and backs off. Throws for transient failures so the queue delivers again; records permanent
 * ones in the job.
 */
export async function runJob(id: string, dependencies: JobDependencies): Promise<RunOutcome> {
  const { documents, clock, settings } = dependencies;
  let claimed: Versioned<JobRecord> | undefined;
  for (let attempt = 0; attempt < 5 && !claimed; attempt++) {
    const found = await readJob(id, dependencies);
    if (!found) return { kind: 'missing' };
    const job = found.value;
    if (FINISHED.has(job.status)) return { kind: 'finished', job };
    const now = clock.now().getTime();
    const leaseLeft = job.leaseUntil === undefined ? 0 : Date.parse(job.leaseUntil) - now;
    if (job.status === 'running' && leaseLeft > 0) return { kind: 'busy', retryInSeconds: Math.ceil(leaseLeft / 1000) };
    if (now - Date.parse(job.startedAt ?? job.createdAt) > settings.maxRunInMs && job.status === 'running') {
      const overdue = await reportOverdue(found, dependencies);
      if (FINISHED.has(overdue.value.status)) return { kind: 'finished', job: overdue.value };
    }
    const running: JobRecord = {
      ...job,
      status: 'running',
      attempts: job.attempts + 1,
      startedAt: job.startedAt ?? new Date(now).toISOString(),
      leaseUntil: new Date(now + settings.leaseInMs).toISOString(),
      updatedAt: new Date(now).toISOString(),
    };
    const etag = await documents.replace(jobName(id), running, found.etag);
    if (etag !== undefined) claimed = { value: running, etag };
  }
  if (!claimed) return { kind: 'busy', retryInSeconds: 5 };

  const job = claimed.value;
  try {
    // An earlier attempt may have finished the work and died before recording it.
    const { imageStore, prefix } = resultTarget(job, dependencies);
    if ((await loadStoredResult(prefix, { imageStore })) === undefined) await perform(job, { ...dependencies, imageStore }, prefix);
    return { kind: 'finished', job: await settle(claimed, finish(job, 'succeeded', dependencies), dependencies) };
  } catch (error: unknown) {
    if (error instanceof UpstreamThrottledError) {
      const retryInSeconds = Math.max(error.retryAfterSeconds ?? 1, 1);
      const queued: JobRecord = { ...job, status: 'queued', leaseUntil: undefined, lastError: toJobError(error), updatedAt: clock.now().toISOString() };
      await settle(claimed, queued, dependencies);
      await dependencies.queue.enqueue(id, { delayInSeconds: retryInSeconds });
      return { kind: 'deferred', retryInSeconds };
    }
    if (isTransient(error)) {
      // Give the job back so the next delivery may take it at once, then let the queue retry.
      const released: JobRecord = { ...job, status: 'queued', leaseUntil: undefined, lastError: toJobError(error), updatedAt: clock.now().toISOString() };
      await settle(claimed, released, dependencies).catch(() => undefined);
      throw error;
    }
    const failed = finish(job, 'failed', dependencies, toJobError(error));
    return { kind: 'finished', job: await settle(claimed, failed, dependencies) };
  }
}

async function perform(job: JobRecord, dependencies: JobDependencies, requestId: string): Promise<void> {
  const { request } = job;
  if (request.operation === 'generate') {
    await generateImages({ ...request.command, includeBase64: false }, dependencies, { requestId });
    return;
  }
  const limits = dependencies.settings.editLimits;
  const read = async (input: StoredEditInput, role: 'image' | 'mask'): Promise<RawEditInput> => {
    const blob = await dependencies.inputImages.readInputBlob(input.container, input.blobName, {
      target: input.target,
      checkSize: (bytes) => checkInputSize(role, input.target, bytes, limits),
    });
    return { target: input.target, fileName: input.fileName, size: blob.size, content: blob.content };
  };
  const images = await Promise.all(request.inputs.images.map((input) => read(input, 'image')));
  const mask = request.inputs.mask && (await read(request.inputs.mask, 'mask'));
  const inputs = prepareEditInputs({ images, mask, imagesTarget: request.inputs.images[0]?.target ?? 'images' }, limits);
  await editImages({ ...request.command, includeBase64: false, inputs }, dependencies, { requestId });
}

/** Ends a job whose retries ran out (its queue message went to the poison queue). */
export async function failExhaustedJob(id: string, dependencies: JobDependencies): Promise<JobRecord | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await readJob(id, dependencies);
    if (!found) return undefined;
    const job = found.value;
    if (FINISHED.has(job.status)) return job;
    const last = job.lastError;
    const failed = finish(job, 'failed', dependencies, {
      status: last?.status ?? 500,
      code: 'JobRetriesExhausted',
      message: `The job failed ${job.attempts} time(s) and was given up${last ? `; the last failure: ${last.code}: ${last.message}` : ''}.`,
      ...(last ? { details: { lastError: publicJobError(last) } } : {}),
    });
    if ((await dependencies.documents.replace(jobName(id), failed, found.etag)) !== undefined) return failed;
  }
  return undefined;
}

// Failures that another attempt may not meet: storage hiccups, an unreachable upstream, a 5xx after
// the client's own retries, and anything unexpected. Everything else is the request's own fault or a
// configuration problem, and repeating it would only pay again.
function isTransient(error: unknown): boolean {
  if (error instanceof StorageError) return true;
  if (error instanceof UpstreamError) return error.code === 'UpstreamUnavailable' || error.code === 'UpstreamError';
  return !(error instanceof AppError);
}

function finish(job: JobRecord, status: JobStatus, dependencies: Pick<JobDependencies, 'clock'>, error?: JobError): JobRecord {
  const now = dependencies.clock.now().toISOString();
  return { ...job, status, leaseUntil: undefined, updatedAt: now, finishedAt: now, ...(error ? { error } : {}) };
}

/** Writes the job's new state with the lease's ETag; losing the lease means another attempt took over. */
async function settle(claimed: Versioned<JobRecord>, next: JobRecord, dependencies: JobDependencies): Promise<JobRecord> {
  const etag = await dependencies.documents.replace(jobName(next.id), next, claimed.etag);
  if (etag === undefined) {
    const current = await readJob(next.id, dependencies);
    if (current && FINISHED.has(current.value.status)) return current.value;
    throw new StorageError(`Job ${next.id} was changed by another worker while this one ran it.`);
  }
  return next;
}

function toJobError(error: unknown): JobError {
  if (error instanceof AppError) {
    return {
      status: error.status,
      code: error.code,
      message: error.publicMessage,
      ...(error.publicMessage === error.message ? {} : { logDetail: error.message }),
      ...(error.target === undefined ? {} : { target: error.target }),
      ...(error.details === undefined ? {} : { details: error.details }),
    };
  }
  return { status: 500, code: 'InternalError', message: 'The job failed unexpectedly; see the log.' };
}

/** The stored error as an AppError again, so the HTTP layer renders (and logs) it like the synchronous one. */
export function jobErrorToAppError(error: JobError): AppError {
  return new AppError(error.code, error.status, error.logDetail ?? error.message, {
    publicMessage: error.message,
    target: error.target,
    details: error.details as AppError['details'],
  });
}

/** A stored error as callers may see it: without the log detail. */
export function publicJobError(error: JobError): JobError {
  return { ...error, logDetail: undefined };
}

/** JSON with sorted keys, so that the same request always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, field: unknown) =>
    field !== null && typeof field === 'object' && !Array.isArray(field)
      ? Object.fromEntries(Object.entries(field).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : field,
  );
}
