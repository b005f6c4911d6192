import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { setTimeout as sleep } from 'node:timers/promises';

import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { readJsonBlob } from '../helpers/blobs';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { appTestEnv, startTestFunctionsHost } from '../helpers/functions-host';
import type { WorkerProcess } from '../helpers/worker-process';
import { startWorkerProcess } from '../helpers/worker-process';

// The three defects a reliability run found in the jobs' lifecycle, each through the real path:
// the app over HTTP, the queue worker against Azurite, the emulator upstream.

interface JobRecord {
  id: string;
  status: string;
  attempts: number;
  upstreamCalls?: number;
  startedAt?: string;
  leaseUntil?: string;
  lastError?: { code: string };
}

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const storage = () => BlobServiceClient.fromConnectionString(testStorageConnectionString());

function startAsync(host: TestFunctionsHost, body: unknown): Promise<Response> {
  return fetch(`${host.url}/api/images/generations`, {
    method: 'POST',
    headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify(body),
  });
}

async function readJob(jobs: ContainerClient, id: string): Promise<JobRecord> {
  return readJsonBlob<JobRecord>(jobs.getBlobClient(`jobs/${id}.json`));
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutInMs = 30_000, state?: () => Promise<unknown>): Promise<void> {
  const until = Date.now() + timeoutInMs;
  while (!(await check())) {
    if (Date.now() > until) {
      throw new Error(`timed out after ${timeoutInMs} ms waiting for ${what}${state ? `; state then: ${JSON.stringify(await state())}` : ''}`);
    }
    await sleep(100);
  }
}

/** Polls the job's Location (honouring Retry-After, at most `timeoutInMs`) and returns the first answer that is not 202, or the last 202. */
async function pollUntilDone(location: string, timeoutInMs: number): Promise<Response> {
  const until = Date.now() + timeoutInMs;
  for (;;) {
    const response = await fetch(location);
    if (response.status !== 202 || Date.now() > until) return response;
    await response.body?.cancel();
    await sleep(Number(response.headers.get('retry-after') ?? '1') * 1000);
  }
}

describe('jobs under throttling and timers', () => {
  const jobsContainer = uniqueContainerName('e2e-lifecycle-jobs');
  const jobs = storage().getContainerClient(jobsContainer);
  let stack: AppStack | undefined;

  // Each test has its own emulator and queue: a job that never ends must not reach the next test's upstream.
  async function start(): Promise<AppStack> {
    stack = await startAppStack({
      settings: {
        JOBS_CONTAINER: jobsContainer,
        JOBS_QUEUE: uniqueContainerName('e2e-lifecycle-q'),
        JOBS_RETRY_AFTER_SECONDS: '1',
        JOBS_MAX_RUN_MINUTES: '1',
        JOBS_DEADLINE_SECONDS: '8',
        AZURE_OPENAI_MAX_RETRIES: '0',
      },
      host: { runQueueTriggers: true, queueTriggerSettings: { visibilityTimeoutInSeconds: 0 } },
    });
    return stack;
  }

  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('ends a job the upstream always throttles with QuotaExhausted at its deadline, having paid only a few calls', async () => {
    const { emulator, host } = await start();
    const response = await startAsync(host, { prompt: 'always throttled [emulator:429]' });
    const { id } = (await response.clone().json()) as JobRecord;

    const final = await pollUntilDone(response.headers.get('location') ?? '', 40_000);

    const record = await readJob(jobs, id);
    const calls = emulator.requests.length;
    // An 8 s deadline and a 1 s Retry-After allow about eight calls, not one per delivery forever.
    expect(calls).toBeLessThanOrEqual(10);
    expect({ status: final.status, jobStatus: record.status }).toEqual({ status: 429, jobStatus: 'failed' });
    const error = ((await final.json()) as ErrorBody).error;
    expect(error.code).toBe('QuotaExhausted');
    expect(error.details).toMatchObject({ upstreamCalls: calls, attempts: record.attempts });
    expect(record.upstreamCalls).toBe(calls);
  }, 60_000);

  it('keeps the result of a call that outlived the run window once waiting is counted, instead of reporting JobTimedOut', async () => {
    const { emulator, host } = await start();
    emulator.enqueueFaults({ kind: 'status', status: 429, retryAfterSeconds: 4 });
    const response = await startAsync(host, { prompt: 'worth the wait [emulator:slow=3000]' });
    const location = response.headers.get('location') ?? '';
    const { id } = (await response.json()) as JobRecord;
    await waitFor(async () => (await readJob(jobs, id)).lastError?.code === 'TooManyRequests', 'the first delivery to be throttled');
    // The job waited two minutes after the throttle (written here rather than waited for): waiting is not running.
    const blob = jobs.getBlockBlobClient(`jobs/${id}.json`);
    const properties = await blob.getProperties();
    const waited = { ...(await readJob(jobs, id)), startedAt: new Date(Date.now() - 120_000).toISOString() };
    const text = JSON.stringify(waited);
    await blob.upload(text, Buffer.byteLength(text), { conditions: { ifMatch: properties.etag ?? '' } });

    await waitFor(() => emulator.requests.length === 2 && emulator.requests[1]?.status === 0, 'the second upstream call to be in flight');
    const midCall = await fetch(location);
    const midCallStatus = midCall.status;
    await midCall.body?.cancel();
    await waitFor(() => emulator.requests[1]?.status === 200, 'the upstream to answer');
    const final = await pollUntilDone(location, 20_000);

    expect({ midCallStatus, finalStatus: final.status }).toEqual({ midCallStatus: 202, finalStatus: 200 });
    expect((await readJob(jobs, id)).status).toBe('succeeded');
  }, 60_000);
});

describe('a worker that dies in the middle of the upstream call', () => {
  const jobsContainer = uniqueContainerName('e2e-crash-jobs');
  const queueName = uniqueContainerName('e2e-crash-q');
  const jobs = storage().getContainerClient(jobsContainer);
  let emulator: RunningEmulator | undefined;
  let host: TestFunctionsHost | undefined;
  const workers: WorkerProcess[] = [];

  afterAll(async () => {
    await Promise.allSettled(workers.map((worker) => worker.stop()));
    await host?.close();
    await emulator?.close();
  });

  it('is replaced within its short lease, and the job record shows that the upstream was paid twice', async () => {
    emulator = await startEmulator();
    const settings = {
      ...appTestEnv({ emulatorUrl: emulator.url, imagesContainer: uniqueContainerName('e2e-crash-images') }),
      JOBS_CONTAINER: jobsContainer,
      JOBS_QUEUE: queueName,
      JOBS_RETRY_AFTER_SECONDS: '1',
      JOBS_LEASE_SECONDS: '3',
    };
    // This host only takes requests; the jobs run in worker processes.
    host = await startTestFunctionsHost({ env: settings });
    workers.push(await startWorkerProcess(settings));
    emulator.enqueueFaults({ kind: 'timeout' });

    const start = await startAsync(host, { prompt: 'interrupted' });
    const { id } = (await start.json()) as JobRecord;
    await waitFor(() => emulator?.requests[0]?.status === 0, 'the first upstream call to be in flight');
    await waitFor(async () => (await readJob(jobs, id)).status === 'running', 'the job to run');
    await workers[0]?.crash();
    workers.push(await startWorkerProcess(settings));

    await waitFor(
      async () => (await readJob(jobs, id)).status === 'succeeded',
      'another worker to take the job over and finish it',
      40_000,
      async () => ({ now: new Date().toISOString(), job: await readJob(jobs, id) }),
    );

    const record = await readJob(jobs, id);
    expect(record).toMatchObject({ status: 'succeeded', attempts: 2, upstreamCalls: 2 });
    expect(emulator.requests).toHaveLength(2);
    const status = (await (await fetch(start.headers.get('location')?.replace('?token=', '/status?token=') ?? '')).json()) as JobRecord;
    expect(status).toMatchObject({ status: 'succeeded', attempts: 2, upstreamCalls: 2 });
  }, 120_000);
});
