import { UpstreamThrottledError } from '../../src/domain/errors';
import type { JobDependencies, JobRecord } from '../../src/domain/image-jobs';
import { readJob, readJobWithToken, runJob, submitJob } from '../../src/domain/image-jobs';
import type { CallOptions, ImageGenerationRequest, ImageGenerationResult, ImageModelClient, ImageSink, UpstreamCapacity } from '../../src/domain/ports';
import { jobDependencies } from '../../src/http/jobs';
import { makeFakeServices } from '../fakes/services';
import { makePng } from '../helpers/images';

// The job lifecycle's decisions with the clock in the test's hand: in-memory storage and queue, a
// scripted image model that pays (counts) each request the way the real client does.

type Step = (options: CallOptions) => Promise<void>;

/** Answers each call with a PNG after running its step; calls `beforeUpstreamRequest` first, as the real client does. */
class ScriptedModel implements ImageModelClient {
  readonly steps: Step[] = [];
  calls = 0;

  async generateImages(_request: ImageGenerationRequest, sink: ImageSink, options: CallOptions = {}): Promise<ImageGenerationResult> {
    await options.beforeUpstreamRequest?.();
    this.calls += 1;
    await this.steps.shift()?.(options);
    const writer = sink.openImage(0);
    await writer.write(makePng(8, 8));
    await writer.end();
    return { created: 1, images: [{}] };
  }

  editImages(): Promise<ImageGenerationResult> {
    return Promise.reject(new Error('not used'));
  }
}

function setUp(env: Record<string, string> = {}) {
  let now = Date.parse('2026-11-30T12:00:00Z');
  const services = makeFakeServices({ JOBS_DEADLINE_SECONDS: '600', JOBS_MAX_RUN_MINUTES: '15', JOBS_LEASE_SECONDS: '60', ...env });
  const model = new ScriptedModel();
  let unavailable: ReturnType<UpstreamCapacity['whenAvailable']>;
  const dependencies: JobDependencies = {
    ...jobDependencies({ ...services, imageModel: model }),
    clock: { now: () => new Date(now) },
    upstreamCapacity: { whenAvailable: () => unavailable },
  };
  return {
    services,
    model,
    dependencies,
    advance: (ms: number) => (now += ms),
    now: () => now,
    noRoomUntil: (at: number | undefined) => (unavailable = at === undefined ? undefined : { at, reason: 'throttled' }),
  };
}

async function submitted(dependencies: JobDependencies): Promise<{ id: string; token: string }> {
  const { job, accessToken } = await submitJob({ operation: 'generate', command: { prompt: 'a fox', model: 'gpt-image-1.5', options: {}, caller: { id: 'user:ana', source: 'user' } } }, { enqueue: true }, dependencies);
  return { id: job.id, token: accessToken };
}

async function record(dependencies: JobDependencies, id: string): Promise<JobRecord> {
  const found = await readJob(id, dependencies);
  if (!found) throw new Error(`no job ${id}`);
  return found.value;
}

describe('the job lifecycle', () => {
  it('waits in the queue while the upstream has no room: no attempt, no call, a message for when there will be', async () => {
    const { dependencies, services, model, now, noRoomUntil } = setUp();
    const { id } = await submitted(dependencies);
    noRoomUntil(now() + 42_000);

    const outcome = await runJob(id, dependencies);

    expect(outcome).toEqual({ kind: 'deferred', retryInSeconds: 42 });
    expect(await record(dependencies, id)).toMatchObject({ status: 'queued', attempts: 0, upstreamCalls: 0, lastError: { code: 'TooManyRequests' } });
    expect(model.calls).toBe(0);
    expect(services.jobQueue.sent.at(-1)).toEqual({ jobId: id, delayInSeconds: 42 });
  });

  it('never waits past the deadline, and ends there as QuotaExhausted with what it tried', async () => {
    const { dependencies, model, now, advance, noRoomUntil } = setUp();
    const { id, token } = await submitted(dependencies);
    model.steps.push(() => Promise.reject(new UpstreamThrottledError('busy', 30)));
    await runJob(id, dependencies);
    noRoomUntil(now() + 3_600_000);

    const waiting = await runJob(id, dependencies);
    advance(600_000);
    const polled = await readJobWithToken(id, token, dependencies);

    expect(waiting).toEqual({ kind: 'deferred', retryInSeconds: 600 });
    expect(polled.value).toMatchObject({
      status: 'failed',
      attempts: 1,
      upstreamCalls: 1,
      error: { status: 429, code: 'QuotaExhausted', details: { attempts: 1, upstreamCalls: 1, lastError: { code: 'TooManyRequests' } } },
    });
    expect(model.calls).toBe(1);
  });

  it('counts each upstream request in the record before it is sent, and the time spent running but not waiting', async () => {
    const { dependencies, model, advance, noRoomUntil } = setUp();
    const { id } = await submitted(dependencies);
    model.steps.push(
      () => {
        advance(5_000);
        return Promise.reject(new UpstreamThrottledError('busy', 1));
      },
      () => {
        advance(7_000);
        return Promise.resolve();
      },
    );

    await runJob(id, dependencies);
    const afterThrottle = await record(dependencies, id);
    advance(300_000);
    noRoomUntil(undefined);
    const outcome = await runJob(id, dependencies);

    expect(afterThrottle).toMatchObject({ status: 'queued', upstreamCalls: 1, runMs: 5_000 });
    expect(outcome.kind).toBe('finished');
    expect(await record(dependencies, id)).toMatchObject({ status: 'succeeded', attempts: 2, upstreamCalls: 2, runMs: 12_000 });
  });

  it('ends a job that ran past its run window as JobTimedOut, however long it waited before', async () => {
    const { dependencies, model, advance } = setUp({ JOBS_MAX_RUN_MINUTES: '1', JOBS_DEADLINE_SECONDS: '86400' });
    const { id } = await submitted(dependencies);
    advance(3_600_000);
    model.steps.push(() => {
      advance(61_000);
      return Promise.reject(new UpstreamThrottledError('busy', 1));
    });

    await runJob(id, dependencies);
    const outcome = await runJob(id, dependencies);

    expect(outcome).toMatchObject({ kind: 'finished', job: { status: 'failed', error: { status: 504, code: 'JobTimedOut', details: { attempts: 1, upstreamCalls: 1 } } } });
  });

  it('succeeds when its work is done even though a timer ended it during the call', async () => {
    const { dependencies, model, advance } = setUp();
    const { id } = await submitted(dependencies);
    // While the call runs, the lease is lost and a poll ends the job (as a stalled renewal would allow).
    model.steps.push(async () => {
      advance(3_600_000);
      const found = await readJob(id, dependencies);
      if (!found) throw new Error('no job');
      await dependencies.documents.replace(`jobs/${id}.json`, { ...found.value, status: 'failed', error: { status: 504, code: 'JobTimedOut', message: 'late' } }, found.etag);
    });

    const outcome = await runJob(id, dependencies);

    expect(outcome).toMatchObject({ kind: 'finished', job: { status: 'succeeded' } });
    expect(await record(dependencies, id)).toMatchObject({ status: 'succeeded', upstreamCalls: 1 });
    expect((await record(dependencies, id)).error).toBeUndefined();
  });

  it('leaves a job with a live lease to its worker, and a dead worker’s job to whoever comes after the lease', async () => {
    const { dependencies, model, advance } = setUp();
    const { id, token } = await submitted(dependencies);
    // The worker dies in the middle of the call: its claim and its count of the call stay behind.
    let die: (reason: Error) => void = () => undefined;
    model.steps.push(() => new Promise((_resolve, reject) => (die = reject)));
    const dead = runJob(id, dependencies);
    await new Promise((resolve) => setImmediate(resolve));
    const claimed = await record(dependencies, id);

    const duplicate = await runJob(id, dependencies);
    advance(30_000);
    const polled = await readJobWithToken(id, token, dependencies);
    advance(31_000);
    const takenOver = await runJob(id, dependencies, { watchAttempt: 1 });

    expect(claimed).toMatchObject({ status: 'running', attempts: 1, upstreamCalls: 1 });
    expect(duplicate).toEqual({ kind: 'busy', retryInSeconds: 60 });
    expect(polled.value.status).toBe('running');
    expect(takenOver).toMatchObject({ kind: 'finished', job: { status: 'succeeded', attempts: 2, upstreamCalls: 2 } });
    // Were the first worker only stalled, its late answer changes nothing.
    die(new Error('the process is gone'));
    expect(await dead).toMatchObject({ kind: 'finished', job: { status: 'succeeded', attempts: 2 } });
  });

  it('sends a watchdog with each attempt, which stops once its attempt is over', async () => {
    const { dependencies, services } = setUp();
    const { id } = await submitted(dependencies);

    await runJob(id, dependencies);

    expect(services.jobQueue.sent).toEqual([
      { jobId: id, delayInSeconds: undefined },
      { jobId: id, delayInSeconds: 61, watchAttempt: 1 },
    ]);
    expect(await runJob(id, dependencies, { watchAttempt: 1 })).toMatchObject({ kind: 'finished' });
  });

  it('lets a watchdog whose attempt ended give way to the message that queued the job again', async () => {
    const { dependencies, model } = setUp();
    const { id } = await submitted(dependencies);
    model.steps.push(() => Promise.reject(new UpstreamThrottledError('busy', 5)));

    await runJob(id, dependencies);

    expect(await runJob(id, dependencies, { watchAttempt: 1 })).toEqual({ kind: 'superseded' });
  });
});
