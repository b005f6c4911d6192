import { createHash } from 'node:crypto';

import { z } from 'zod';

import { blobNameProblem } from './blob-names';
import type { CallbackQueue, SubscriptionStore } from './callbacks';
import { scheduleInboxNotifications } from './callbacks';
import { prepareEditInputs } from './edit-images';
import { AppError } from './errors';
import type { GenerateImagesResult } from './generate-images';
import { assertValidOptions } from './generate-images';
import type { EditJobCommand, InboxUpload, JobDependencies, JobError, JobRecord, RunOutcome, StoredEditInputs } from './image-jobs';
import { canonicalJson, FINISHED, jobResult, publicJobError, readJob, runJob, submitJob } from './image-jobs';
import { reissueAccessToken } from './job-tokens';
import type { Clock, DocumentStore, ImageStore, InboxBlob, InboxBlobVersion, InboxStore, InputImageStore } from './ports';

/**
 * Edits triggered by uploads to the inbox: an image with a prompt in its metadata, an image under a
 * preset's folder, or a JSON ticket naming several images. Each upload version is one job whose id
 * comes from the blob's name, its bytes and the request, so a repeated event, a redelivery or an
 * overwrite with the same bytes finds that job instead of paying the upstream again.
 */

/** What an upload asks for, once read: the edit and where its inputs are (all in the inbox). */
export interface InboxEditRequest {
  readonly kind: 'image' | 'ticket';
  readonly command: EditJobCommand;
  readonly inputs: StoredEditInputs;
}

/** What finishing an upload's bookkeeping takes, whoever ends its job. */
export interface InboxBookkeepingDependencies {
  readonly inbox: InboxStore;
  readonly outputStore: ImageStore;
  readonly imageStore: ImageStore;
  readonly clock: Clock;
  /** The inbox trigger's subscriptions, told of each manifest. */
  readonly subscriptions: SubscriptionStore;
  readonly callbackQueue: CallbackQueue;
  readonly settings: { readonly tokenSecrets: readonly string[] };
  /** Told of every upload whose bookkeeping was finished, once each, for the log. */
  readonly report: (edit: FinishedInboxEdit) => void;
}

export interface InboxEditDependencies extends JobDependencies, InboxBookkeepingDependencies {
  readonly settings: JobDependencies['settings'];
  /** Reads the request out of the upload; throws an AppError for an upload that is no valid request. */
  readonly parseRequest: (blob: InboxBlob) => InboxEditRequest;
}

/** How an upload's edit ended. */
export interface InboxEditEnd {
  readonly status: 'succeeded' | 'failed';
  /** None for an upload refused before it became a job (its name, or its request). */
  readonly jobId?: string | undefined;
  readonly manifestName: string;
}

/** How an upload's edit ended, once its manifest, its subscribers and its outcome are taken care of. */
export interface FinishedInboxEdit extends InboxEditEnd {
  readonly uploadName: string;
  readonly error?: JobError | undefined;
  /** How many subscriptions were told of the manifest. */
  readonly notified: number;
  /** Why the subscriptions could not be told: the edit's outcome stands all the same. */
  readonly notifyFailure?: unknown;
}

export type InboxOutcome =
  | { readonly kind: 'ticket-input' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'already-processed'; readonly status: string; readonly jobId?: string | undefined }
  /** A worker holds the job right now; the job's end finishes the upload's bookkeeping. */
  | { readonly kind: 'in-progress'; readonly jobId: string }
  /** The upstream has no room: the jobs worker runs the edit later, and the job's end finishes the upload's bookkeeping. */
  | { readonly kind: 'deferred'; readonly jobId: string; readonly retryInSeconds: number; readonly manifestName: string }
  | { readonly kind: 'finished'; readonly edit: InboxEditEnd }

/** Blobs under a folder whose name starts with `_` are a ticket's inputs, never edited on their own. */
export const isTicketInputName = (name: string) => name.split('/').slice(0, -1).some((folder) => folder.startsWith('_'));

/** The results of one upload version: `{name}/{etag}/` in the outputs container. */
export function outputPrefix(name: string, etag: string): string {
  return `${name}/${etag.replace(/[^A-Za-z0-9]/g, '')}`;
}

export const manifestName = (prefix: string) => `${prefix}/manifest.json`;

/** Where the manifest of an upload whose name was refused goes: its name cannot be a blob-name prefix. */
export const rejectedPrefix = (name: string) => `_rejected/${createHash('sha256').update(name).digest('hex')}`;

/**
 * Handles one BlobCreated event for `name`. Permanent problems end in a failed manifest (never in
 * retries); transient ones record the failure and throw, so the host retries and in the end
 * poisons the event. An edit the upstream has no room for now waits in the jobs queue: the upload's
 * bookkeeping is then finished by whoever ends its job (see `finishInboxEdit`).
 */
export async function processInboxUpload(name: string, dependencies: InboxEditDependencies): Promise<InboxOutcome> {
  // Checked before anything is read: the name alone decides which blob the storage client addresses.
  const problem = blobNameProblem(name);
  if (problem !== undefined) return rejectName(name, problem, dependencies);
  if (isTicketInputName(name)) return { kind: 'ticket-input' };
  const source = await dependencies.inbox.read(name);
  if (!source) return { kind: 'gone' };
  const contentSha256 = sha256Of(source.content);
  const fingerprint = uploadFingerprint(name, contentSha256, source.metadata);
  if (source.metadata[FINGERPRINT_KEY] === fingerprint) {
    // The outcome of this very upload is already on it. Recording it gave the blob a new ETag, which
    // an ETag watcher (the local host's) reports as a change: handling it again would write a second
    // manifest for one upload.
    return { kind: 'already-processed', status: source.metadata['imagegen_status'] ?? 'unknown', jobId: source.metadata['imagegen_job'] };
  }
  const upload: InboxUpload = { name, etag: source.etag, bytes: source.size, contentSha256, fingerprint };
  const prefix = outputPrefix(name, source.etag);

  let request: InboxEditRequest;
  try {
    request = dependencies.parseRequest(source);
    assertValidOptions(request.command.model, request.command.prompt, request.command.options, 'edit');
    // An image is checked from its bytes now; a ticket's images are checked when the job reads them.
    if (request.kind === 'image') {
      prepareEditInputs({ images: [{ target: name, fileName: name, size: source.size, content: source.content }], imagesTarget: name }, dependencies.settings.editLimits);
    }
  } catch (error: unknown) {
    if (!(error instanceof AppError)) throw error;
    const refused = toManifestError(error);
    const edit = await finishUpload(upload, prefix, { status: 'failed', error: refused, source: describeUpload(upload) }, failedOutcome(prefix, refused), dependencies);
    return { kind: 'finished', edit };
  }

  const jobId = jobIdFor(name, contentSha256, request);
  // Same bytes and request as a version already done (a repeated event, or an identical overwrite):
  // nothing to submit, and no link to hand out again.
  const done = await readJob(jobId, dependencies);
  if (done && FINISHED.has(done.value.status)) return alreadyFinished(source, upload, done.value, dependencies);
  const submitted = await submitJob(
    { operation: 'edit', command: request.command, inputs: request.inputs, result: { store: 'outputs', prefix, upload } },
    { enqueue: false, jobId, tokenSeed: tokenSeedOf(upload) },
    dependencies,
  );
  // Finished by another invocation since the look above.
  if (submitted.replayed && FINISHED.has(submitted.job.status)) return alreadyFinished(source, upload, submitted.job, dependencies);
  // The job's own result location: for an identical overwrite still running elsewhere, the first version's.
  const resultPrefix = submitted.job.request.result?.prefix ?? prefix;

  let run: RunOutcome;
  try {
    run = await runJob(jobId, { ...dependencies, inputImages: withUploadInMemory(dependencies.inputImages, source) });
  } catch (error: unknown) {
    // Transient: keep the failure on record for whoever looks, then let the host retry (the source's
    // metadata is left alone: changing it now would only hand the retry a new ETag).
    await writeManifest(prefix, { status: 'retrying', jobId, source: describeSource(source), error: toManifestError(error) }, dependencies);
    throw error;
  }
  switch (run.kind) {
    case 'missing':
      throw new Error(`Job ${jobId} vanished while it was being run.`);
    case 'finished':
      return { kind: 'finished', edit: await endedHere(run.job, upload, dependencies) };
    case 'deferred': {
      // Until the jobs worker runs it, the manifest says so, with the job's link for whoever wants to follow it.
      const waiting = { status: 'queued', jobId, jobToken: submitted.accessToken, source: describeUpload(submitted.job.request.result?.upload ?? upload), retryAfterSeconds: run.retryInSeconds };
      await writeManifest(resultPrefix, waiting, dependencies);
      // Ended by a worker between the deferral and that write: the end's manifest must stand, not this one.
      const now = await readJob(jobId, dependencies);
      if (now && FINISHED.has(now.value.status)) return { kind: 'finished', edit: await finishInboxEdit(now.value, upload, dependencies) };
      return { kind: 'deferred', jobId, retryInSeconds: run.retryInSeconds, manifestName: manifestName(resultPrefix) };
    }
    case 'busy':
    case 'superseded':
      return { kind: 'in-progress', jobId };
  }
}

/**
 * Finishes an upload's bookkeeping once its job has ended, whoever ended it (this trigger, the jobs
 * worker, a deadline, the poison queue, a cancel): the manifest (succeeded, or failed as the trigger
 * writes it for a refused upload), then the subscriptions, then the outcome on the upload, so that an
 * outcome on the upload means the rest is done. The job-end hook (`watchJobEnds`) calls it through
 * `finishInboxJob`; `upload` is the job's own unless it predates jobs that keep it.
 */
export async function finishInboxEdit(job: JobRecord, upload: InboxUpload, dependencies: InboxBookkeepingDependencies): Promise<FinishedInboxEdit> {
  const prefix = job.request.result?.prefix ?? outputPrefix(upload.name, upload.etag);
  const source = describeUpload(upload);
  if (job.status !== 'succeeded') {
    const error = publicJobError(job.error ?? (job.status === 'cancelled' ? CANCELLED : FAILED_WITHOUT_RECORD));
    return finishUpload(upload, prefix, { status: 'failed', jobId: job.id, source, error }, { ...failedOutcome(prefix, error), imagegen_job: job.id }, dependencies, job.id);
  }
  const result = await jobResult(job, dependencies);
  // Derived again, as the trigger that submitted the job handed it out: the manifest's job link works.
  const jobToken = reissueAccessToken(dependencies.settings.tokenSecrets, job.id, tokenSeedOf(upload), job.accessTokenHash);
  const manifest = { status: 'succeeded' as const, jobId: job.id, ...(jobToken === undefined ? {} : { jobToken }), source, ...describeResult(result) };
  return finishUpload(upload, prefix, manifest, { imagegen_status: 'succeeded', imagegen_job: job.id, imagegen_output: prefix }, dependencies, job.id);
}

/** The job-end hook's half for inbox edits: finishes the bookkeeping of a job that answers an upload; undefined for any other job. */
export async function finishInboxJob(
  jobId: string,
  dependencies: InboxBookkeepingDependencies & { readonly documents: DocumentStore },
): Promise<FinishedInboxEdit | undefined> {
  const found = await readJob(jobId, dependencies);
  const upload = found?.value.request.result?.upload;
  if (!found || !upload || !FINISHED.has(found.value.status)) return undefined;
  return finishInboxEdit(found.value, upload, dependencies);
}

const CANCELLED: JobError = { status: 410, code: 'JobCancelled', message: "The edit's job was cancelled before it ran." };
const FAILED_WITHOUT_RECORD: JobError = { status: 500, code: 'InternalError', message: 'The edit failed.' };

/**
 * The job ended in this invocation, so the job-end hook has just finished the bookkeeping as the
 * job's record was written. Should that hook have failed (it only logs), the manifest is not the
 * job's final one: the bookkeeping is done here, where a failure makes the host retry.
 */
async function endedHere(job: JobRecord, upload: InboxUpload, dependencies: InboxEditDependencies): Promise<InboxEditEnd> {
  const prefix = job.request.result?.prefix ?? outputPrefix(upload.name, upload.etag);
  const written = manifestStateSchema.safeParse(await dependencies.outputStore.readRecord(manifestName(prefix)));
  const status = job.status === 'succeeded' ? 'succeeded' : 'failed';
  if (!written.success || written.data.jobId !== job.id || written.data.status !== status) return finishInboxEdit(job, job.request.result?.upload ?? upload, dependencies);
  return { status, jobId: job.id, manifestName: manifestName(prefix) };
}

const manifestStateSchema = z.object({ status: z.string(), jobId: z.string().optional() });

/**
 * An upload whose job had ended before this delivery. For the job's own version, the outcome not on
 * it means its bookkeeping never completed (the end's hook failed): it is finished now. For an
 * identical overwrite the first version's edit is the answer: its outcome is recorded, nothing else.
 */
async function alreadyFinished(source: InboxBlob, upload: InboxUpload, job: JobRecord, dependencies: InboxEditDependencies): Promise<InboxOutcome> {
  if (job.request.result?.prefix === outputPrefix(source.name, source.etag)) {
    return { kind: 'finished', edit: await finishInboxEdit(job, job.request.result.upload ?? upload, dependencies) };
  }
  await dependencies.inbox.recordOutcome(source, { ...outcomeMetadata(job), [FINGERPRINT_KEY]: upload.fingerprint });
  return { kind: 'already-processed', status: job.status, jobId: job.id };
}

/**
 * Serves the upload itself from the bytes already read: one download instead of two, and the edit
 * uses exactly the version whose ETag the outcome is recorded against. Other inputs come from storage.
 */
function withUploadInMemory(inputs: InputImageStore, source: InboxBlob): InputImageStore {
  return {
    readInputBlob: (container, blobName, options) => {
      if (container !== 'inbox' || blobName !== source.name) return inputs.readInputBlob(container, blobName, options);
      options.checkSize(source.size);
      return Promise.resolve({ size: source.size, content: source.content });
    },
    saveJobInput: (blobName, upload) => inputs.saveJobInput(blobName, upload),
  };
}

/** Manifest, subscriptions, outcome: in that order, the outcome last, as the mark that the rest is done. */
async function finishUpload(
  upload: InboxUpload,
  prefix: string,
  manifest: Record<string, unknown> & { readonly status: 'succeeded' | 'failed'; readonly error?: JobError },
  outcome: Readonly<Record<string, string>>,
  dependencies: InboxBookkeepingDependencies,
  jobId?: string,
): Promise<FinishedInboxEdit> {
  // Whoever can read the outputs container reads the manifest: no log detail in it.
  await writeManifest(prefix, manifest, dependencies);
  const told = await tellSubscriptions(upload.name, manifestName(prefix), dependencies);
  await recordOnUpload(upload, { ...outcome, [FINGERPRINT_KEY]: upload.fingerprint }, dependencies);
  const edit = { uploadName: upload.name, status: manifest.status, jobId, manifestName: manifestName(prefix), error: manifest.error, ...told };
  dependencies.report(edit);
  return edit;
}

/** The edit's outcome stands whether or not the subscriptions can be told of its manifest. */
async function tellSubscriptions(uploadName: string, name: string, dependencies: InboxBookkeepingDependencies): Promise<Pick<FinishedInboxEdit, 'notified' | 'notifyFailure'>> {
  try {
    return { notified: await scheduleInboxNotifications(uploadName, name, dependencies) };
  } catch (error: unknown) {
    return { notified: 0, notifyFailure: error };
  }
}

/**
 * Records the outcome on the upload's version, or on a later one with the same name, bytes and
 * metadata (an identical overwrite, which this edit answers too). A version with other bytes is
 * another upload, with an event and an edit of its own; a deleted one needs nothing.
 */
async function recordOnUpload(upload: InboxUpload, outcome: Readonly<Record<string, string>>, dependencies: InboxBookkeepingDependencies): Promise<void> {
  const current: InboxBlobVersion | undefined = await dependencies.inbox.readProperties(upload.name);
  if (!current) return;
  if (current.etag === upload.etag) {
    await dependencies.inbox.recordOutcome(current, outcome);
    return;
  }
  const overwrite = await dependencies.inbox.read(upload.name);
  if (overwrite && uploadFingerprint(overwrite.name, sha256Of(overwrite.content), overwrite.metadata) === upload.fingerprint) {
    await dependencies.inbox.recordOutcome(overwrite, outcome);
  }
}

function failedOutcome(prefix: string, error: JobError): Record<string, string> {
  return { imagegen_status: 'failed', imagegen_error: error.code, imagegen_output: prefix };
}

/** A name that is not a plain blob name: a failed manifest in the outputs container, and nothing else read or written. */
async function rejectName(name: string, problem: string, dependencies: InboxEditDependencies): Promise<InboxOutcome> {
  const error: JobError = {
    status: 400,
    code: 'InvalidBlobName',
    message: `The upload's name ${problem}; upload it under a name of '/'-separated parts without '.' or '..' parts, backslashes or control characters.`,
  };
  const prefix = rejectedPrefix(name);
  await writeManifest(prefix, { status: 'failed', source: { name }, error }, dependencies);
  const told = await tellSubscriptions(name, manifestName(prefix), dependencies);
  const edit = { uploadName: name, status: 'failed' as const, manifestName: manifestName(prefix), error, ...told };
  dependencies.report(edit);
  return { kind: 'finished', edit };
}

function writeManifest(prefix: string, manifest: Record<string, unknown>, dependencies: Pick<InboxBookkeepingDependencies, 'outputStore' | 'clock'>): Promise<void> {
  return dependencies.outputStore.saveRecord(manifestName(prefix), { ...manifest, updatedAt: dependencies.clock.now().toISOString() });
}

function outcomeMetadata(job: JobRecord): Record<string, string> {
  return {
    imagegen_status: job.status,
    imagegen_job: job.id,
    ...(job.request.result ? { imagegen_output: job.request.result.prefix } : {}),
    ...(job.error ? { imagegen_error: job.error.code } : {}),
  };
}

function describeSource(source: InboxBlob) {
  return { name: source.name, etag: source.etag, bytes: source.size };
}

function describeUpload(upload: InboxUpload) {
  return { name: upload.name, etag: upload.etag, bytes: upload.bytes };
}

/** What an inbox job's access token derives from: whoever submits or ends the same work derives the same link. */
const tokenSeedOf = (upload: Pick<InboxUpload, 'name' | 'contentSha256'>) => `inbox\u0000${upload.name}\u0000${upload.contentSha256}`;

function sha256Of(content: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const chunk of content) hash.update(chunk);
  return hash.digest('hex');
}

function describeResult(result: GenerateImagesResult) {
  return {
    model: result.model,
    size: result.size,
    quality: result.quality,
    outputFormat: result.outputFormat,
    usage: result.usage,
    images: result.images.map((image) => ({
      blobName: image.blobName,
      url: image.url,
      expiresAt: image.expiresOn.toISOString(),
      contentType: image.contentType,
      bytes: image.bytes,
      width: image.width,
      height: image.height,
      revisedPrompt: image.revisedPrompt,
    })),
  };
}

function toManifestError(error: unknown): JobError {
  if (error instanceof AppError) {
    return { status: error.status, code: error.code, message: error.publicMessage, ...(error.target === undefined ? {} : { target: error.target }) };
  }
  return { status: 500, code: 'InternalError', message: 'The edit failed unexpectedly; see the log.' };
}

/** Where the outcome records which upload it belongs to. */
const FINGERPRINT_KEY = 'imagegen_fingerprint';

/**
 * What makes an upload what it is: its name, its bytes and the metadata its uploader gave it (ours
 * left out, since recording the outcome must not change the upload's identity). Metadata keys arrive
 * lower-cased from some reads and not others, hence the normalising.
 */
function uploadFingerprint(name: string, contentSha256: string, metadata: Readonly<Record<string, string>>): string {
  const uploaderMetadata = Object.fromEntries(
    Object.entries(metadata)
      .map(([key, value]) => [key.toLowerCase(), value] as const)
      .filter(([key]) => !key.startsWith('imagegen_')),
  );
  return createHash('sha256').update(canonicalJson({ name, contentSha256, metadata: uploaderMetadata })).digest('base64url');
}

/** A job id (UUID-shaped) from what makes two uploads the same work: name, bytes and request. */
function jobIdFor(name: string, contentSha256: string, request: InboxEditRequest): string {
  const hex = createHash('sha256').update(canonicalJson({ source: 'inbox', name, contentSha256, request })).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
