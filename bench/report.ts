import type { ImplementationName, ImportSubject, WorkerResult } from './protocol';
import { mean, median, MIB, percentile } from './stats';

export interface ReportRow {
  readonly metric: string;
  /** The raw upstream call, where it means something: the floor the other two are compared with. */
  readonly raw?: number | undefined;
  readonly ours?: number | undefined;
  readonly baseline?: number | undefined;
  /** ours / baseline; below 1 means ours is lower (better for every metric here). */
  readonly ratio?: number | undefined;
  readonly decimals: number;
  readonly note?: string | undefined;
}

export interface TargetCheck {
  readonly target: string;
  readonly value: number | undefined;
  readonly verdict: 'PASS' | 'MISS' | 'n/a';
}

export interface ConcurrencyLoad {
  readonly concurrency: number;
  readonly n: number;
}

export interface Report {
  readonly rows: readonly ReportRow[];
  readonly targets: readonly TargetCheck[];
  readonly failures: readonly string[];
}

type Result<S extends WorkerResult['scenario']> = Extract<WorkerResult, { scenario: S }>;

const ratioOf = (ours: number | undefined, baseline: number | undefined): number | undefined =>
  ours === undefined || baseline === undefined || baseline <= 0 ? undefined : ours / baseline;

function row(metric: string, values: { raw?: number | undefined; ours: number | undefined; baseline: number | undefined }, decimals: number, note?: string): ReportRow {
  return { metric, raw: values.raw, ours: values.ours, baseline: values.baseline, ratio: ratioOf(values.ours, values.baseline), decimals, note };
}

export function buildReport(results: readonly WorkerResult[], loads: readonly ConcurrencyLoad[]): Report {
  const find = <S extends WorkerResult['scenario']>(scenario: S, match: (result: Result<S>) => boolean): Result<S> | undefined =>
    results.find((result): result is Result<S> => result.scenario === scenario && match(result as Result<S>));
  const latency = (implementation: ImplementationName, n: number) => find('latency', (r) => r.implementation === implementation && r.n === n);
  const memory = (implementation: ImplementationName, n: number, warmup: number) =>
    find('memory', (r) => r.implementation === implementation && r.n === n && r.warmup === warmup);
  const concurrency = (implementation: ImplementationName, load: ConcurrencyLoad) =>
    find('concurrency', (r) => r.implementation === implementation && r.n === load.n && r.concurrency === load.concurrency);

  const rows: ReportRow[] = [];
  const failures: string[] = [];
  const perImplementation = <T>(pick: (implementation: ImplementationName) => T) => ({ raw: pick('raw'), ours: pick('ours'), baseline: pick('baseline') });

  for (const n of [1, 10]) {
    const runs = perImplementation((implementation) => latency(implementation, n));
    if (!runs.ours && !runs.baseline) continue;
    const p = (implementation: ImplementationName, q: number) => percentile(runs[implementation]?.wallMs ?? [], q);
    const added = (implementation: 'ours' | 'baseline', q: number) => {
      const own = p(implementation, q);
      const floor = p('raw', q);
      return own === undefined || floor === undefined ? undefined : own - floor;
    };
    const samples = Math.max(runs.ours?.wallMs.length ?? 0, runs.baseline?.wallMs.length ?? 0);
    rows.push(row(`n=${n} wall p50 (ms)`, { raw: p('raw', 50), ours: p('ours', 50), baseline: p('baseline', 50) }, 0, `${samples} sequential requests`));
    rows.push(row(`n=${n} wall p95 (ms)`, { raw: p('raw', 95), ours: p('ours', 95), baseline: p('baseline', 95) }, 0));
    rows.push(row(`n=${n} added over raw, p50 (ms)`, { ours: added('ours', 50), baseline: added('baseline', 50) }, 0));
    rows.push(row(`n=${n} added over raw, p95 (ms)`, { ours: added('ours', 95), baseline: added('baseline', 95) }, 0));
    const cpu = (implementation: ImplementationName) => mean(runs[implementation]?.cpuMs ?? []);
    rows.push(row(`n=${n} CPU per request, mean (ms)`, { raw: cpu('raw'), ours: cpu('ours'), baseline: cpu('baseline') }, 1));
    const perImage = (implementation: ImplementationName) => {
      const value = cpu(implementation);
      return value === undefined ? undefined : value / n;
    };
    rows.push(row(`n=${n} CPU per image, mean (ms)`, { raw: perImage('raw'), ours: perImage('ours'), baseline: perImage('baseline') }, 1));
    for (const [implementation, run] of Object.entries(runs)) {
      if (run && run.failures.count > 0) failures.push(`latency n=${n} ${implementation}: ${describeFailures(run.failures.codes)}`);
    }
  }

  const memoryDelta = (run: Result<'memory'> | undefined) => (run?.ok ? Math.max(0, run.maxRssAfterBytes - run.rssBeforeBytes) : undefined);
  // The raw call decodes nothing; its response is base64 of the same images (4 characters per 3 bytes).
  const decodedOf = (run: Result<'memory'> | undefined) =>
    run?.implementation === 'raw' ? Math.floor((run.responseBytes * 3) / 4) : (run?.decodedBytes ?? 0);
  const memoryWarmups = [...new Set(results.flatMap((result) => (result.scenario === 'memory' ? [result.warmup] : [])))].sort((a, b) => a - b);
  for (const warmup of memoryWarmups) {
    const phase = memoryPhase(warmup);
    for (const n of [1, 10]) {
      const runs = perImplementation((implementation) => memory(implementation, n, warmup));
      if (!runs.ours && !runs.baseline) continue;
      const label = `n=${n} ${phase}`;
      const delta = (implementation: ImplementationName) => memoryDelta(runs[implementation]);
      const perByte = (implementation: ImplementationName) => {
        const bytes = delta(implementation);
        const decoded = decodedOf(runs[implementation]);
        return bytes === undefined || decoded === 0 ? undefined : bytes / decoded;
      };
      const mib = (implementation: ImplementationName) => {
        const bytes = delta(implementation);
        return bytes === undefined ? undefined : bytes / MIB;
      };
      const decodedMib = (runs.ours?.decodedBytes ?? runs.baseline?.decodedBytes ?? 0) / MIB;
      rows.push(row(`${label}: peak RSS − RSS before (MiB)`, { raw: mib('raw'), ours: mib('ours'), baseline: mib('baseline') }, 1, `${decodedMib.toFixed(1)} MiB of decoded images`));
      rows.push(row(`${label}: RSS bytes per decoded byte`, { raw: perByte('raw'), ours: perByte('ours'), baseline: perByte('baseline') }, 2, notePeakBeforeRequest(runs)));
      const atPeak = (implementation: ImplementationName, part: 'heapUsed' | 'arrayBuffers') => {
        const run = runs[implementation];
        return run?.ok ? (run.breakdown.atPeak[part] - run.breakdown.before[part]) / MIB : undefined;
      };
      rows.push(row(`${label}: JS heap used Δ at the sampled peak (MiB)`, { raw: atPeak('raw', 'heapUsed'), ours: atPeak('ours', 'heapUsed'), baseline: atPeak('baseline', 'heapUsed') }, 1, 'sampled every 10 ms'));
      rows.push(row(`${label}: Buffers Δ at the sampled peak (MiB)`, { raw: atPeak('raw', 'arrayBuffers'), ours: atPeak('ours', 'arrayBuffers'), baseline: atPeak('baseline', 'arrayBuffers') }, 1));
      const modules = (implementation: ImplementationName) => runs[implementation]?.modulesLoadedDuring;
      rows.push(row(`${label}: modules first loaded during it`, { raw: modules('raw'), ours: modules('ours'), baseline: modules('baseline') }, 0));
      for (const [implementation, run] of Object.entries(runs)) {
        if (run && !run.ok) failures.push(`memory ${label} ${implementation}: ${run.code ?? 'failed'}`);
        if (run?.ok && !['ok', 'skipped'].includes(run.linkCheck) && implementation !== 'raw') failures.push(`memory ${label} ${implementation}: link check ${run.linkCheck}`);
      }
    }
  }

  // What each extra decoded byte costs, with the one-off cost of a first request (code, pools) cancelled out.
  const marginal = (implementation: ImplementationName) => {
    const small = memory(implementation, 1, 0);
    const large = memory(implementation, 10, 0);
    const [smallDelta, largeDelta] = [memoryDelta(small), memoryDelta(large)];
    const extraBytes = decodedOf(large) - decodedOf(small);
    return smallDelta === undefined || largeDelta === undefined || extraBytes <= 0 ? undefined : (largeDelta - smallDelta) / extraBytes;
  };
  if (memory('ours', 10, 0) || memory('baseline', 10, 0)) {
    rows.push(row('n=1→10 first requests: RSS per extra decoded byte', { raw: marginal('raw'), ours: marginal('ours'), baseline: marginal('baseline') }, 2, '(Δ n=10 − Δ n=1) / extra bytes'));
  }

  for (const load of loads) {
    const runs = perImplementation((implementation) => concurrency(implementation, load));
    if (!runs.ours && !runs.baseline) continue;
    const label = `${load.concurrency}×n=${load.n}`;
    rows.push(row(`${label} wall (ms)`, { raw: runs.raw?.wallMs, ours: runs.ours?.wallMs, baseline: runs.baseline?.wallMs }, 0));
    const peak = (implementation: ImplementationName) => (runs[implementation] ? (runs[implementation]?.maxRssBytes ?? 0) / MIB : undefined);
    rows.push(row(`${label} peak RSS (MiB)`, { raw: peak('raw'), ours: peak('ours'), baseline: peak('baseline') }, 0));
    const cpuPerRequest = (implementation: ImplementationName) => {
      const run = runs[implementation];
      return run ? run.cpuMs / run.concurrency : undefined;
    };
    rows.push(row(`${label} CPU per request (ms)`, { raw: cpuPerRequest('raw'), ours: cpuPerRequest('ours'), baseline: cpuPerRequest('baseline') }, 1));
    const failed = (implementation: ImplementationName) => runs[implementation]?.failures.count;
    rows.push({
      metric: `${label} failed requests`,
      raw: failed('raw'),
      ours: failed('ours'),
      baseline: failed('baseline'),
      decimals: 0,
      note: (['ours', 'baseline'] as const)
        .filter((implementation) => (failed(implementation) ?? 0) > 0)
        .map((implementation) => `${implementation}: ${describeFailures(runs[implementation]?.failures.codes ?? {})}`)
        .join('; '),
    });
  }

  const imports = (subject: ImportSubject) => results.filter((result): result is Result<'import'> => result.scenario === 'import' && result.subject === subject);
  const importMs = (subject: ImportSubject) => median(imports(subject).map((result) => result.ms));
  const importMib = (subject: ImportSubject) => median(imports(subject).map((result) => (result.rssAfterBytes - result.rssBeforeBytes) / MIB));
  if (imports('baseline').length > 0) {
    const repeats = imports('baseline').length;
    rows.push(row('cold import, function file only (ms)', { ours: importMs('ours-entry'), baseline: importMs('baseline') }, 0, `median of ${repeats}; baseline = openai + @azure/storage-blob`));
    rows.push(row('cold import, function file only: RSS (MiB)', { ours: importMib('ours-entry'), baseline: importMib('baseline') }, 1));
    rows.push(row('cold import, incl. first-request modules (ms)', { ours: importMs('ours-full'), baseline: importMs('baseline') }, 0));
    rows.push(row('cold import, incl. first-request modules: RSS (MiB)', { ours: importMib('ours-full'), baseline: importMib('baseline') }, 1));
    if (imports('ours-bundle').length > 0) {
      rows.push(row('cold import, the same bundled (npm run bundle) (ms)', { ours: importMs('ours-bundle'), baseline: importMs('baseline') }, 0, 'one minified file'));
      rows.push(row('cold import, the same bundled: RSS (MiB)', { ours: importMib('ours-bundle'), baseline: importMib('baseline') }, 1));
    }
  }
  if (imports('ours-full-otel').length > 0) {
    // Our telemetry is a log line; the baseline here is the same app sending OpenTelemetry metrics.
    const note = 'baseline = ours + @azure/monitor-opentelemetry-exporter and @opentelemetry/sdk-metrics set up';
    rows.push(row('cold import, telemetry as log line vs OpenTelemetry (ms)', { ours: importMs('ours-full'), baseline: importMs('ours-full-otel') }, 0, note));
    rows.push(row('cold import, telemetry as log line vs OpenTelemetry: RSS (MiB)', { ours: importMib('ours-full'), baseline: importMib('ours-full-otel') }, 1));
  }

  const targets: TargetCheck[] = [];
  // Issue 14's targets, meant against the null blob endpoint (BENCH_BLOB=null, the default).
  for (const [n, limit] of [
    [1, 20],
    [10, 150],
  ] as const) {
    const added = rows.find((candidate) => candidate.metric === `n=${n} added over raw, p50 (ms)`)?.ours;
    targets.push(check(`ours: added latency over raw, n=${n} p50 ≤ ${limit} ms`, added, (v) => v <= limit));
    const perImage = rows.find((candidate) => candidate.metric === `n=${n} CPU per image, mean (ms)`)?.ours;
    targets.push(check(`ours: CPU per image, n=${n} ≤ 25 ms`, perImage, (v) => v <= 25));
  }
  for (const n of [1, 10]) {
    for (const q of [50, 95]) {
      const ratio = rows.find((candidate) => candidate.metric === `n=${n} added over raw, p${q} (ms)`)?.ratio;
      targets.push(check(`ours/baseline added latency over raw, n=${n} p${q} ≤ 0.5`, ratio, (v) => v <= 0.5));
    }
  }
  for (const warmup of memoryWarmups) {
    const phase = memoryPhase(warmup);
    for (const n of [1, 10]) {
      const value = rows.find((candidate) => candidate.metric === `n=${n} ${phase}: RSS bytes per decoded byte`)?.ours;
      targets.push(check(`ours: RSS per decoded byte, n=${n} ${phase} ≤ 2`, value, (v) => v <= 2));
    }
  }
  for (const subject of ['ours-full', 'ours-bundle'] as const) {
    const ratio = rows.find((candidate) => candidate.metric === (subject === 'ours-full' ? 'cold import, incl. first-request modules (ms)' : 'cold import, the same bundled (npm run bundle) (ms)'))?.ratio;
    targets.push(check(`${subject}: cold import of everything the first request needs ≤ 1.0 × baseline`, ratio, (v) => v <= 1));
  }
  const heavy = loads.at(-1);
  if (heavy) {
    const run = concurrency('ours', heavy);
    targets.push(check(`ours: ${heavy.concurrency}×n=${heavy.n} peak RSS < 512 MiB`, run ? run.maxRssBytes / MIB : undefined, (v) => v < 512));
    targets.push(check(`ours: ${heavy.concurrency}×n=${heavy.n} without failures`, run?.failures.count, (v) => v === 0));
  }
  return { rows, targets, failures };
}

/** How the memory rows name a measured request: the first of a fresh process, or one after warm-ups. */
function memoryPhase(warmup: number): string {
  return warmup === 0 ? 'first request in a fresh process' : `after ${warmup} warm-up request${warmup === 1 ? '' : 's'}`;
}

function check(target: string, value: number | undefined, passes: (value: number) => boolean): TargetCheck {
  return { target, value, verdict: value === undefined ? 'n/a' : passes(value) ? 'PASS' : 'MISS' };
}

function describeFailures(codes: Readonly<Record<string, number>>): string {
  return Object.entries(codes)
    .map(([code, count]) => `${count}× ${code}`)
    .join(', ');
}

// If the process had already peaked above the request's peak (loading modules), maxRSS cannot see
// the request at all and the figure is only an upper bound.
function notePeakBeforeRequest(runs: Partial<Record<ImplementationName, Result<'memory'> | undefined>>): string | undefined {
  const masked = Object.entries(runs)
    .filter(([, run]) => run?.ok && run.maxRssAfterBytes === run.maxRssBeforeBytes)
    .map(([implementation]) => implementation);
  return masked.length > 0 ? `upper bound for ${masked.join(', ')}: the peak predates the request` : undefined;
}

/** The report as a fixed-width table, for a terminal. */
export function formatReport(report: Report): string {
  const format = (value: number | undefined, decimals: number) => (value === undefined ? '—' : value.toFixed(decimals));
  const header = ['metric', 'raw', 'ours', 'baseline', 'ours/base', 'note'];
  const body = report.rows.map((entry) => [
    entry.metric,
    format(entry.raw, entry.decimals),
    format(entry.ours, entry.decimals),
    format(entry.baseline, entry.decimals),
    format(entry.ratio, 2),
    entry.note ?? '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => (cells[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === 0 || column === cells.length - 1 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [line(header), line(widths.map((width) => '-'.repeat(width))), ...body.map(line), ''];
  lines.push('Targets:');
  for (const target of report.targets) lines.push(`  ${target.verdict.padEnd(4)}  ${target.target}  (measured: ${format(target.value, 2)})`);
  if (report.failures.length > 0) {
    lines.push('', 'Failures:');
    for (const failure of report.failures) lines.push(`  ${failure}`);
  }
  return lines.join('\n');
}
