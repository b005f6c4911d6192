import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { z } from 'zod';

import { defaultCaller } from './callers';
import { AppError, ConflictError, NotFoundError, StorageError, UpstreamError, UpstreamThrottledError } from './errors';
import type { EditImagesCommand, EditInputs, EditLimits, RawEditInput } from './edit-images';
import { checkInputSize, editImages, prepareEditInputs } from './edit-images';
import type { GenerateImagesCommand, GenerateImagesDependencies, GenerateImagesResult } from './generate-images';
import { assertValidGeneration, assertValidOptions, generateImages, loadStoredResult, recordBlobName } from './generate-images';
import { IMAGE_MODELS } from './image-models';
import { DocumentLease } from './document-lease';
import { accessTokenHash, accessTokenMatches, deriveAccessToken, newAccessToken, reissueAccessToken } from './job-tokens';
import type { CallOptions, DocumentStore, ImageStore, InputImageStore, JobQueue, UpstreamCapacity, Versioned } from './ports';

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
  /** A blob-triggered edit's upload, so that whoever ends the job can finish the upload's bookkeeping too. */
  readonly upload?: InboxUpload | undefined;
}

/** The inbox upload (one version of it) that a blob-triggered edit answers. */
export interface InboxUpload {
  readonly name: string;
  readonly etag: string;
  readonly bytes: number;
  /** With the name, the seed of the job's access token: the manifest can carry a working job link. */
  readonly contentSha256: string;
  /** Name, bytes and the uploader's metadata: an overwrite with the same is the same upload, answered by the same edit. */
  readonly fingerprint: string;
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
  /**
   * Upstream requests made for the job, each counted before it is sent: more than one means the
   * upstream was paid again (a worker died mid-call, or a call was throttled or failed).
   */
  readonly upstreamCalls?: number | undefined;
  /** Time spent running over all attempts, up to the current one; waiting in the queue does not count. */
  readonly runMs?: number | undefined;
  /** When the current attempt started. */
  readonly runningSince?: string | undefined;
  /** Submission plus JOBS_DEADLINE_SECONDS: a job not done by then ends. */
  readonly deadlineAt?: string | undefined;
  /** While running: until when the current worker owns the job (renewed while it works); past it, another may take over. */
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
const inboxUploadSchema = z.object({ name: z.string(), etag: z.string(), bytes: z.number(), contentSha256: z.string(), fingerprint: z.string() });
const resultLocationSchema = z.object({ store: z.enum(['images', 'outputs']), prefix: z.string(), upload: inboxUploadSchema.optional() }).optional();

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
  upstreamCalls: z.number().optional(),
  runMs: z.number().optional(),
  runningSince: z.string().optional(),
  deadlineAt: z.string().optional(),
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
  /** Asked before a job claims anything, so that it waits in the queue rather than pays for a 429. */
  readonly upstreamCapacity: UpstreamCapacity;
  readonly settings: {
    readonly editLimits: EditLimits;
    /** How long a job may spend running, over all its attempts, before it ends as JobTimedOut. */
    readonly maxRunInMs: number;
    /** From submission: how long a job may take in all, waiting included. */
    readonly deadlineInMs: number;
    /** How long an attempt owns a running job between renewals (every third of it). */
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
    upstreamCalls: 0,
    runMs: 0,
    deadlineAt: new Date(now.getTime() + dependencies.settings.deadlineInMs).toISOString(),
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

/**
 * A job past its deadline or its run window is reported (and recorded) as ended rather than pending
 * forever; a job a live worker holds is left to that worker, which checks the same before it spends.
 */
async function reportOverdue(found: Versioned<JobRecord>, dependencies: JobDependencies): Promise<Versioned<JobRecord>> {
  const job = found.value;
  const now = dependencies.clock.now().getTime();
  if (FINISHED.has(job.status) || (job.status === 'running' && leaseLeftOf(job, now) > 0)) return found;
  return (await endIfOverdue(found, now, dependencies)) ?? found;
}

function leaseLeftOf(job: JobRecord, now: number): number {
  return job.leaseUntil === undefined ? 0 : Date.parse(job.leaseUntil) - now;
}

function deadlineOf(job: JobRecord, dependencies: Pick<JobDependencies, 'settings'>): number {
  return job.deadlineAt === undefined ? Date.parse(job.createdAt) + dependencies.settings.deadlineInMs : Date.parse(job.deadlineAt);
}

/** The job with the current attempt's running time added to its total, as of `until`. */
function stopClock(job: JobRecord, until: number): JobRecord {
  if (job.runningSince === undefined) return job;
  return { ...job, runMs: (job.runMs ?? 0) + Math.max(0, until - Date.parse(job.runningSince)), runningSince: undefined };
}

// What the job ends with when a timer stops it: the wait for capacity, or time.
const TIMER_CODES: ReadonlySet<string> = new Set(['QuotaExhausted', 'JobTimedOut']);

/**
 * Ends a job whose deadline or run window has passed, unless its work is done: a job whose images
 * and record exist succeeds, whatever a timer says. Undefined when the job is not overdue; the job as
 * it is now when another writer changed it first.
 */
async function endIfOverdue(found: Versioned<JobRecord>, now: number, dependencies: JobDependencies): Promise<Versioned<JobRecord> | undefined> {
  // A worker that died is charged its running time up to its last renewal.
  const job = found.value.status === 'running' ? stopClock(found.value, Math.min(now, Date.parse(found.value.leaseUntil ?? found.value.updatedAt))) : found.value;
  const deadline = deadlineOf(job, dependencies);
  const { maxRunInMs } = dependencies.settings;
  if (now < deadline && (job.runMs ?? 0) < maxRunInMs) return undefined;
  const { imageStore, prefix } = resultTarget(job, dependencies);
  const done = (await imageStore.readRecord(recordBlobName(prefix))) !== undefined;
  const counts = { attempts: job.attempts, upstreamCalls: job.upstreamCalls ?? 0, ...(job.lastError ? { lastError: job.lastError } : {}) };
  const tried = `${counts.upstreamCalls} upstream call(s) in ${counts.attempts} attempt(s)`;
  let ended: JobRecord;
  if (done) {
    ended = finish(job, 'succeeded', dependencies);
  } else if (now >= deadline && job.lastError?.code === 'TooManyRequests') {
    ended = finish(job, 'failed', dependencies, {
      status: 429,
      code: 'QuotaExhausted',
      message: `Every deployment of ${job.request.command.model} stayed at its quota until the job's deadline (${Math.round(dependencies.settings.deadlineInMs / 1000)} s after submission), after ${tried}; submit it again later.`,
      details: counts,
    });
  } else {
    ended = finish(job, 'failed', dependencies, {
      status: 504,
      code: 'JobTimedOut',
      message:
        now >= deadline
          ? `The job did not finish within its deadline (${Math.round(dependencies.settings.deadlineInMs / 1000)} s after submission), after ${tried}; submit it again.`
          : `The job ran for more than ${Math.round(maxRunInMs / 60_000)} minutes in all, after ${tried}; submit it again.`,
      details: counts,
    });
  }
  const etag = await dependencies.documents.replace(jobName(job.id), ended, found.etag);
  return etag === undefined ? ((await readJob(job.id, dependencies)) ?? found) : { value: ended, etag };
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
  /** Someone else owns the job for now; its own watchdog looks after it. */
  | { readonly kind: 'busy'; readonly retryInSeconds: number }
  /** The upstream has no room (or was throttling); the job is queued again for when it will. */
  | { readonly kind: 'deferred'; readonly retryInSeconds: number }
  /** A watchdog's attempt is over: the job ended, or runs in a later attempt with a watchdog of its own. */
  | { readonly kind: 'superseded' }
  | { readonly kind: 'missing' };

export interface RunOptions {
  /** Set by a watchdog message: take the job over only if this attempt still runs with its lease run out. */
  readonly watchAttempt?: number | undefined;
}

// Waits shorter than the queue's one-second visibility step are waited in process.
const SHORT_WAIT_MS = 1_000;

/** Thrown before an upstream request when the attempt no longer owns its job: another worker took it over. */
class JobLeaseLostError extends Error {
  constructor(jobId: string) {
    super(`Job ${jobId} was taken over by another worker; this attempt stops before paying the upstream again.`);
    this.name = 'JobLeaseLostError';
  }
}

/**
 * Runs a job once, whoever asks (queue worker, a watchdog, an inline caller). Every state change is
 * guarded by the record's ETag, so two deliveries never both call the upstream: the loser sees the
 * job running and leaves it. While the upstream call is in flight the attempt renews its lease, and a
 * watchdog message looks at the job when the lease would run out, so the job of a worker that died is
 * taken over within about a lease. Before spending anything, a job past its deadline or run window
 * ends, and a job the upstream has no room for waits in the queue. Throws for transient failures so
 * the queue delivers again; records permanent ones in the job.
 */
export async function runJob(id: string, dependencies: JobDependencies, options: RunOptions = {}): Promise<RunOutcome> {
  const { documents, clock, settings } = dependencies;
  let claimed: Versioned<JobRecord> | undefined;
  let waitedHere = false;
  for (let attempt = 0; attempt < 5 && !claimed; attempt++) {
    const found = await readJob(id, dependencies);
    if (!found) return { kind: 'missing' };
    let job = found.value;
    if (FINISHED.has(job.status)) return { kind: 'finished', job };
    // A watchdog is done once its attempt ended (the job was queued again with a message of its own) or
    // another attempt runs (with its own watchdog). A job queued at a later attempt than the watched one
    // was taken over by this very watchdog and failed: its redelivery must run it.
    const watched = options.watchAttempt;
    if (watched !== undefined && (job.status === 'running' ? job.attempts !== watched : job.attempts === watched)) return { kind: 'superseded' };
    const now = clock.now().getTime();
    const leaseLeft = leaseLeftOf(job, now);
    if (job.status === 'running' && leaseLeft > 0) return { kind: 'busy', retryInSeconds: Math.ceil(leaseLeft / 1000) };

    const ended = await endIfOverdue(found, now, dependencies);
    if (ended) {
      if (FINISHED.has(ended.value.status)) return { kind: 'finished', job: ended.value };
      continue;
    }
    // An attempt that died is charged its running time up to its last renewal.
    if (job.status === 'running') job = stopClock(job, Math.min(now, Date.parse(job.leaseUntil ?? job.updatedAt)));

    const model = job.request.command.model;
    const unavailable = dependencies.upstreamCapacity.whenAvailable(model, imageCount(job));
    if (unavailable) {
      const waitInMs = Math.min(unavailable.at, deadlineOf(job, dependencies)) - now;
      // Queue visibility counts whole seconds: the rest of a second is waited here, then the job looks again.
      if (waitInMs <= SHORT_WAIT_MS && !waitedHere) {
        waitedHere = true;
        await sleep(waitInMs);
        continue;
      }
      // Wait in the queue, not in the upstream's: nothing is paid for a 429 we can see coming. The
      // message comes back a little early rather than late, and the job waits out the rest above.
      const retryInSeconds = Math.max(1, Math.floor(waitInMs / 1000));
      const lastError: JobError =
        unavailable.reason === 'throttled'
          ? { status: 429, code: 'TooManyRequests', message: `Every deployment of ${model} is at its quota; the job waits ${retryInSeconds} s for room.` }
          : { status: 502, code: 'UpstreamUnavailable', message: `Every deployment of ${model} is failing; the job waits ${retryInSeconds} s for one to recover.` };
      const waiting: JobRecord = { ...job, status: 'queued', leaseUntil: undefined, lastError, updatedAt: new Date(now).toISOString() };
      if ((await documents.replace(jobName(id), waiting, found.etag)) === undefined) continue;
      await dependencies.queue.enqueue(id, { delayInSeconds: retryInSeconds });
      return { kind: 'deferred', retryInSeconds };
    }

    const running: JobRecord = {
      ...job,
      status: 'running',
      attempts: job.attempts + 1,
      startedAt: job.startedAt ?? new Date(now).toISOString(),
      runningSince: new Date(now).toISOString(),
      leaseUntil: new Date(now + settings.leaseInMs).toISOString(),
      updatedAt: new Date(now).toISOString(),
    };
    const etag = await documents.replace(jobName(id), running, found.etag);
    if (etag !== undefined) claimed = { value: running, etag };
  }
  if (!claimed) {
    // Others kept changing the job: look again shortly. A second message is harmless: a job that
    // runs by then leaves it, a finished one ignores it.
    await dependencies.queue.enqueue(id, { delayInSeconds: 1 });
    return { kind: 'deferred', retryInSeconds: 1 };
  }

  const job = claimed.value;
  const lease = new DocumentLease<JobRecord>({
    documents,
    name: jobName(id),
    claimed,
    renewEveryInMs: Math.max(500, settings.leaseInMs / 3),
    renew: (current) => {
      const now = clock.now();
      return { ...current, leaseUntil: new Date(now.getTime() + settings.leaseInMs).toISOString(), updatedAt: now.toISOString() };
    },
  });
  try {
    // Should this worker die, its watchdog takes the job over once the lease has run out.
    await dependencies.queue.enqueue(id, { delayInSeconds: Math.ceil(settings.leaseInMs / 1000) + 1, watchAttempt: job.attempts });
    // An earlier attempt may have finished the work and died before recording it.
    const { imageStore, prefix } = resultTarget(job, dependencies);
    if ((await loadStoredResult(prefix, { imageStore })) === undefined) {
      await perform(job, { ...dependencies, imageStore }, prefix, {
        beforeUpstreamRequest: async () => {
          const counted = await lease.update((current) => ({ ...current, upstreamCalls: (current.upstreamCalls ?? 0) + 1 }));
          if (!counted) throw new JobLeaseLostError(id);
        },
      });
    }
    const succeeded = await settle(lease, (current) => finish(stopClock(current, clock.now().getTime()), 'succeeded', dependencies), dependencies, true);
    return succeeded ? { kind: 'finished', job: succeeded } : { kind: 'busy', retryInSeconds: 1 };
  } catch (error: unknown) {
    if (error instanceof JobLeaseLostError || lease.isLost) return { kind: 'busy', retryInSeconds: 1 };
    if (error instanceof UpstreamThrottledError) {
      const now = clock.now().getTime();
      // The router knows to the millisecond when room comes back (the error's Retry-After is rounded up).
      const roomAt = dependencies.upstreamCapacity.whenAvailable(job.request.command.model, imageCount(job))?.at ?? now + (error.retryAfterSeconds ?? 1) * 1000;
      const retryInSeconds = Math.max(0, Math.floor((Math.min(roomAt, deadlineOf(job, dependencies)) - now) / 1000));
      const queued = await settle(lease, (current) => ({ ...requeued(current, now), lastError: toJobError(error) }), dependencies, false);
      if (!queued) return { kind: 'busy', retryInSeconds: 1 };
      await dependencies.queue.enqueue(id, { delayInSeconds: retryInSeconds });
      return { kind: 'deferred', retryInSeconds };
    }
    if (isTransient(error)) {
      // Give the job back so the next delivery may take it at once, then let the queue retry.
      const released = await settle(lease, (current) => ({ ...requeued(current, clock.now().getTime()), lastError: toJobError(error) }), dependencies, false).catch(
        () => undefined,
      );
      // Another attempt owns the job by now: its outcome stands, and this failure is nobody's to retry.
      if (lease.isLost) return released ? { kind: 'finished', job: released } : { kind: 'busy', retryInSeconds: 1 };
      throw error;
    }
    const failed = await settle(lease, (current) => finish(stopClock(current, clock.now().getTime()), 'failed', dependencies, toJobError(error)), dependencies, false);
    return failed ? { kind: 'finished', job: failed } : { kind: 'busy', retryInSeconds: 1 };
  } finally {
    lease.stop();
  }
}

function imageCount(job: JobRecord): number {
  const n = job.request.command.options['n'];
  return typeof n === 'number' && n >= 1 ? n : 1;
}

function requeued(job: JobRecord, now: number): JobRecord {
  return { ...stopClock(job, now), status: 'queued', leaseUntil: undefined, updatedAt: new Date(now).toISOString() };
}

async function perform(job: JobRecord, dependencies: JobDependencies, requestId: string, callOptions: Pick<CallOptions, 'beforeUpstreamRequest'>): Promise<void> {
  const { request } = job;
  const options = { requestId, ...callOptions };
  if (request.operation === 'generate') {
    await generateImages({ ...request.command, includeBase64: false }, dependencies, options);
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
  await editImages({ ...request.command, includeBase64: false, inputs }, dependencies, options);
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

/**
 * Writes the job's next state through its lease. When the lease was lost: a job a timer ended while
 * this attempt finished the work succeeds after all (`workDone`); a job another writer finished is
 * returned as it is; undefined when another attempt now owns it.
 */
async function settle(lease: DocumentLease<JobRecord>, change: (current: JobRecord) => JobRecord, dependencies: JobDependencies, workDone: boolean): Promise<JobRecord | undefined> {
  const written = await lease.update(change);
  if (written) return written;
  const id = lease.value.id;
  for (let attempt = 0; attempt < 3; attempt++) {
    const current = await readJob(id, dependencies);
    if (!current) return undefined;
    const job = current.value;
    if (!(workDone && job.status === 'failed' && job.error && TIMER_CODES.has(job.error.code))) return FINISHED.has(job.status) ? job : undefined;
    const succeeded = finish({ ...job, error: undefined }, 'succeeded', dependencies);
    if ((await dependencies.documents.replace(jobName(id), succeeded, current.etag)) !== undefined) return succeeded;
  }
  return undefined;
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
