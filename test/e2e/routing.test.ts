import { BlobServiceClient } from '@azure/storage-blob';

import type { QuotaSpec, RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { readJsonBlob } from '../helpers/blobs';
import type { TestFunctionsHost, TestFunctionsHostOptions } from '../helpers/functions-host';
import { appTestEnv, startTestFunctionsHost } from '../helpers/functions-host';
import { pollLikePowerAutomate } from '../helpers/power-automate';

// Several deployments of one model in two "resources" (two emulators), the app routing between
// them: over HTTP into the app, each emulator recording what reached it.

interface Deployment {
  readonly name: string;
  readonly priority?: number;
  readonly weight?: number;
  readonly quota?: QuotaSpec;
}

interface Routed {
  readonly host: TestFunctionsHost;
  readonly east: RunningEmulator;
  readonly west: RunningEmulator;
}

interface ErrorBody {
  error: { code: string; message: string };
}

const running: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (let stop = running.pop(); stop; stop = running.pop()) await stop();
});

/** East is the primary deployment (AZURE_OPENAI_ENDPOINT + AZURE_OPENAI_DEPLOYMENTS), west an extra backend in another resource. */
async function startRouted(east: Deployment, west: Deployment, options: { minuteMs?: number; settings?: Record<string, string>; host?: Omit<TestFunctionsHostOptions, 'env'> } = {}): Promise<Routed> {
  const emulatorFor = async (deployment: Deployment) => {
    const emulator = await startEmulator({
      deployments: { [deployment.name]: 'gpt-image-1.5' },
      ...(deployment.quota ? { quotas: { [deployment.name]: deployment.quota } } : {}),
      ...(options.minuteMs === undefined ? {} : { minuteMs: options.minuteMs }),
    });
    running.push(() => emulator.close());
    return emulator;
  };
  const [eastEmulator, westEmulator] = [await emulatorFor(east), await emulatorFor(west)];
  const backend = (deployment: Deployment, endpoint?: string) => ({
    ...(endpoint === undefined ? {} : { name: deployment.name, endpoint }),
    deployment: deployment.name,
    model: 'gpt-image-1.5',
    ...(deployment.priority === undefined ? {} : { priority: deployment.priority }),
    ...(deployment.weight === undefined ? {} : { weight: deployment.weight }),
  });
  const host = await startTestFunctionsHost({
    ...options.host,
    env: {
      ...appTestEnv({ emulatorUrl: eastEmulator.url, imagesContainer: uniqueContainerName('e2e-routing') }),
      AZURE_OPENAI_DEPLOYMENTS: `gpt-image-1.5=${east.name}`,
      AZURE_OPENAI_DEFAULT_MODEL: 'gpt-image-1.5',
      AZURE_OPENAI_BACKENDS: JSON.stringify([backend(east), backend(west, westEmulator.url)]),
      AZURE_OPENAI_API_KEYS: JSON.stringify({ [west.name]: 'emulator-key' }),
      ...options.settings,
    },
  });
  running.push(() => host.close());
  return { host, east: eastEmulator, west: westEmulator };
}

function generate(host: TestFunctionsHost, prompt: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${host.url}/api/images/generations`, {
    method: 'POST',
    headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ prompt }),
  });
}

const statuses = (emulator: RunningEmulator) => emulator.requests.map((request) => request.status);

describe('synchronous requests across deployments', () => {
  it('fail over to the other deployment when one answers 429, and send it nothing until its Retry-After', async () => {
    const { host, east, west } = await startRouted({ name: 'east' }, { name: 'west' });
    east.enqueueFaults({ kind: 'status', status: 429, retryAfterSeconds: 30 });

    const first = await generate(host, 'first');
    const second = await generate(host, 'second');

    expect([first.status, second.status]).toEqual([200, 200]);
    expect(statuses(east)).toEqual([429]);
    expect(statuses(west)).toEqual([200, 200]);
  });

  it('answer 429 at once with the earliest Retry-After when every deployment is throttled, without a doomed call', async () => {
    const { host, east, west } = await startRouted({ name: 'east' }, { name: 'west' });
    east.enqueueFaults({ kind: 'status', status: 429, retryAfterSeconds: 20 });
    west.enqueueFaults({ kind: 'status', status: 429, retryAfterSeconds: 7 });

    const throttled = await generate(host, 'busy everywhere');
    const again = await generate(host, 'still busy');

    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('7');
    expect(((await throttled.json()) as ErrorBody).error.code).toBe('TooManyRequests');
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeLessThanOrEqual(7);
    expect([statuses(east), statuses(west)]).toEqual([[429], [429]]);
  });

  it('ask each deployment once per request, however short the Retry-After it answers with', async () => {
    const { host, east, west } = await startRouted({ name: 'east' }, { name: 'west' });

    const response = await generate(host, 'always refused [emulator:429:retry-after-ms=1]');

    expect(response.status).toBe(429);
    expect([statuses(east), statuses(west)]).toEqual([[429], [429]]);
  });

  it('prefer the higher priority, and move to the next once its quota is used up, without a 429', async () => {
    const { host, east, west } = await startRouted({ name: 'east', priority: 1, quota: { imagesPerMinute: 2 } }, { name: 'west', priority: 2 });

    const answers = [await generate(host, 'one'), await generate(host, 'two'), await generate(host, 'three')];

    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect([statuses(east), statuses(west)]).toEqual([[200, 200], [200]]);
  });

  it('spread by weight between deployments of the same priority', async () => {
    const { host, east, west } = await startRouted({ name: 'east', weight: 3 }, { name: 'west', weight: 1 });

    for (let i = 0; i < 8; i++) expect((await generate(host, `image ${i}`)).status).toBe(200);

    expect([east.requests.length, west.requests.length]).toEqual([6, 2]);
  });

  it('retry a failing deployment’s request on the other one', async () => {
    const { host, east, west } = await startRouted({ name: 'east' }, { name: 'west' });
    east.enqueueFaults({ kind: 'status', status: 503 });

    const response = await generate(host, 'resilient');

    expect(response.status).toBe(200);
    expect([statuses(east), statuses(west)]).toEqual([[503], [200]]);
  });
});

describe('jobs across deployments at their quotas', () => {
  it('wait in the queue for room instead of paying for 429s, each calling the upstream once', async () => {
    const jobsContainer = uniqueContainerName('e2e-routing-jobs');
    // A "minute" of three seconds, one image in it per deployment, and one job at a time.
    const { host, east, west } = await startRouted(
      { name: 'east', quota: { imagesPerMinute: 1 } },
      { name: 'west', quota: { imagesPerMinute: 1 } },
      {
        minuteMs: 3_000,
        settings: { JOBS_CONTAINER: jobsContainer, JOBS_QUEUE: uniqueContainerName('e2e-routing-q'), JOBS_RETRY_AFTER_SECONDS: '1' },
        host: { runQueueTriggers: true, queueTriggerSettings: { batchSize: 1 } },
      },
    );

    const starts = await Promise.all(['a', 'b', 'c', 'd'].map((name) => generate(host, `job ${name}`, { prefer: 'respond-async' })));
    const finals = await Promise.all(starts.map(async (start) => (await pollLikePowerAutomate(start)).final));

    expect(finals.map((final) => final.status)).toEqual([200, 200, 200, 200]);
    expect([...statuses(east), ...statuses(west)]).toEqual([200, 200, 200, 200]);
    const jobs = BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(jobsContainer);
    const records = await Promise.all(
      starts.map(async (start) => readJsonBlob<{ upstreamCalls: number; lastError?: { code: string } }>(jobs.getBlobClient(`jobs/${new URL(start.headers.get('location') ?? '').pathname.split('/').pop() ?? ''}.json`))),
    );
    expect(records.map((record) => record.upstreamCalls)).toEqual([1, 1, 1, 1]);
    // At most two fit in the first window: the others waited, and say why.
    expect(records.filter((record) => record.lastError?.code === 'TooManyRequests').length).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
