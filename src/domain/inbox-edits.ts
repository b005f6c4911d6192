import { createHash } from 'node:crypto';

import { blobNameProblem } from './blob-names';
import { prepareEditInputs } from './edit-images';
import { AppError } from './errors';
import type { GenerateImagesResult } from './generate-images';
import { assertValidOptions } from './generate-images';
import type { EditJobCommand, JobDependencies, JobError, JobRecord, StoredEditInputs } from './image-jobs';
import { canonicalJson, FINISHED, jobResult, publicJobError, readJob, runJob, submitJob } from './image-jobs';
import type { InboxBlob, InboxStore, InputImageStore } from './ports';

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

export interface InboxEditDependencies extends JobDependencies {
  readonly inbox: InboxStore;
  /** Reads the request out of the upload; throws an AppError for an upload that is no valid request. */
  readonly parseRequest: (blob: InboxBlob) => InboxEditRequest;
}

export type InboxOutcome =
  | { readonly kind: 'ticket-input' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'already-processed'; readonly status: string; readonly jobId?: string | undefined }
  | { readonly kind: 'in-progress'; readonly jobId: string }
  | { readonly kind: 'succeeded'; readonly job: JobRecord; readonly manifestName: string }
  | { readonly kind: 'failed'; readonly error: JobError; readonly manifestName: string };

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
 * poisons the event.
 */
export async function processInboxUpload(name: string, dependencies: InboxEditDependencies): Promise<InboxOutcome> {
  // Checked before anything is read: the name alone decides which blob the storage client addresses.
  const problem = blobNameProblem(name);
  if (problem !== undefined) return rejectName(name, problem, dependencies);
  if (isTicketInputName(name)) return { kind: 'ticket-input' };
  const source = await dependencies.inbox.read(name);
  if (!source) return { kind: 'gone' };
  const contentHash = createHash('sha256');
  for (const chunk of source.content) contentHash.update(chunk);
  const contentSha256 = contentHash.digest('hex');
  const fingerprint = uploadFingerprint(name, contentSha256, source.metadata);
  if (source.metadata[FINGERPRINT_KEY] === fingerprint) {
    // The outcome of this very upload is already on it. Recording it gave the blob a new ETag, which
    // an ETag watcher (the local host's) reports as a change: handling it again would write a second
    // manifest for one upload.
    return { kind: 'already-processed', status: source.metadata['imagegen_status'] ?? 'unknown', jobId: source.metadata['imagegen_job'] };
  }
  const recorded = { [FINGERPRINT_KEY]: fingerprint };
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
    return fail(source, prefix, toManifestError(error), { recorded }, dependencies);
  }

  const jobId = jobIdFor(name, contentSha256, request);
  // Same bytes and request as a version already done (a repeated event, or an identical overwrite):
  // nothing to submit, and no link to hand out again.
  const done = await readJob(jobId, dependencies);
  if (done && FINISHED.has(done.value.status)) return alreadyProcessed(source, done.value, recorded, dependencies);
  const submitted = await submitJob(
    { operation: 'edit', command: request.command, inputs: request.inputs, result: { store: 'outputs', prefix } },
    { enqueue: false, jobId, tokenSeed: `inbox\u0000${name}\u0000${contentSha256}` },
    dependencies,
  );
  // Finished by another invocation since the look above.
  if (submitted.replayed && FINISHED.has(submitted.job.status)) return alreadyProcessed(source, submitted.job, recorded, dependencies);

  let job: JobRecord;
  try {
    const outcome = await runJob(jobId, { ...dependencies, inputImages: withUploadInMemory(dependencies.inputImages, source) });
    if (outcome.kind === 'missing') throw new Error(`Job ${jobId} vanished while it was being run.`);
    if (outcome.kind !== 'finished') return { kind: 'in-progress', jobId };
    job = outcome.job;
  } catch (error: unknown) {
    // Transient: keep the failure on record for whoever looks, then let the host retry (the source's
    // metadata is left alone: changing it now would only hand the retry a new ETag).
    await writeManifest(prefix, { status: 'retrying', jobId, source: describeSource(source), error: toManifestError(error) }, dependencies);
    throw error;
  }

  // The job's own result location: for an identical overwrite still running elsewhere, the first version's.
  const resultPrefix = job.request.result?.prefix ?? prefix;
  if (job.status !== 'succeeded') {
    return fail(source, resultPrefix, job.error ?? { status: 500, code: 'InternalError', message: 'The edit failed.' }, { job, recorded }, dependencies);
  }
  const result = await jobResult(job, dependencies);
  await writeManifest(
    resultPrefix,
    { status: 'succeeded', jobId: job.id, jobToken: submitted.accessToken, source: describeSource(source), ...describeResult(result) },
    dependencies,
  );
  await dependencies.inbox.recordOutcome(source, { ...outcomeMetadata(job), ...recorded });
  return { kind: 'succeeded', job, manifestName: manifestName(resultPrefix) };
}

async function alreadyProcessed(
  source: InboxBlob,
  job: JobRecord,
  recorded: Readonly<Record<string, string>>,
  dependencies: InboxEditDependencies,
): Promise<InboxOutcome> {
  await dependencies.inbox.recordOutcome(source, { ...outcomeMetadata(job), ...recorded });
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

async function fail(
  source: InboxBlob,
  prefix: string,
  error: JobError,
  { job, recorded }: { readonly job?: JobRecord; readonly recorded: Readonly<Record<string, string>> },
  dependencies: InboxEditDependencies,
): Promise<InboxOutcome> {
  // Whoever can read the outputs container reads the manifest: no log detail in it.
  await writeManifest(prefix, { status: 'failed', ...(job ? { jobId: job.id } : {}), source: describeSource(source), error: publicJobError(error) }, dependencies);
  await dependencies.inbox.recordOutcome(source, {
    imagegen_status: 'failed',
    imagegen_error: error.code,
    imagegen_output: prefix,
    ...(job ? { imagegen_job: job.id } : {}),
    ...recorded,
  });
  return { kind: 'failed', error, manifestName: manifestName(prefix) };
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
  return { kind: 'failed', error, manifestName: manifestName(prefix) };
}

function writeManifest(prefix: string, manifest: Record<string, unknown>, dependencies: InboxEditDependencies): Promise<void> {
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
