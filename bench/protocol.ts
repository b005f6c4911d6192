/**
 * What the orchestrator (`run.ts`) asks a worker process to measure, and what the worker answers on its
 * one JSON line. Both directions are parsed with these schemas: the other side is another process.
 */
import { z } from 'zod';

import { IMPORT_SUBJECTS } from './import-subjects';

export const IMPLEMENTATIONS = ['raw', 'ours', 'baseline'] as const;
export type ImplementationName = (typeof IMPLEMENTATIONS)[number];
const implementation = z.enum(IMPLEMENTATIONS);

export { IMPORT_SUBJECTS } from './import-subjects';
export type { ImportSubject } from './import-subjects';

const upstreamSettings = z.object({
  emulatorUrl: z.url(),
  apiKey: z.string().min(1),
  deployment: z.string().min(1),
  apiVersion: z.string().min(1),
  prompt: z.string().min(1),
  size: z.string().min(1),
});
export type UpstreamSettings = z.infer<typeof upstreamSettings>;

const storageSettings = z.object({
  connectionString: z.string().min(1),
  container: z.string().min(3),
  /** The null blob endpoint: uploads are accepted and dropped, so links lead nowhere. */
  discardsUploads: z.boolean(),
});
export type StorageSettings = z.infer<typeof storageSettings>;

const count = z.number().int().nonnegative();
const target = { implementation, n: z.number().int().min(1).max(10), upstream: upstreamSettings, storage: storageSettings };

export const THROUGHPUT_IMPLEMENTATIONS = ['today', 'single', 'routed'] as const;
export type ThroughputImplementation = (typeof THROUGHPUT_IMPLEMENTATIONS)[number];

const throughputArgs = z.object({
  scenario: z.literal('throughput'),
  implementation: z.enum(THROUGHPUT_IMPLEMENTATIONS),
  emulatorUrl: z.url(),
  apiKey: z.string().min(1),
  apiVersion: z.string().min(1),
  /** The deployments this run may use, each with its own quota; the first is the primary. */
  deployments: z.array(z.string().min(1)).min(1),
  prompt: z.string().min(1),
  jobs: z.number().int().min(1),
  timeoutInMs: z.number().int().min(1),
  storage: z.object({ connectionString: z.string().min(1), container: z.string().min(3), jobsContainer: z.string().min(3), queue: z.string().min(3) }),
});
export type ThroughputArgs = z.infer<typeof throughputArgs>;

export const workerArgsSchema = z.discriminatedUnion('scenario', [
  throughputArgs,
  z.object({ scenario: z.literal('latency'), ...target, warmup: count, iterations: z.number().int().min(1) }),
  /** `warmup` requests first, in the same process; the one after them is measured. */
  z.object({ scenario: z.literal('memory'), ...target, warmup: count }),
  z.object({ scenario: z.literal('concurrency'), ...target, concurrency: z.number().int().min(1) }),
  z.object({ scenario: z.literal('import'), subject: z.enum(IMPORT_SUBJECTS) }),
]);
export type WorkerArgs = z.infer<typeof workerArgsSchema>;
export type TargetArgs = Extract<WorkerArgs, { implementation: ImplementationName }>;

const memorySample = z.object({ rss: count, heapTotal: count, heapUsed: count, external: count, arrayBuffers: count });
export type MemorySample = z.infer<typeof memorySample>;

const failures = z.object({ count, codes: z.record(z.string(), count) });
export type Failures = z.infer<typeof failures>;

const throughputResult = z.object({
  scenario: z.literal('throughput'),
  implementation: z.enum(THROUGHPUT_IMPLEMENTATIONS),
  deployments: count,
  jobs: count,
  succeeded: count,
  failed: count,
  failureCodes: z.record(z.string(), count),
  /** From the first submission to the last job's end. */
  drainMs: z.number(),
  upstreamCalls: count,
  upstream429: count,
  /** Answers other than 200 and 429. */
  upstreamOther: count,
  /** When each accepted (200) upstream call arrived, ms after the first. */
  acceptedAt: z.array(z.number()),
  /** Jobs with more than one upstream call, and with more than one accepted (paid) call. */
  jobsCallingTwice: count,
  jobsPayingTwice: count,
  /** The sum of the job records' upstreamCalls (the app only): it should equal upstreamCalls. */
  upstreamCallsRecorded: count.optional(),
});
export type ThroughputResult = z.infer<typeof throughputResult>;

export const workerResultSchema = z.discriminatedUnion('scenario', [
  throughputResult,
  z.object({
    scenario: z.literal('latency'),
    implementation,
    n: count,
    setupMs: z.number(),
    /** One entry per measured request that succeeded, in order. */
    wallMs: z.array(z.number()),
    cpuMs: z.array(z.number()),
    decodedBytesPerRequest: count,
    failures,
  }),
  z.object({
    scenario: z.literal('memory'),
    implementation,
    n: count,
    warmup: count,
    ok: z.boolean(),
    code: z.string().optional(),
    wallMs: z.number(),
    rssBeforeBytes: count,
    maxRssBeforeBytes: count,
    maxRssAfterBytes: count,
    decodedBytes: count,
    responseBytes: count,
    /** CommonJS modules that were first loaded during the measured request. */
    modulesLoadedDuring: count,
    /** process.memoryUsage() before the request and at the highest RSS sampled during it (every 10 ms). */
    breakdown: z.object({ before: memorySample, atPeak: memorySample }),
    /** After the measurement: the first image's link was read back and had the stored length. */
    linkCheck: z.enum(['ok', 'mismatch', 'failed', 'none', 'skipped']),
  }),
  z.object({
    scenario: z.literal('concurrency'),
    implementation,
    n: count,
    concurrency: count,
    wallMs: z.number(),
    cpuMs: z.number(),
    rssBeforeBytes: count,
    maxRssBytes: count,
    images: count,
    failures,
  }),
  z.object({
    scenario: z.literal('import'),
    subject: z.enum(IMPORT_SUBJECTS),
    ms: z.number(),
    rssBeforeBytes: count,
    rssAfterBytes: count,
  }),
]);
export type WorkerResult = z.infer<typeof workerResultSchema>;
