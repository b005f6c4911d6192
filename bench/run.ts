/**
 * `npm run bench`: our generate path against the obvious SDK-based baseline, on the same emulator and
 * the same Azurite, each scenario in a fresh worker process (see worker.ts). Prints a table with the
 * ratio ours/baseline and writes everything to bench/results/latest.json (not tracked by git). Timing
 * never goes into tests.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { z } from 'zod';

import type { RunningAzurite } from '../local-host/azurite';
import { devStorageConnectionString, startAzurite } from '../local-host/azurite';
import { runWorkerProcess, signalAllChildren, startEmulatorProcess, startNullBlobProcess } from './processes';
import type { RunningEmulator, WorkerRun } from './processes';
import type { ImplementationName, StorageSettings, UpstreamSettings, WorkerArgs, WorkerResult } from './protocol';
import { IMPORT_SUBJECTS, workerResultSchema } from './protocol';
import type { ConcurrencyLoad } from './report';
import { buildReport, formatReport } from './report';
import { LATEST_RESULTS_FILE } from './results-files';
import { generationsUrl } from './impl/raw';
import { formatThroughput, planThroughput, throughputEmulatorSettings, throughputRows, throughputTargets } from './throughput';
import { MIB } from './stats';

const SCENARIOS = ['import', 'memory', 'latency', 'concurrency', 'throughput'] as const;
type Scenario = (typeof SCENARIOS)[number];

const API_KEY = 'emulator-key';
const DEPLOYMENT = 'gpt-image-1.5';
const API_VERSION = '2025-04-01-preview';
// One prompt everywhere: the emulator renders each (prompt, index) once and serves it from its cache
// afterwards, so its own CPU stays out of the way and every implementation gets the very same bytes.
const PROMPT = 'A red fox in fresh snow at dawn, photographed with a long lens';
const SIZE = '1024x1024';
const CONTAINERS: Readonly<Record<Exclude<ImplementationName, 'raw'>, string>> = { ours: 'bench-ours', baseline: 'bench-baseline' };
const CONCURRENCY_LOADS: readonly ConcurrencyLoad[] = [
  { concurrency: 20, n: 1 },
  { concurrency: 50, n: 4 },
];
const IMPORT_REPEATS = 3;
// A first request in a fresh process carries one-off costs; after three, RSS growth per request settles.
const MEMORY_WARMUPS = [0, 3] as const;
// --expose-gc lets a worker settle its heap before it reads the "before" RSS.
const WORKER_NODE_OPTIONS = ['--expose-gc'];

const wholeNumber = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional();
const parametersSchema = z
  .object({
    BENCH_LATENCY_MS: wholeNumber(0, 60_000),
    BENCH_ITERATIONS: wholeNumber(1, 1_000),
    BENCH_ITERATIONS_N10: wholeNumber(1, 1_000),
    BENCH_WARMUP: wholeNumber(0, 100),
    BENCH_BLOB: z.enum(['null', 'azurite']).optional(),
    BENCH_THROUGHPUT_JOBS: wholeNumber(1, 10_000),
    BENCH_BACKENDS: wholeNumber(1, 20),
    BENCH_QUOTA: wholeNumber(1, 1_000),
    BENCH_MINUTE_MS: wholeNumber(500, 600_000),
    BENCH_THROUGHPUT_LATENCY_MS: wholeNumber(0, 60_000),
    // Where the run's JSON goes (default bench/results/latest.json): the bench's own test writes elsewhere.
    BENCH_RESULTS_FILE: z.string().min(1).optional(),
    BENCH_SCENARIOS: z
      .string()
      .transform((text) => text.split(',').map((part) => part.trim()).filter(Boolean))
      .pipe(z.array(z.enum(SCENARIOS)).min(1))
      .optional(),
  })
  .transform((env) => {
    const iterations = env.BENCH_ITERATIONS ?? 20;
    return {
      emulatorLatencyMs: env.BENCH_LATENCY_MS ?? 300,
      warmup: env.BENCH_WARMUP ?? 3,
      iterations: { n1: iterations, n10: env.BENCH_ITERATIONS_N10 ?? Math.min(10, iterations) },
      scenarios: env.BENCH_SCENARIOS ?? [...SCENARIOS],
      concurrencyLoads: CONCURRENCY_LOADS,
      importRepeats: IMPORT_REPEATS,
      imageSize: SIZE,
      imageDetail: 'noise' as const,
      prompt: PROMPT,
      // Against the null endpoint the rows measure our layer; against Azurite, its single thread too.
      blob: env.BENCH_BLOB ?? 'null',
      // The default quota of the gpt-image-1 series (5 images a minute), with a "minute" of 6 s and the
      // upstream's 10-30 s scaled alike, so 100 jobs drain in about a minute instead of ten.
      throughput: {
        jobs: env.BENCH_THROUGHPUT_JOBS ?? 100,
        backends: env.BENCH_BACKENDS ?? 3,
        quota: env.BENCH_QUOTA ?? 5,
        minuteMs: env.BENCH_MINUTE_MS ?? 6_000,
        latencyMs: env.BENCH_THROUGHPUT_LATENCY_MS ?? 1_500,
      },
      resultsFile: env.BENCH_RESULTS_FILE,
    };
  });
type Parameters = z.infer<typeof parametersSchema>;

interface Step {
  readonly label: string;
  readonly args: WorkerArgs;
  readonly timeoutInMs: number;
}

interface StepRecord {
  readonly label: string;
  readonly args: WorkerArgs;
  readonly durationMs: number;
  readonly result?: WorkerResult;
  readonly error?: string;
}

let interrupted = false;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function readParameters(): Parameters {
  const parsed = parametersSchema.safeParse(process.env);
  if (!parsed.success) {
    throw new Error(`Invalid BENCH_* settings:\n${parsed.error.issues.map((issue) => `  - ${issue.path.join('.')}: ${issue.message}`).join('\n')}`);
  }
  return parsed.data;
}

function plan(parameters: Parameters, upstream: UpstreamSettings, connectionString: string): Step[] {
  const storageFor = (implementation: ImplementationName): StorageSettings => ({
    connectionString,
    discardsUploads: parameters.blob === 'null',
    // The raw call stores nothing; it gets a name only because every target carries one.
    container: implementation === 'raw' ? CONTAINERS.ours : CONTAINERS[implementation],
  });
  const target = (implementation: ImplementationName, n: number) => ({ implementation, n, upstream, storage: storageFor(implementation) });
  const perRequestBudget = (n: number) => parameters.emulatorLatencyMs + 3_000 * n;
  const steps: Step[] = [];
  const wanted = new Set<Scenario>(parameters.scenarios);

  // Quietest first: cold imports and single requests, then the sequential series, then the loads.
  if (wanted.has('import')) {
    for (let repeat = 0; repeat < parameters.importRepeats; repeat++) {
      for (const subject of IMPORT_SUBJECTS) {
        steps.push({ label: `import ${subject} #${repeat + 1}`, args: { scenario: 'import', subject }, timeoutInMs: 60_000 });
      }
    }
  }
  if (wanted.has('memory')) {
    // Each twice: as the first request of a fresh process, and after warm-up requests in it.
    for (const warmup of MEMORY_WARMUPS) {
      for (const n of [1, 10]) {
        for (const implementation of ['ours', 'baseline', 'raw'] as const) {
          steps.push({
            label: `memory n=${n} ${implementation}${warmup > 0 ? ` after ${warmup} warm-ups` : ''}`,
            args: { scenario: 'memory', ...target(implementation, n), warmup },
            timeoutInMs: 120_000,
          });
        }
      }
    }
  }
  if (wanted.has('latency')) {
    for (const n of [1, 10]) {
      const iterations = n === 1 ? parameters.iterations.n1 : parameters.iterations.n10;
      for (const implementation of ['raw', 'ours', 'baseline'] as const) {
        steps.push({
          label: `latency n=${n} ${implementation}`,
          args: { scenario: 'latency', ...target(implementation, n), warmup: parameters.warmup, iterations },
          timeoutInMs: 60_000 + (parameters.warmup + iterations) * perRequestBudget(n),
        });
      }
    }
  }
  if (wanted.has('concurrency')) {
    for (const load of parameters.concurrencyLoads) {
      for (const implementation of ['raw', 'ours', 'baseline'] as const) {
        steps.push({
          label: `concurrency ${load.concurrency}×n=${load.n} ${implementation}`,
          args: { scenario: 'concurrency', ...target(implementation, load.n), concurrency: load.concurrency },
          timeoutInMs: 300_000,
        });
      }
    }
  }
  return steps;
}

async function runStep(step: Step, workerEntry: string): Promise<StepRecord> {
  const run = await runWorkerProcess(workerEntry, step.args, step.timeoutInMs, WORKER_NODE_OPTIONS);
  const base = { label: step.label, args: step.args, durationMs: run.durationMs };
  const failure = describeRunFailure(run, step.timeoutInMs);
  if (failure) return { ...base, error: failure };
  // The answer is the last JSON line: libraries may print their own warnings before it.
  const line = run.stdout.trim().split('\n').reverse().find((candidate) => candidate.startsWith('{'));
  try {
    return { ...base, result: workerResultSchema.parse(JSON.parse(line ?? '')) };
  } catch (error: unknown) {
    return { ...base, error: `unreadable worker answer (${error instanceof Error ? error.message : 'parse error'}): ${line ?? '(none)'}` };
  }
}

function describeRunFailure(run: WorkerRun, timeoutInMs: number): string | undefined {
  if (run.timedOut) return `timed out after ${Math.round(timeoutInMs / 1000)} s and was killed`;
  if (run.exitCode === 0) return undefined;
  return `exited with ${run.exitCode ?? run.signal}${run.stderrTail ? `:\n${run.stderrTail}` : ''}`;
}

function summarise(result: WorkerResult): string {
  switch (result.scenario) {
    case 'throughput':
      return `${result.succeeded}/${result.jobs} jobs in ${(result.drainMs / 1000).toFixed(1)} s, ${result.upstreamCalls} upstream calls, ${result.upstream429} of them 429`;
    case 'import':
      return `${result.ms.toFixed(0)} ms, +${((result.rssAfterBytes - result.rssBeforeBytes) / MIB).toFixed(1)} MiB`;
    case 'memory':
      return result.ok
        ? `peak +${((result.maxRssAfterBytes - result.rssBeforeBytes) / MIB).toFixed(1)} MiB for ${(result.decodedBytes / MIB).toFixed(1)} MiB decoded, ${result.wallMs.toFixed(0)} ms, ${result.modulesLoadedDuring} modules loaded, link ${result.linkCheck}`
        : `failed: ${result.code ?? ''}`;
    case 'latency': {
      const sorted = [...result.wallMs].sort((a, b) => a - b);
      return `${sorted.length} ok, median ${(sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(0)} ms, ${result.failures.count} failed`;
    }
    case 'concurrency':
      return `${result.wallMs.toFixed(0)} ms, peak ${(result.maxRssBytes / MIB).toFixed(0)} MiB, ${result.images} images, ${result.failures.count} failed`;
  }
}

async function createContainers(connectionString: string): Promise<void> {
  const service = BlobServiceClient.fromConnectionString(connectionString);
  for (const name of Object.values(CONTAINERS)) await service.getContainerClient(name).createIfNotExists();
}

/** One n=10 call renders and caches every image index any scenario asks for. */
async function warmEmulator(upstream: UpstreamSettings): Promise<void> {
  const response = await request(generationsUrl(upstream), {
    method: 'POST',
    signal: AbortSignal.timeout(120_000),
    headers: { 'api-key': upstream.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: upstream.prompt, n: 10, size: upstream.size }),
  });
  await response.body.dump({ limit: Number.MAX_SAFE_INTEGER });
  if (response.statusCode !== 200) throw new Error(`The emulator's warm-up call answered HTTP ${response.statusCode}.`);
}

/** Azurite's folder holds gigabytes of images by now; say so if it cannot be removed. */
function removeDataDir(dataDir: string): void {
  try {
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch (error: unknown) {
    log(`could not remove ${dataDir}: ${String(error)}`);
  }
  if (existsSync(dataDir)) log(`${dataDir} is still there; remove it by hand.`);
}

// The results file is shared around: keep the (well-known, but still) account key and api-key out of it.
function withoutSecrets(args: WorkerArgs): WorkerArgs {
  if (args.scenario === 'import') return args;
  if (args.scenario === 'throughput') return { ...args, apiKey: '***', storage: { ...args.storage, connectionString: '(Azurite, development account)' } };
  return { ...args, upstream: { ...args.upstream, apiKey: '***' }, storage: { ...args.storage, connectionString: '(Azurite, development account)' } };
}

function machine() {
  const processors = cpus();
  return {
    cpuModel: processors[0]?.model ?? 'unknown',
    cores: processors.length,
    availableParallelism: availableParallelism(),
    totalMemoryMiB: Math.round(totalmem() / MIB),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
  };
}

async function main(): Promise<number> {
  const parameters = readParameters();
  const repoRoot = resolve(__dirname, '..', '..');
  const emulatorEntry = join(repoRoot, 'dist', 'emulator', 'main.js');
  const workerEntry = join(__dirname, 'worker.js');
  if (!existsSync(emulatorEntry)) throw new Error(`${emulatorEntry} does not exist; build the emulator first (npm run build).`);

  const startedAt = performance.now();
  const timestamp = new Date().toISOString();
  const loadBefore = loadavg();
  const dataDir = mkdtempSync(join(tmpdir(), 'imagegen-bench-azurite-'));
  let azurite: RunningAzurite | undefined;
  let emulator: RunningEmulator | undefined;
  let throughputEmulator: RunningEmulator | undefined;
  let nullBlob: RunningEmulator | undefined;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      // Second Ctrl-C: no more waiting. Children notice their closed stdin and stop by themselves.
      signalAllChildren('SIGKILL');
      try {
        if (azurite) process.kill(azurite.pid, 'SIGKILL');
      } catch {
        // Already gone: that was the point.
      }
      removeDataDir(dataDir);
      process.exit(130);
    }
    interrupted = true;
    log(`${signal}: stopping the current worker, then the emulator and Azurite (again to force).`);
    signalAllChildren('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    log(`Azurite on disk in ${dataDir}`);
    azurite = await startAzurite({ dataDir });
    emulator = await startEmulatorProcess(emulatorEntry, {
      latencyMs: parameters.emulatorLatencyMs,
      apiKey: API_KEY,
      deployments: `${DEPLOYMENT}=${DEPLOYMENT}`,
      imageDetail: parameters.imageDetail,
    });
    log(`emulator at ${emulator.url} (pid ${emulator.pid}, latency ${parameters.emulatorLatencyMs} ms); Azurite pid ${azurite.pid}`);
    let targetStorage = azurite.connectionString;
    if (parameters.blob === 'null' && parameters.scenarios.some((scenario) => ['memory', 'latency', 'concurrency'].includes(scenario))) {
      nullBlob = await startNullBlobProcess(join(__dirname, 'null-blob-main.js'));
      log(`null blob endpoint at ${nullBlob.url} (pid ${nullBlob.pid}): the latency, memory and concurrency rows upload to it`);
      targetStorage = devStorageConnectionString({ blobEndpoint: nullBlob.url, queueEndpoint: azurite.queueEndpoint, tableEndpoint: azurite.tableEndpoint });
    }
    await createContainers(targetStorage);
    const upstream: UpstreamSettings = {
      emulatorUrl: emulator.url,
      apiKey: API_KEY,
      deployment: DEPLOYMENT,
      apiVersion: API_VERSION,
      prompt: parameters.prompt,
      size: parameters.imageSize,
    };
    await warmEmulator(upstream);

    const plannedSteps: Step[] = plan(parameters, upstream, targetStorage);
    if (parameters.scenarios.includes('throughput')) {
      // An emulator of its own: deployments with quotas and a short minute, small images.
      throughputEmulator = await startEmulatorProcess(emulatorEntry, {
        latencyMs: parameters.throughput.latencyMs,
        apiKey: API_KEY,
        imageDetail: 'flat',
        ...throughputEmulatorSettings(parameters.throughput, DEPLOYMENT),
        minuteMs: parameters.throughput.minuteMs,
      });
      log(`throughput emulator at ${throughputEmulator.url} (pid ${throughputEmulator.pid})`);
      const throughputUpstream = { emulatorUrl: throughputEmulator.url, apiKey: API_KEY, apiVersion: API_VERSION, prompt: parameters.prompt };
      plannedSteps.push(...planThroughput(parameters.throughput, throughputUpstream, azurite.connectionString));
    }
    const records: StepRecord[] = [];
    for (const [index, step] of plannedSteps.entries()) {
      if (interrupted) throw new Error('Interrupted.');
      const record = await runStep(step, workerEntry);
      if (interrupted) throw new Error('Interrupted.');
      records.push(record);
      const outcome = record.result ? summarise(record.result) : `ERROR ${record.error ?? ''}`;
      log(`${String(index + 1).padStart(2)}/${plannedSteps.length} ${step.label}: ${outcome} (${(record.durationMs / 1000).toFixed(1)} s)`);
    }

    const results = records.flatMap((record) => (record.result ? [record.result] : []));
    const report = buildReport(results, parameters.concurrencyLoads);
    const throughput = throughputRows(
      results.filter((result) => result.scenario === 'throughput'),
      parameters.throughput,
    );
    const durationMs = performance.now() - startedAt;
    const host = machine();
    const errors = records.flatMap((record) => (record.error ? [`${record.label}: ${record.error}`] : []));
    const loadAfter = loadavg();

    const lines = [
      '',
      `imagegen-functions bench — ${timestamp}`,
      `machine: ${host.cpuModel}, ${host.cores} cores, ${host.totalMemoryMiB} MiB, node ${host.node} (load avg before ${loadBefore[0]?.toFixed(2)}, after ${loadAfter[0]?.toFixed(2)})`,
      `emulator latency ${parameters.emulatorLatencyMs} ms, ${parameters.imageSize} ${parameters.imageDetail} PNGs; ${parameters.warmup} warm-up + ${parameters.iterations.n1} (n=1) / ${parameters.iterations.n10} (n=10) sequential requests`,
      `blob storage for the latency, memory and concurrency rows: ${parameters.blob === 'null' ? 'the null endpoint (uploads read and dropped; links not checked)' : 'Azurite on disk'}`,
      '',
      formatReport(report),
      ...(throughput.length > 0 ? ['', formatThroughput(throughput, parameters.throughput)] : []),
      ...(errors.length > 0 ? ['', 'Scenarios that produced no result:', ...errors.map((error) => `  ${error}`)] : []),
      '',
      `total ${(durationMs / 1000).toFixed(0)} s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);

    const file = parameters.resultsFile ?? join(repoRoot, LATEST_RESULTS_FILE);
    mkdirSync(dirname(file), { recursive: true });
    const steps = records.map((record) => ({ ...record, args: withoutSecrets(record.args) }));
    const json = { timestamp, durationMs, machine: { ...host, loadAverage: { before: loadBefore, after: loadAfter } }, parameters, ...report, throughput: { rows: throughput, targets: throughputTargets(throughput) }, errors, steps };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    log(`wrote ${file}`);
    return errors.length > 0 ? 1 : 0;
  } finally {
    // Each step on its own: a failure to stop one process must not leave the other running.
    await emulator?.stop().catch((error: unknown) => log(`could not stop the emulator (pid ${emulator?.pid}): ${String(error)}`));
    await nullBlob?.stop().catch((error: unknown) => log(`could not stop the null blob endpoint (pid ${nullBlob?.pid}): ${String(error)}`));
    await throughputEmulator?.stop().catch((error: unknown) => log(`could not stop the throughput emulator (pid ${throughputEmulator?.pid}): ${String(error)}`));
    await azurite?.stop().catch((error: unknown) => log(`could not stop Azurite (pid ${azurite?.pid}): ${String(error)}`));
    removeDataDir(dataDir);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(interrupted ? 130 : 1);
  },
);
