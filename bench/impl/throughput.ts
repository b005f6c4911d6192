/**
 * The throughput scenario, in a worker process: N async jobs submitted at once and drained by queue
 * workers against deployments at their quotas, as the local host runs them (the queue runner with
 * host.json's batch size, Azurite, the emulator). Two ways of running the jobs:
 *
 * - `routed` / `single`: the app itself: POST with `Prefer: respond-async` to the compiled app served
 *   by the local HTTP host, and its `jobs-worker` on the queue; K deployments, or one.
 * - `today`: main's retry path before issue 14, re-enacted from the same pieces: the undici client with
 *   its own retries (AZURE_OPENAI_MAX_RETRIES=2, honouring retry-after up to 30 s), the same store, and
 *   on a 429 that outlasts them the job goes back to the queue for the Retry-After, as runJob did.
 *
 * Upstream figures come from the emulator's own records, so all three are counted the same way.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { z } from 'zod';

import { startFunctionsHost } from '../../local-host/http-host';
import type { FunctionRegistration } from '../../local-host/registry';
import { captureFunctionApp, installFunctionsCore } from '../../local-host/registry';
import { readQueueTriggerSettings, startQueueRunner } from '../../local-host/queue-runner';
import { AzureOpenAIImagesClient } from '../../src/adapters/azure-openai-images-client';
import { BlobImageStore } from '../../src/adapters/blob-image-store';
import { SharedKeySasSigner } from '../../src/adapters/blob-sas';
import { StorageJobQueue } from '../../src/adapters/storage-job-queue';
import { StorageUsageRetryQueue } from '../../src/adapters/storage-usage-retry-queue';
import { TableDocumentStore, TableUsageStore } from '../../src/adapters/table-usage-store';
import { defaultCaller } from '../../src/domain/callers';
import { AppError, UpstreamThrottledError } from '../../src/domain/errors';
import { generateImages } from '../../src/domain/generate-images';
import { createMetering } from '../../src/domain/metering';
import { DEFAULT_PRICE_TABLE } from '../../src/domain/pricing';
import type { ThroughputArgs, ThroughputResult } from '../protocol';

const PROJECT_ROOT = resolve(__dirname, '..', '..', '..');
const MODEL = 'gpt-image-1.5';
const jobMessage = z.object({ jobId: z.string() });

interface EmulatorRecord {
  deployment?: string;
  status: number;
  receivedAt: number;
  headers: Record<string, string>;
}

export async function measureThroughput(args: ThroughputArgs): Promise<ThroughputResult> {
  const container = BlobServiceClient.fromConnectionString(args.storage.connectionString).getContainerClient(args.storage.container);
  await container.createIfNotExists();
  await BlobServiceClient.fromConnectionString(args.storage.connectionString).getContainerClient(args.storage.jobsContainer).createIfNotExists();
  await QueueServiceClient.fromConnectionString(args.storage.connectionString).getQueueClient(args.storage.queue).createIfNotExists();

  const run = args.implementation === 'today' ? await runToday(args) : await runApp(args);
  // The last answers may still be on their way into the emulator's records.
  await sleep(200);
  const records = (await (await fetch(`${args.emulatorUrl}/_emulator/requests`)).json()) as EmulatorRecord[];
  const ours = records.filter((record) => record.deployment !== undefined && args.deployments.includes(record.deployment));
  const callsPerJob = new Map<string, { calls: number; paid: number }>();
  for (const record of ours) {
    const jobId = record.headers['x-ms-client-request-id'] ?? 'unknown';
    const counts = callsPerJob.get(jobId) ?? { calls: 0, paid: 0 };
    counts.calls += 1;
    if (record.status === 200) counts.paid += 1;
    callsPerJob.set(jobId, counts);
  }
  const accepted = ours.filter((record) => record.status === 200).map((record) => record.receivedAt).sort((a, b) => a - b);
  const perJob = [...callsPerJob.values()];
  return {
    scenario: 'throughput',
    implementation: args.implementation,
    deployments: args.deployments.length,
    jobs: args.jobs,
    succeeded: run.succeeded,
    failed: run.failed,
    failureCodes: run.failureCodes,
    drainMs: run.drainMs,
    upstreamCalls: ours.length,
    upstream429: ours.filter((record) => record.status === 429).length,
    upstreamOther: ours.filter((record) => record.status !== 200 && record.status !== 429).length,
    acceptedAt: accepted.map((at) => at - (accepted[0] ?? 0)),
    jobsCallingTwice: perJob.filter((counts) => counts.calls > 1).length,
    jobsPayingTwice: perJob.filter((counts) => counts.paid > 1).length,
    upstreamCallsRecorded: run.upstreamCallsRecorded,
  };
}

interface RunSummary {
  readonly succeeded: number;
  readonly failed: number;
  readonly failureCodes: Record<string, number>;
  readonly drainMs: number;
  /** What the job records counted (the app only). */
  readonly upstreamCallsRecorded?: number | undefined;
}

/** The app's own job path: HTTP in, the queue worker out, K deployments or one. */
async function runApp(args: ThroughputArgs): Promise<RunSummary> {
  const [primary, ...extra] = args.deployments;
  if (primary === undefined) throw new Error('The throughput scenario needs at least one deployment.');
  Object.assign(process.env, {
    AZURE_OPENAI_ENDPOINT: args.emulatorUrl,
    AZURE_OPENAI_AUTH: 'key',
    AZURE_OPENAI_API_KEY: args.apiKey,
    AZURE_OPENAI_API_VERSION: args.apiVersion,
    AZURE_OPENAI_DEPLOYMENTS: `${MODEL}=${primary}`,
    ...(extra.length > 0 ? { AZURE_OPENAI_BACKENDS: JSON.stringify(extra.map((deployment) => ({ deployment, model: MODEL }))) } : {}),
    ImagesStorage: args.storage.connectionString,
    AzureWebJobsStorage: args.storage.connectionString,
    IMAGES_CONTAINER: args.storage.container,
    JOBS_CONTAINER: args.storage.jobsContainer,
    JOBS_QUEUE: args.storage.queue,
    JOBS_DEADLINE_SECONDS: '3600',
  });
  installFunctionsCore();
  const load = createRequire(__filename);
  const functionsDir = join(PROJECT_ROOT, 'dist', 'src', 'functions');
  const app = captureFunctionApp(() => {
    for (const file of readdirSync(functionsDir).filter((name) => /^(images-generate|jobs-worker)\.js$/.test(name))) load(join(functionsDir, file));
  });

  const finished = new Map<string, string>();
  const log = (line: string): void => {
    const match = /Job ([0-9a-f-]{36}) (succeeded|failed|cancelled)\./.exec(line);
    if (match?.[1] && match[2]) finished.set(match[1], match[2]);
  };
  const host = await startFunctionsHost({ registrations: app.functions, hooks: app.hooks, log: () => undefined });
  // Job links name the public host; the app reads its settings on the first request, after this.
  process.env['PUBLIC_BASE_URL'] = host.url;
  const runner = await startQueueRunner({
    registrations: app.functions,
    settings: process.env,
    triggerSettings: readQueueTriggerSettings(PROJECT_ROOT),
    log,
    maxPollIntervalInMs: 200,
  });
  try {
    const startedAt = performance.now();
    const accepted = await Promise.all(
      Array.from({ length: args.jobs }, async () => {
        const response = await fetch(`${host.url}/api/images/generations`, {
          method: 'POST',
          headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', prefer: 'respond-async' },
          body: JSON.stringify({ prompt: args.prompt, size: '1024x1024', quality: 'low' }),
        });
        if (response.status !== 202) throw new Error(`Submitting a job answered ${response.status}: ${await response.text()}`);
        return ((await response.json()) as { id: string }).id;
      }),
    );
    const ids = new Set(accepted);
    while ([...ids].some((id) => !finished.has(id))) {
      if (performance.now() - startedAt > args.timeoutInMs) throw new Error(`Only ${finished.size} of ${ids.size} jobs finished within ${args.timeoutInMs} ms.`);
      await sleep(50);
    }
    const drainMs = performance.now() - startedAt;
    const jobs = BlobServiceClient.fromConnectionString(args.storage.connectionString).getContainerClient(args.storage.jobsContainer);
    const records = await Promise.all(
      [...ids].map(async (id) => JSON.parse((await jobs.getBlobClient(`jobs/${id}.json`).downloadToBuffer()).toString('utf8')) as { status: string; upstreamCalls?: number; error?: { code: string } }),
    );
    const failureCodes: Record<string, number> = {};
    for (const record of records) if (record.status !== 'succeeded') failureCodes[record.error?.code ?? record.status] = (failureCodes[record.error?.code ?? record.status] ?? 0) + 1;
    return {
      succeeded: records.filter((record) => record.status === 'succeeded').length,
      failed: records.filter((record) => record.status !== 'succeeded').length,
      failureCodes,
      drainMs,
      upstreamCallsRecorded: records.reduce((sum, record) => sum + (record.upstreamCalls ?? 0), 0),
    };
  } finally {
    await runner.close();
    await host.close();
  }
}

/** Main's retry path, re-enacted: the client retries a 429 itself, then the job goes back to the queue for the Retry-After. */
async function runToday(args: ThroughputArgs): Promise<RunSummary> {
  const deployment = args.deployments[0];
  if (deployment === undefined) throw new Error('The throughput scenario needs a deployment.');
  const service = BlobServiceClient.fromConnectionString(args.storage.connectionString);
  const credential = service.credential;
  if (!(credential instanceof StorageSharedKeyCredential)) throw new Error('The bench storage needs an account key.');
  const clock = { now: () => new Date() };
  const ids = { newId: () => randomUUID() };
  // Metered like the app's own jobs (a usage row per call), so that the runs differ only in retries.
  const usageTable = TableClient.fromConnectionString(args.storage.connectionString, 'benchusage', { allowInsecureConnection: true });
  const usageStore = new TableUsageStore(usageTable);
  const usageRetryQueue = QueueServiceClient.fromConnectionString(args.storage.connectionString).getQueueClient('bench-usage-retry');
  await usageRetryQueue.createIfNotExists();
  const metering = createMetering({
    usageStore,
    retryQueue: new StorageUsageRetryQueue(usageRetryQueue),
    budgets: { rules: [], counters: new TableDocumentStore(usageTable, usageStore), now: () => clock.now(), reservationTtlInMs: 600_000, currency: 'USD' },
    prices: DEFAULT_PRICE_TABLE,
    telemetry: { trackImageRequest: () => undefined },
    clock,
    ids,
    log: console,
  });
  const dependencies = {
    imageModel: new AzureOpenAIImagesClient({
      endpoint: args.emulatorUrl,
      apiFlavor: 'deployment',
      apiVersion: args.apiVersion,
      auth: { mode: 'key', apiKey: args.apiKey },
      timeoutInMs: 180_000,
      maxRetries: 2,
    }),
    imageStore: new BlobImageStore({
      container: service.getContainerClient(args.storage.container),
      sasSigner: new SharedKeySasSigner(credential, service.url, clock),
      sasLifetimeInMs: 3_600_000,
      clock,
    }),
    clock,
    ids,
    deploymentFor: () => deployment,
    metering,
  };
  const queueClient = QueueServiceClient.fromConnectionString(args.storage.connectionString).getQueueClient(args.storage.queue);
  const queue = new StorageJobQueue(queueClient);
  const outcomes = new Map<string, string>();
  const registration: FunctionRegistration = {
    name: 'todays-jobs-worker',
    bindings: { trigger: { type: 'queueTrigger', direction: 'in', queueName: args.storage.queue, connection: 'ImagesStorage' } },
    handler: async (message: unknown) => {
      const { jobId } = jobMessage.parse(message);
      try {
        await generateImages(
          { prompt: args.prompt, model: MODEL, options: { size: '1024x1024', quality: 'low' }, caller: defaultCaller('bench'), includeBase64: false },
          dependencies,
          { requestId: jobId },
        );
        outcomes.set(jobId, 'succeeded');
      } catch (error: unknown) {
        if (error instanceof UpstreamThrottledError) {
          await queue.enqueue(jobId, { delayInSeconds: Math.max(error.retryAfterSeconds ?? 1, 1) });
          return;
        }
        if (!(error instanceof AppError) || error.status >= 500) throw error;
        outcomes.set(jobId, error.code);
      }
    },
  };
  const runner = await startQueueRunner({
    registrations: [registration],
    settings: { ImagesStorage: args.storage.connectionString },
    triggerSettings: readQueueTriggerSettings(PROJECT_ROOT),
    log: () => undefined,
    maxPollIntervalInMs: 200,
  });
  try {
    const startedAt = performance.now();
    const ids = Array.from({ length: args.jobs }, () => randomUUID());
    await Promise.all(ids.map((id) => queue.enqueue(id)));
    while (outcomes.size < ids.length) {
      if (performance.now() - startedAt > args.timeoutInMs) throw new Error(`Only ${outcomes.size} of ${ids.length} jobs finished within ${args.timeoutInMs} ms.`);
      await sleep(50);
    }
    const drainMs = performance.now() - startedAt;
    const failureCodes: Record<string, number> = {};
    for (const outcome of outcomes.values()) if (outcome !== 'succeeded') failureCodes[outcome] = (failureCodes[outcome] ?? 0) + 1;
    const succeeded = [...outcomes.values()].filter((outcome) => outcome === 'succeeded').length;
    return { succeeded, failed: ids.length - succeeded, failureCodes, drainMs };
  } finally {
    await runner.close();
  }
}
