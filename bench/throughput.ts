/**
 * The throughput scenario's plan and report (its measurement is impl/throughput.ts): N jobs at once
 * against deployments at their quotas, three ways in one run: main's single-deployment retry path
 * re-enacted ("today"), the app on one deployment, the app on K deployments. Each gets deployments
 * of its own on one emulator, so no run inherits another's window.
 */
import type { ThroughputArgs, ThroughputImplementation, ThroughputResult } from './protocol';

export interface ThroughputParameters {
  readonly jobs: number;
  readonly backends: number;
  /** Images per (emulated) minute, per deployment. */
  readonly quota: number;
  readonly minuteMs: number;
  readonly latencyMs: number;
}

export interface ThroughputStep {
  readonly label: string;
  readonly args: ThroughputArgs;
  readonly timeoutInMs: number;
}

/** Deployment names per implementation, K for the routed one. */
export function throughputDeployments(parameters: ThroughputParameters): Record<ThroughputImplementation, string[]> {
  return {
    today: ['today'],
    single: ['single'],
    routed: Array.from({ length: parameters.backends }, (_, index) => `routed-${index + 1}`),
  };
}

/** `EMULATOR_DEPLOYMENTS` and `EMULATOR_QUOTAS` for the throughput emulator. */
export function throughputEmulatorSettings(parameters: ThroughputParameters, model: string): { deployments: string; quotas: string } {
  const names = Object.values(throughputDeployments(parameters)).flat();
  return { deployments: names.map((name) => `${name}=${model}`).join(','), quotas: names.map((name) => `${name}=${parameters.quota}ipm`).join(',') };
}

export function planThroughput(
  parameters: ThroughputParameters,
  upstream: Pick<ThroughputArgs, 'emulatorUrl' | 'apiKey' | 'apiVersion' | 'prompt'>,
  connectionString: string,
): ThroughputStep[] {
  const deployments = throughputDeployments(parameters);
  return (['today', 'single', 'routed'] as const).map((implementation) => {
    const names = deployments[implementation];
    // What the quota allows, three times over, and a minute more for stragglers.
    const idealMs = (parameters.jobs / (parameters.quota * names.length)) * parameters.minuteMs;
    const timeoutInMs = Math.round(3 * idealMs + parameters.latencyMs * parameters.jobs + 60_000);
    return {
      label: `throughput ${parameters.jobs} jobs, ${implementation} (${names.length} deployment${names.length === 1 ? '' : 's'})`,
      timeoutInMs: timeoutInMs + 30_000,
      args: {
        scenario: 'throughput',
        implementation,
        ...upstream,
        deployments: names,
        jobs: parameters.jobs,
        timeoutInMs,
        storage: { connectionString, container: `bench-tp-${implementation}`, jobsContainer: `bench-tp-${implementation}-jobs`, queue: `bench-tp-${implementation}` },
      },
    };
  });
}

export interface ThroughputRow {
  readonly implementation: ThroughputImplementation;
  readonly deployments: number;
  /** The deployments' quotas together, images per window. */
  readonly quotaSum: number;
  /** Accepted images per window, against the best any scheduler could do (see imagesPerWindow). */
  readonly imagesPerWindow: number | undefined;
  readonly ofQuota: number | undefined;
  readonly upstreamCalls: number;
  readonly upstream429: number;
  readonly share429: number;
  readonly failed: number;
  readonly failureCodes: Readonly<Record<string, number>>;
  readonly jobsCallingTwice: number;
  readonly jobsPayingTwice: number;
  readonly drainMs: number;
  /** The drain time a perfect scheduler would need: whole windows of the summed quota, plus one call. */
  readonly idealDrainMs: number;
  readonly recordsAgree: boolean | undefined;
}

/**
 * Images per window at the limit. Under sliding windows that admit `quotaSum` images together, no
 * scheduler can get N images accepted with less than (⌈N / quotaSum⌉ − 1) windows between the
 * first accepted call and the last: a full quota at once, then a full quota each time a window has
 * passed. The achieved rate is the quota sum scaled by that least span over the measured one, so a
 * perfect scheduler scores exactly the quota sum whatever N is.
 */
export function imagesPerWindow(acceptedAt: readonly number[], quotaSum: number, minuteMs: number): number | undefined {
  const leastSpan = (Math.ceil(acceptedAt.length / quotaSum) - 1) * minuteMs;
  const span = (acceptedAt.at(-1) ?? 0) - (acceptedAt[0] ?? 0);
  return leastSpan <= 0 || span <= 0 ? undefined : quotaSum * (leastSpan / span);
}

export function throughputRows(results: readonly ThroughputResult[], parameters: ThroughputParameters): ThroughputRow[] {
  return results.map((result) => {
    const quotaSum = result.deployments * parameters.quota;
    const perWindow = imagesPerWindow(result.acceptedAt, quotaSum, parameters.minuteMs);
    return {
      implementation: result.implementation,
      deployments: result.deployments,
      quotaSum,
      imagesPerWindow: perWindow,
      ofQuota: perWindow === undefined ? undefined : perWindow / quotaSum,
      upstreamCalls: result.upstreamCalls,
      upstream429: result.upstream429,
      share429: result.upstreamCalls === 0 ? 0 : result.upstream429 / result.upstreamCalls,
      failed: result.failed,
      failureCodes: result.failureCodes,
      jobsCallingTwice: result.jobsCallingTwice,
      jobsPayingTwice: result.jobsPayingTwice,
      drainMs: result.drainMs,
      idealDrainMs: (Math.ceil(result.jobs / quotaSum) - 1) * parameters.minuteMs + parameters.latencyMs,
      recordsAgree: result.upstreamCallsRecorded === undefined ? undefined : result.upstreamCallsRecorded === result.upstreamCalls,
    };
  });
}

export interface ThroughputCheck {
  readonly target: string;
  readonly value: number | undefined;
  readonly verdict: 'PASS' | 'MISS' | 'n/a';
}

/** The issue's targets, on the K-deployment run. */
export function throughputTargets(rows: readonly ThroughputRow[]): ThroughputCheck[] {
  const routed = rows.find((row) => row.implementation === 'routed');
  const check = (target: string, value: number | undefined, passes: (value: number) => boolean): ThroughputCheck => ({
    target,
    value,
    verdict: value === undefined ? 'n/a' : passes(value) ? 'PASS' : 'MISS',
  });
  return [
    check('routed: images per window ≥ 0.9 × the sum of the quotas', routed?.ofQuota, (value) => value >= 0.9),
    check('routed: failed jobs = 0', routed?.failed, (value) => value === 0),
    check('routed: jobs paying twice = 0', routed?.jobsPayingTwice, (value) => value === 0),
    check('routed: upstream 429s ≤ 5 % of upstream calls', routed === undefined ? undefined : routed.share429 * 100, (value) => value <= 5),
  ];
}

export function formatThroughput(rows: readonly ThroughputRow[], parameters: ThroughputParameters): string {
  const format = (value: number | undefined, decimals: number) => (value === undefined ? '—' : value.toFixed(decimals));
  const header = ['path', 'deployments', 'quota sum', 'images/window', 'of quota', 'calls', '429s', '429 %', 'failed', 'called twice', 'paid twice', 'drain (s)', 'ideal (s)'];
  const body = rows.map((row) => [
    row.implementation,
    String(row.deployments),
    String(row.quotaSum),
    format(row.imagesPerWindow, 1),
    format(row.ofQuota, 2),
    String(row.upstreamCalls),
    String(row.upstream429),
    format(row.share429 * 100, 1),
    String(row.failed),
    String(row.jobsCallingTwice),
    String(row.jobsPayingTwice),
    format(row.drainMs / 1000, 1),
    format(row.idealDrainMs / 1000, 1),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => (cells[column] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  const lines = [
    `Throughput: ${parameters.jobs} jobs at once; each deployment ${parameters.quota} images per "minute" of ${parameters.minuteMs} ms; upstream latency ${parameters.latencyMs} ms`,
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...body.map(line),
  ];
  for (const row of rows) {
    if (row.failed > 0) lines.push(`  ${row.implementation} failures: ${Object.entries(row.failureCodes).map(([code, n]) => `${n}× ${code}`).join(', ')}`);
    if (row.recordsAgree === false) lines.push(`  ${row.implementation}: the job records' upstreamCalls do not add up to the emulator's count`);
  }
  lines.push('', 'Throughput targets:');
  for (const target of throughputTargets(rows)) lines.push(`  ${target.verdict.padEnd(4)}  ${target.target}  (measured: ${format(target.value, 2)})`);
  return lines.join('\n');
}
