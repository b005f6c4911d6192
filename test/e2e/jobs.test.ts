import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { setTimeout as sleep } from 'node:timers/promises';

import type { RunningEmulator } from '../../emulator/server';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { readJsonBlob } from '../helpers/blobs';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { pollLikePowerAutomate } from '../helpers/power-automate';

// Async jobs as Power Automate uses them: start with Prefer: respond-async, follow Location without
// the function key, honour Retry-After, stop at the first answer that is not 202.

interface JobSummary {
  id: string;
  status: string;
  statusUrl: string;
  resultUrl: string;
  attempts: number;
  error?: { code: string; message: string };
  result?: ImagesBody;
}

interface ImagesBody {
  id: string;
  data: { url: string; blob_name: string; bytes: number }[];
}

interface ErrorBody {
  error: { code: string; message: string };
}

const storage = () => BlobServiceClient.fromConnectionString(testStorageConnectionString());

function post(host: TestFunctionsHost, body: unknown, headers: Record<string, string> = {}, query = ''): Promise<Response> {
  return fetch(`${host.url}/api/images/generations${query}`, {
    method: 'POST',
    headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

const startAsync = (host: TestFunctionsHost, body: unknown, headers: Record<string, string> = {}) =>
  post(host, body, { prefer: 'respond-async', ...headers });

async function readJobRecord(jobs: ContainerClient, id: string): Promise<Record<string, unknown>> {
  return readJsonBlob<Record<string, unknown>>(jobs.getBlobClient(`jobs/${id}.json`));
}

async function writeJobRecord(jobs: ContainerClient, id: string, record: Record<string, unknown>): Promise<void> {
  const body = JSON.stringify(record);
  await jobs.getBlockBlobClient(`jobs/${id}.json`).upload(body, Buffer.byteLength(body));
}

async function sendJobMessage(queueName: string, jobId: string): Promise<void> {
  const queue = QueueServiceClient.fromConnectionString(testStorageConnectionString()).getQueueClient(queueName);
  await queue.sendMessage(Buffer.from(JSON.stringify({ jobId })).toString('base64'));
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutInMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutInMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('async jobs through the local stack', () => {
  const jobsContainer = uniqueContainerName('e2e-jobs');
  const queueName = uniqueContainerName('e2e-jobs-q');
  const jobs = storage().getContainerClient(jobsContainer);
  let stack: AppStack | undefined;
  let emulator: RunningEmulator;
  let host: TestFunctionsHost;

  beforeAll(async () => {
    stack = await startAppStack({
      settings: { JOBS_CONTAINER: jobsContainer, JOBS_QUEUE: queueName, JOBS_RETRY_AFTER_SECONDS: '1', AZURE_OPENAI_MAX_RETRIES: '0' },
      host: { runQueueTriggers: true, queueTriggerSettings: { maxDequeueCount: 2, visibilityTimeoutInSeconds: 0 } },
    });
    ({ emulator, host } = stack);
  });

  afterAll(() => stack?.close());

  beforeEach(() => emulator.reset());

  it('answers 202 at once and hands the images to a Power-Automate-style poller', async () => {
    const start = await startAsync(host, { prompt: 'a slow sunrise [emulator:slow=2500]', size: '1024x1024' });

    expect(start.status).toBe(202);
    const location = start.headers.get('location') ?? '';
    expect(location).toMatch(new RegExp(`^${host.url}/api/jobs/[0-9a-f-]+\\?token=`));
    expect(start.headers.get('operation-location')).toBe(location);
    expect(start.headers.get('retry-after')).toBe('1');
    const accepted = (await start.clone().json()) as JobSummary;
    // Each link says what it is: resultUrl is the Location, statusUrl the always-200 status route.
    expect(accepted).toMatchObject({ status: 'queued', resultUrl: location, statusUrl: location.replace('?token=', '/status?token=') });

    const { final, polls } = await pollLikePowerAutomate(start);

    expect(final.status).toBe(200);
    expect(polls).toBeGreaterThanOrEqual(2);
    const body = (await final.json()) as ImagesBody;
    expect(body.id).toBe(accepted.id);
    const image = await fetch(body.data[0]?.url ?? '');
    expect(image.status).toBe(200);
    expect(Buffer.from(await image.arrayBuffer()).length).toBe(body.data[0]?.bytes);
    expect(emulator.requests).toHaveLength(1);

    const cancelFinished = await fetch(location, { method: 'DELETE' });
    expect(cancelFinished.status).toBe(409);
    expect(((await cancelFinished.json()) as ErrorBody).error.code).toBe('JobNotCancellable');
  });

  // Logic Apps writes booleans as `True`: the value was validated lowercased but compared as sent,
  // so `async=True` ran synchronously (200 after the whole upstream call) instead of answering 202.
  it.each(['True', 'TRUE', '1'])('treats async=%s as asynchronous: 202 at once, not the synchronous answer', async (value) => {
    const start = await post(host, { prompt: 'a slow boat [emulator:slow=1500]' }, {}, `?async=${value}`);

    expect(start.status).toBe(202);
    expect(((await start.json()) as JobSummary).status).toBe('queued');
  });

  it('treats async=False as synchronous', async () => {
    const response = await post(host, { prompt: 'a quick boat' }, {}, '?async=False');

    expect(response.status).toBe(200);
  });

  it('answers with the result directly when the job ends within ?wait', async () => {
    const response = await post(host, { prompt: 'quick one' }, {}, '?async=true&wait=30');

    expect(response.status).toBe(200);
    expect(((await response.json()) as ImagesBody).data).toHaveLength(1);
  });

  it('ends the poll with the error the synchronous call would give', async () => {
    const { final } = await pollLikePowerAutomate(await startAsync(host, { prompt: 'a cat [emulator:filter-input]' }));

    expect(final.status).toBe(400);
    expect(((await final.json()) as ErrorBody).error.code).toBe('contentFilter');
    expect(emulator.requests).toHaveLength(1);
  });

  it('reports the state with 200 on /status for Do-until loops, with the result at the end', async () => {
    const start = await startAsync(host, { prompt: 'steady [emulator:slow=1500]' });
    const { statusUrl } = (await start.json()) as JobSummary;
    const status = (url: string) => fetch(url);

    const pending = await status(statusUrl);
    expect(pending.status).toBe(200);
    expect(['queued', 'running']).toContain(((await pending.json()) as JobSummary).status);

    let done: JobSummary | undefined;
    await waitFor(async () => {
      done = (await (await status(statusUrl)).json()) as JobSummary;
      return done.status === 'succeeded';
    }, 'the job to succeed');
    expect(done?.result?.data).toHaveLength(1);
  });

  it('refuses bad input at once, without a job or an upstream call', async () => {
    const responses = await Promise.all([
      startAsync(host, { prompt: 'x', size: '3x3' }),
      startAsync(host, { prompt: 'x', response_format: 'b64_json' }),
      post(host, { prompt: 'x' }, {}, '?async=true&wait=500'),
      post(host, { prompt: 'x' }, {}, '?async=maybe'),
      startAsync(host, { prompt: 'x' }, { 'idempotency-key': 'has spaces' }),
    ]);

    expect(responses.map((response) => response.status)).toEqual([400, 400, 400, 400, 400]);
    const codes = await Promise.all(responses.map(async (response) => ((await response.json()) as ErrorBody).error.code));
    expect(codes).toEqual(['InvalidParameter', 'UnsupportedParameter', 'InvalidParameter', 'InvalidParameter', 'InvalidParameter']);
    expect(emulator.requests).toHaveLength(0);
  });

  it('does not let a wrong or missing token read a job', async () => {
    const { resultUrl } = (await (await startAsync(host, { prompt: 'private' })).json()) as JobSummary;
    const url = new URL(resultUrl);
    const wrong = new URL(url);
    wrong.searchParams.set('token', 'guess');
    const missing = new URL(url);
    missing.search = '';

    for (const target of [wrong, missing]) {
      const response = await fetch(target);
      expect(response.status).toBe(404);
      expect(((await response.json()) as ErrorBody).error.code).toBe('JobNotFound');
    }
    // Let the job end here, so its upstream call is not counted by the next test.
    expect((await pollLikePowerAutomate(await fetch(url))).final.status).toBe(200);
  });

  it('replays an Idempotency-Key without a second upstream call, and refuses the key with another body', async () => {
    const key = `key-${Date.now()}`;
    const first = await startAsync(host, { prompt: 'only once', quality: 'low' }, { 'idempotency-key': key });
    const firstJob = (await first.json()) as JobSummary;
    const second = await startAsync(host, { quality: 'low', prompt: 'only once' }, { 'idempotency-key': key });
    const secondJob = (await second.json()) as JobSummary;
    const { final } = await pollLikePowerAutomate(second.status === 202 ? await fetch(secondJob.resultUrl) : second);
    const other = await startAsync(host, { prompt: 'something else' }, { 'idempotency-key': key });

    expect(secondJob.id).toBe(firstJob.id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(final.status).toBe(200);
    expect(other.status).toBe(409);
    expect(((await other.json()) as ErrorBody).error.code).toBe('IdempotencyKeyReused');
    expect(emulator.requests).toHaveLength(1);
  });

  it('replays a synchronous call with an Idempotency-Key from its stored result', async () => {
    const key = `sync-${Date.now()}`;
    const first = await post(host, { prompt: 'sync once' }, { 'idempotency-key': key });
    const again = await post(host, { prompt: 'sync once' }, { 'idempotency-key': key });

    expect([first.status, again.status]).toEqual([200, 200]);
    const [firstBody, againBody] = (await Promise.all([first.json(), again.json()])) as ImagesBody[];
    expect(againBody?.id).toBe(firstBody?.id);
    expect(againBody?.data[0]?.blob_name).toBe(firstBody?.data[0]?.blob_name);
    expect(emulator.requests).toHaveLength(1);
  });

  it('treats a duplicate delivery of a finished job as a no-op', async () => {
    const { final } = await pollLikePowerAutomate(await startAsync(host, { prompt: 'delivered twice' }));
    const { id } = (await final.json()) as ImagesBody;
    const before = await readJobRecord(jobs, id);

    await sendJobMessage(queueName, id);
    await waitFor(() => Promise.resolve(host.logs.filter((line) => line.includes(`Job ${id} succeeded`)).length >= 2), 'the duplicate delivery');

    expect(await readJobRecord(jobs, id)).toEqual(before);
    expect(emulator.requests).toHaveLength(1);
  });

  it('lets two simultaneous deliveries of one job make one upstream call', async () => {
    const start = await startAsync(host, { prompt: 'raced [emulator:slow=1000]' });
    const job = (await start.json()) as JobSummary;
    await sendJobMessage(queueName, job.id);

    const { final } = await pollLikePowerAutomate(await fetch(job.resultUrl));

    expect(final.status).toBe(200);
    expect(emulator.requests).toHaveLength(1);
    expect(await readJobRecord(jobs, job.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('finishes a job whose worker died after the upstream answered, from what that worker stored', async () => {
    const { final } = await pollLikePowerAutomate(await startAsync(host, { prompt: 'survivor' }));
    const { id } = (await final.json()) as ImagesBody;
    // What a worker that crashed right after storing the images leaves behind: a running job whose lease ran out.
    const record = await readJobRecord(jobs, id);
    const crashed: Record<string, unknown> = { ...record, status: 'running', leaseUntil: new Date(Date.now() - 1000).toISOString() };
    delete crashed['finishedAt'];
    await writeJobRecord(jobs, id, crashed);

    await sendJobMessage(queueName, id);
    await waitFor(async () => (await readJobRecord(jobs, id))['status'] === 'succeeded', 'the redelivered job');

    expect(emulator.requests).toHaveLength(1);
    expect(await readJobRecord(jobs, id)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it('puts a throttled job back on the queue for the time the upstream asked, then finishes it', async () => {
    emulator.enqueueFaults({ kind: 'status', status: 429, retryAfterSeconds: 1 });

    const { final } = await pollLikePowerAutomate(await startAsync(host, { prompt: 'busy upstream' }));

    expect(final.status).toBe(200);
    expect(emulator.requests.map((request) => request.status)).toEqual([429, 200]);
  });

  it('fails the job with JobRetriesExhausted when every delivery fails', async () => {
    const { final } = await pollLikePowerAutomate(await startAsync(host, { prompt: 'broken upstream [emulator:500]' }));

    expect(final.status).toBe(502);
    const error = ((await final.json()) as ErrorBody).error;
    expect(error.code).toBe('JobRetriesExhausted');
    expect(error.message).toContain('UpstreamError');
    expect(emulator.requests).toHaveLength(2);
  });

  it('reports a job whose result exists as succeeded, whatever its timers say', async () => {
    const { final } = await pollLikePowerAutomate(await startAsync(host, { prompt: 'forgotten' }));
    const { id } = (await final.json()) as ImagesBody;
    // What a worker that stored the result and died an hour ago leaves behind, its deadline passed since.
    const record = await readJobRecord(jobs, id);
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    await writeJobRecord(jobs, id, { ...record, status: 'running', startedAt: hourAgo, runningSince: hourAgo, leaseUntil: hourAgo, deadlineAt: hourAgo });
    const resultUrl = `${host.url}/api/jobs/${id}?token=${new URL(final.url).searchParams.get('token') ?? ''}`;

    const response = await fetch(resultUrl);

    expect(response.status).toBe(200);
    expect(await readJobRecord(jobs, id)).toMatchObject({ status: 'succeeded' });
  });
});

describe('cancelling a job', () => {
  it('cancels a queued job, which then answers 410; a token opens only its own job', async () => {
    // No queue triggers: the job stays queued.
    const stack = await startAppStack({ settings: { JOBS_QUEUE: uniqueContainerName('e2e-cancel-q') } });
    const { emulator, host } = stack;
    try {
      const job = (await (await startAsync(host, { prompt: 'never mind' })).json()) as JobSummary;

      const cancel = await fetch(job.resultUrl, { method: 'DELETE' });
      const again = await fetch(job.resultUrl, { method: 'DELETE' });
      const poll = await fetch(job.resultUrl);

      expect(cancel.status).toBe(200);
      expect(((await cancel.json()) as JobSummary).status).toBe('cancelled');
      expect(again.status).toBe(200);
      expect(poll.status).toBe(410);
      expect(((await poll.json()) as ErrorBody).error.code).toBe('JobCancelled');

      const finished = await post(host, { prompt: 'done' }, { 'idempotency-key': `cancel-${Date.now()}` });
      const finishedId = ((await finished.json()) as ImagesBody).id;
      const token = new URL(job.resultUrl).searchParams.get('token');
      const refused = await fetch(`${host.url}/api/jobs/${finishedId}?token=${token ?? ''}`, { method: 'DELETE' });
      expect(refused.status).toBe(404); // another job's token opens nothing
      expect(emulator.requests).toHaveLength(1);
    } finally {
      await stack.close();
    }
  });
});
