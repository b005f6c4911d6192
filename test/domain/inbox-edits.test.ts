import { parseInboxRequest } from '../../src/blob/inbox-request';
import type { CallbackMessage } from '../../src/domain/callbacks';
import { cancelJob, runJob } from '../../src/domain/image-jobs';
import type { InboxEditDependencies } from '../../src/domain/inbox-edits';
import { outputPrefix, processInboxUpload } from '../../src/domain/inbox-edits';
import { accessTokenMatches } from '../../src/domain/job-tokens';
import type { ImageStore, UpstreamCapacity } from '../../src/domain/ports';
import { inboxBookkeeping, jobDependencies } from '../../src/http/jobs';
import { makeFakeServices } from '../fakes/services';
import { makePng } from '../helpers/images';

// Inbox uploads whose edit the trigger cannot run at once: the job waits in the queue, and whoever
// ends it (the worker, a deadline, a cancel) finishes the upload's bookkeeping. In fakes, with the
// clock and the upstream's room in the test's hand.

const PNG = makePng(16, 16);
const NAME = 'shots/door.png';

interface Manifest {
  status: string;
  jobId?: string;
  jobToken?: string;
  source?: { name: string; etag: string };
  images?: unknown[];
  error?: { code: string };
}

function setUp() {
  let now = Date.parse('2026-12-01T09:00:00Z');
  let unavailable: ReturnType<UpstreamCapacity['whenAvailable']>;
  const base = makeFakeServices({ JOBS_DEADLINE_SECONDS: '600' });
  let failManifestWrites = false;
  const outputStore: ImageStore = {
    stageImage: (blobName, options) => base.outputStore.stageImage(blobName, options),
    saveRecord: (blobName, record) =>
      failManifestWrites && blobName.endsWith('/manifest.json') ? Promise.reject(new Error('storage is down')) : base.outputStore.saveRecord(blobName, record),
    readRecord: (blobName) => base.outputStore.readRecord(blobName),
    createReadLink: (blobName) => base.outputStore.createReadLink(blobName),
  };
  const services = { ...base, outputStore, clock: { now: () => new Date(now) }, upstreamCapacity: { whenAvailable: () => unavailable } };
  const trigger: InboxEditDependencies = { ...inboxBookkeeping(services), ...jobDependencies(services), parseRequest: (blob) => parseInboxRequest(blob, services.config) };
  const worker = jobDependencies(services);
  void base.callbacks.subscriptions.create({ id: 'flow-1', callbackUrl: 'https://flows.example.com/1', folder: 'shots', tokenHash: 'x', createdAt: new Date(now).toISOString() });

  let version = 0;
  const upload = (bytes: Buffer = PNG, metadata: Record<string, string> = { prompt: 'paint the door red' }) => {
    const etag = `"0x${++version}"`;
    base.inbox.blobs.set(NAME, { name: NAME, etag, metadata, size: bytes.length, content: [bytes] });
    // The same container as the jobs worker reads its inputs from.
    base.inputImages.blobs.set(`inbox/${NAME}`, bytes);
    return outputPrefix(NAME, etag);
  };
  return {
    services: base,
    trigger,
    worker,
    upload,
    advance: (ms: number) => (now += ms),
    noRoomFor: (ms: number) => (unavailable = { at: now + ms, reason: 'throttled' }),
    roomAgain: () => (unavailable = undefined),
    failManifestWrites: (fail: boolean) => (failManifestWrites = fail),
    manifest: (prefix: string) => base.outputStore.records.get(`${prefix}/manifest.json`) as Manifest | undefined,
    metadata: () => base.inbox.blobs.get(NAME)?.metadata ?? {},
    notifications: () => base.callbacks.queue.sent.map((sent) => sent.message as Extract<CallbackMessage, { kind: 'inbox' }>),
  };
}

/** Defers the upload's edit: no room upstream for a minute. */
async function deferred(setup: ReturnType<typeof setUp>) {
  const prefix = setup.upload();
  setup.noRoomFor(60_000);
  const outcome = await processInboxUpload(NAME, setup.trigger);
  if (outcome.kind !== 'deferred') throw new Error(`expected a deferral, got ${outcome.kind}`);
  return { prefix, jobId: outcome.jobId, outcome };
}

describe('an inbox upload deferred for capacity', () => {
  it('waits in the jobs queue with a queued manifest, and paid nothing', async () => {
    const setup = setUp();
    const { prefix, jobId, outcome } = await deferred(setup);

    expect(outcome).toEqual({ kind: 'deferred', jobId, retryInSeconds: 60, manifestName: `${prefix}/manifest.json` });
    expect(setup.manifest(prefix)).toMatchObject({ status: 'queued', jobId, source: { name: NAME }, retryAfterSeconds: 60 });
    expect(setup.services.jobQueue.sent).toContainEqual({ jobId, delayInSeconds: 60 });
    expect(setup.services.imageModel.editCalls).toHaveLength(0);
    expect(setup.metadata()).not.toHaveProperty('imagegen_status');
    expect(setup.notifications()).toEqual([]);
  });

  it("is finished by the worker's end: the manifest with a working job link, the subscription told, the outcome recorded", async () => {
    const setup = setUp();
    const { prefix, jobId } = await deferred(setup);

    setup.advance(60_000);
    setup.roomAgain();
    setup.services.imageModel.willReturn(PNG);
    const run = await runJob(jobId, setup.worker);

    expect(run.kind).toBe('finished');
    const manifest = setup.manifest(prefix);
    expect(manifest).toMatchObject({ status: 'succeeded', jobId, source: { name: NAME }, images: [expect.anything()] });
    const job = setup.services.documents.documents.get(`jobs/${jobId}.json`)?.value as { accessTokenHash: string };
    expect(accessTokenMatches(manifest?.jobToken ?? '', job.accessTokenHash)).toBe(true);
    expect(setup.notifications()).toEqual([{ kind: 'inbox', subscriptionId: 'flow-1', manifestName: `${prefix}/manifest.json`, attempt: 1 }]);
    expect(setup.metadata()).toMatchObject({ imagegen_status: 'succeeded', imagegen_job: jobId, imagegen_output: prefix, imagegen_fingerprint: expect.any(String) as unknown });

    // A redelivery finds the upload handled: no second edit, manifest or notification.
    expect(await processInboxUpload(NAME, setup.trigger)).toMatchObject({ kind: 'already-processed', status: 'succeeded', jobId });
    expect(setup.services.imageModel.editCalls).toHaveLength(1);
    expect(setup.notifications()).toHaveLength(1);
  });

  it('ends in a failed QuotaExhausted manifest, told and recorded, when room does not come back before its deadline', async () => {
    const setup = setUp();
    const { prefix, jobId } = await deferred(setup);

    setup.advance(601_000);
    setup.noRoomFor(60_000);
    const run = await runJob(jobId, setup.worker);

    expect(run.kind).toBe('finished');
    expect(setup.manifest(prefix)).toMatchObject({ status: 'failed', jobId, error: { code: 'QuotaExhausted' } });
    expect(setup.metadata()).toMatchObject({ imagegen_status: 'failed', imagegen_error: 'QuotaExhausted', imagegen_job: jobId });
    expect(setup.notifications()).toHaveLength(1);
    expect(setup.services.imageModel.editCalls).toHaveLength(0);
  });

  it('ends in a failed JobCancelled manifest when its job is cancelled with the link the queued manifest gave', async () => {
    const setup = setUp();
    const { prefix, jobId } = await deferred(setup);

    await cancelJob(jobId, setup.manifest(prefix)?.jobToken, setup.worker);

    expect(setup.manifest(prefix)).toMatchObject({ status: 'failed', jobId, error: { code: 'JobCancelled' } });
    expect(setup.metadata()).toMatchObject({ imagegen_status: 'failed', imagegen_error: 'JobCancelled' });
    expect(setup.notifications()).toHaveLength(1);
  });

  it("is finished by the upload's next delivery when the job-end hook could not write the manifest", async () => {
    const setup = setUp();
    const { prefix, jobId } = await deferred(setup);

    setup.roomAgain();
    setup.services.imageModel.willReturn(PNG);
    setup.failManifestWrites(true);
    expect((await runJob(jobId, setup.worker)).kind).toBe('finished');
    expect(setup.manifest(prefix)?.status).toBe('queued');
    expect(setup.metadata()).not.toHaveProperty('imagegen_status');

    setup.failManifestWrites(false);
    const redelivered = await processInboxUpload(NAME, setup.trigger);

    expect(redelivered).toEqual({ kind: 'finished', edit: expect.objectContaining({ status: 'succeeded', jobId, manifestName: `${prefix}/manifest.json` }) as unknown });
    expect(setup.manifest(prefix)?.status).toBe('succeeded');
    expect(setup.metadata()).toMatchObject({ imagegen_status: 'succeeded', imagegen_job: jobId });
    expect(setup.notifications()).toHaveLength(1);
    expect(setup.services.imageModel.editCalls).toHaveLength(1);
  });

  it('records the outcome on an identical overwrite that arrived while it waited, and leaves a different one to its own edit', async () => {
    const setup = setUp();
    const { prefix, jobId } = await deferred(setup);
    setup.upload();
    const again = await processInboxUpload(NAME, setup.trigger);
    expect(again).toMatchObject({ kind: 'deferred', jobId, manifestName: `${prefix}/manifest.json` });

    setup.roomAgain();
    setup.services.imageModel.willReturn(PNG);
    await runJob(jobId, setup.worker);

    expect(setup.metadata()).toMatchObject({ imagegen_status: 'succeeded', imagegen_job: jobId, imagegen_output: prefix });

    // New bytes under the same name are another upload: the first edit's end does not claim it.
    const other = setUp();
    const first = await deferred(other);
    other.upload(makePng(16, 16, [10, 20, 30]));
    other.roomAgain();
    other.services.imageModel.willReturn(PNG);
    await runJob(first.jobId, other.worker);

    expect(other.manifest(first.prefix)?.status).toBe('succeeded');
    expect(other.metadata()).not.toHaveProperty('imagegen_status');
  });
});
