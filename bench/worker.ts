/**
 * One measurement in a fresh process: `node dist/bench/worker.js '<json args>'` prints one JSON line
 * (see protocol.ts) and exits. A fresh process per scenario keeps one implementation's heap, pools and
 * loaded modules out of another's numbers.
 *
 * Deliberately imports nothing but Node built-ins and the dependency-free subject list at the top: the
 * cold-import scenario must find every package unloaded. Everything else is loaded once the scenario is known.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

import { importModules, isImportSubject } from './import-subjects';
import type { ImportSubject } from './import-subjects';
import type { BenchTarget, GenerateOutcome } from './impl/target';
import type { Failures, MemorySample, TargetArgs, WorkerResult } from './protocol';

const maxRssBytes = (): number => process.resourceUsage().maxRSS * 1024; // Linux reports KiB
const memorySample = (): MemorySample => {
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapTotal, heapUsed, external, arrayBuffers };
};
const settle = (): void => (globalThis as { gc?: () => void }).gc?.(); // present under --expose-gc

/**
 * Resets the kernel's peak RSS (VmHWM, which getrusage's maxRSS reads) to the current RSS, so that a
 * request measured after a warm-up is not hidden under the warm-up's own peak. Linux 4.0 and later.
 */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const raw = JSON.parse(process.argv[2] ?? 'null') as unknown;
  // The import scenario is checked by hand so that not even zod is loaded before it measures.
  const result =
    typeof raw === 'object' && raw !== null && 'scenario' in raw && raw.scenario === 'import'
      ? measureImport('subject' in raw && isImportSubject(raw.subject) ? raw.subject : fail(`Unknown import subject in ${process.argv[2]}`))
      : await measureTarget(raw);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function fail(message: string): never {
  throw new Error(message);
}

function measureImport(subject: ImportSubject): WorkerResult {
  const load = createRequire(__filename);
  const rssBeforeBytes = process.memoryUsage.rss();
  const startedAt = performance.now();
  for (const name of importModules(subject, __dirname)) load(name);
  const ms = performance.now() - startedAt;
  return { scenario: 'import', subject, ms, rssBeforeBytes, rssAfterBytes: process.memoryUsage.rss() };
}

async function measureTarget(raw: unknown): Promise<WorkerResult> {
  const { workerArgsSchema } = await import('./protocol.js');
  const args = workerArgsSchema.parse(raw);
  if (args.scenario === 'import') return measureImport(args.subject);
  if (args.scenario === 'throughput') return (await import('./impl/throughput.js')).measureThroughput(args);

  const setupStartedAt = performance.now();
  const target = await createTarget(args);
  const setupMs = performance.now() - setupStartedAt;

  switch (args.scenario) {
    case 'latency':
      return measureLatency(target, args, setupMs);
    case 'memory':
      return measureMemory(target, args);
    case 'concurrency':
      return measureConcurrency(target, args);
  }
}

async function createTarget(args: TargetArgs): Promise<BenchTarget> {
  switch (args.implementation) {
    case 'raw':
      return (await import('./impl/raw.js')).createRawTarget(args.upstream);
    case 'ours':
      return (await import('./impl/ours.js')).createOursTarget(args.upstream, args.storage);
    case 'baseline':
      return (await import('./impl/baseline.js')).createBaselineTarget(args.upstream, args.storage);
  }
}

async function generateSafely(target: BenchTarget, n: number): Promise<GenerateOutcome> {
  try {
    return await target.generate(n);
  } catch (error: unknown) {
    const { failureCode } = await import('./impl/target.js');
    return { ok: false, code: failureCode(error) };
  }
}

function countFailure(failures: Failures, code: string): void {
  failures.count += 1;
  failures.codes[code] = (failures.codes[code] ?? 0) + 1;
}

async function measureLatency(target: BenchTarget, args: Extract<TargetArgs, { scenario: 'latency' }>, setupMs: number): Promise<WorkerResult> {
  const failures: Failures = { count: 0, codes: {} };
  for (let i = 0; i < args.warmup; i++) {
    const outcome = await generateSafely(target, args.n);
    if (!outcome.ok) countFailure(failures, `warm-up: ${outcome.code}`);
  }
  const wallMs: number[] = [];
  const cpuMs: number[] = [];
  let decodedBytesPerRequest = 0;
  for (let i = 0; i < args.iterations; i++) {
    const cpuBefore = process.cpuUsage();
    const startedAt = performance.now();
    const outcome = await generateSafely(target, args.n);
    const elapsed = performance.now() - startedAt;
    const cpu = process.cpuUsage(cpuBefore);
    if (!outcome.ok) {
      countFailure(failures, outcome.code);
      continue;
    }
    wallMs.push(elapsed);
    cpuMs.push((cpu.user + cpu.system) / 1000);
    decodedBytesPerRequest = outcome.decodedBytes;
  }
  return { scenario: 'latency', implementation: args.implementation, n: args.n, setupMs, wallMs, cpuMs, decodedBytesPerRequest, failures };
}

async function measureMemory(target: BenchTarget, args: Extract<TargetArgs, { scenario: 'memory' }>): Promise<WorkerResult> {
  // Warm-up requests pay the one-off costs (lazily loaded modules, compiled code, connection pools)
  // that a long-lived instance pays once; the measured request then shows what each request costs.
  for (let i = 0; i < args.warmup; i++) {
    const outcome = await generateSafely(target, args.n);
    if (!outcome.ok) throw new Error(`The warm-up request failed: ${outcome.code}`);
  }
  settle();
  if (args.warmup > 0 && !resetPeakRss()) throw new Error('Cannot reset the peak RSS (/proc/self/clear_refs); the warm measurement needs Linux.');
  const before = memorySample();
  const rssBeforeBytes = before.rss;
  const maxRssBeforeBytes = maxRssBytes();
  const modulesBefore = loadedModuleCount();
  // Only to say where the peak lives (JS heap or buffers); the figure itself is the kernel's maxRSS.
  let atPeak = before;
  const sampler = setInterval(() => {
    const sample = memorySample();
    if (sample.rss > atPeak.rss) atPeak = sample;
  }, 10);
  const startedAt = performance.now();
  const outcome = await generateSafely(target, args.n);
  const wallMs = performance.now() - startedAt;
  clearInterval(sampler);
  const maxRssAfterBytes = maxRssBytes();
  const common = {
    scenario: 'memory',
    implementation: args.implementation,
    n: args.n,
    warmup: args.warmup,
    wallMs,
    rssBeforeBytes,
    maxRssBeforeBytes,
    maxRssAfterBytes,
    modulesLoadedDuring: loadedModuleCount() - modulesBefore,
    breakdown: { before, atPeak },
  } as const;
  if (!outcome.ok) return { ...common, ok: false, code: outcome.code, decodedBytes: 0, responseBytes: 0, linkCheck: 'none' };
  const linkCheck = args.storage.discardsUploads ? 'skipped' : await checkLink(outcome);
  return { ...common, ok: true, decodedBytes: outcome.decodedBytes, responseBytes: outcome.responseBytes, linkCheck };
}

/** CommonJS modules loaded so far: what a request pulls in lazily shows as a difference. */
function loadedModuleCount(): number {
  return Object.keys(createRequire(__filename).cache).length;
}

/** Reads the first image back through its link: a benchmark of links that do not work would mean nothing. */
async function checkLink(outcome: Extract<GenerateOutcome, { ok: true }>): Promise<'ok' | 'mismatch' | 'failed' | 'none'> {
  const first = outcome.images[0];
  if (!first) return 'none';
  try {
    const { request } = await import('undici');
    const response = await request(first.url, { signal: AbortSignal.timeout(30_000) });
    let bytes = 0;
    for await (const chunk of response.body) bytes += (chunk as Buffer).length;
    return response.statusCode === 200 && bytes === first.bytes ? 'ok' : 'mismatch';
  } catch {
    return 'failed';
  }
}

async function measureConcurrency(target: BenchTarget, args: Extract<TargetArgs, { scenario: 'concurrency' }>): Promise<WorkerResult> {
  settle();
  const rssBeforeBytes = process.memoryUsage.rss();
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const outcomes = await Promise.all(Array.from({ length: args.concurrency }, () => generateSafely(target, args.n)));
  const wallMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  const failures: Failures = { count: 0, codes: {} };
  let images = 0;
  for (const outcome of outcomes) {
    if (outcome.ok) images += outcome.images.length;
    else countFailure(failures, outcome.code);
  }
  return {
    scenario: 'concurrency',
    implementation: args.implementation,
    n: args.n,
    concurrency: args.concurrency,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssBeforeBytes,
    maxRssBytes: maxRssBytes(),
    images,
    failures,
  };
}

main().then(
  // Keep-alive sockets and SDK timers would hold the process open; the answer is already out.
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
