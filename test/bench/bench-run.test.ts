import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ThroughputRow } from '../../bench/throughput';
import { buildOnce, PROJECT_ROOT } from '../helpers/npm-start';

// The bench is not a test of speed here: a tiny run of it, end to end, so that a change to the app's
// settings or wiring cannot leave `npm run bench` producing no result for a path nobody notices.

interface BenchResults {
  readonly errors: string[];
  readonly throughput: { readonly rows: ThroughputRow[] };
  readonly latency?: unknown;
}

describe('npm run bench, scaled down', () => {
  const folder = mkdtempSync(join(tmpdir(), 'bench-run-'));
  const resultsFile = join(folder, 'latest.json');
  let bench: ChildProcess | undefined;
  let exitCode: number | null = null;
  let output = '';

  beforeAll(async () => {
    await buildOnce();
    bench = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'bench', 'run.js')], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        BENCH_SCENARIOS: 'latency,throughput',
        BENCH_LATENCY_MS: '10',
        BENCH_ITERATIONS: '1',
        BENCH_WARMUP: '0',
        BENCH_THROUGHPUT_JOBS: '4',
        BENCH_BACKENDS: '2',
        BENCH_QUOTA: '3',
        BENCH_MINUTE_MS: '1000',
        BENCH_THROUGHPUT_LATENCY_MS: '50',
        BENCH_RESULTS_FILE: resultsFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bench.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    bench.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    [exitCode] = (await once(bench, 'exit')) as [number | null];
  }, 600_000);

  afterAll(async () => {
    // A bench cut short by the timeout still runs Azurite and two emulators: on SIGTERM it stops them.
    if (bench !== undefined && bench.exitCode === null && bench.signalCode === null) {
      const exited = once(bench, 'exit');
      bench.kill('SIGTERM');
      await exited;
    }
    rmSync(folder, { recursive: true, force: true });
  }, 60_000);

  it('gets a result from every scenario and path it runs', () => {
    // The output first: when the bench fails before it writes its results, it is what says why.
    const wroteResults = existsSync(resultsFile);
    const ok = exitCode === 0 && wroteResults;
    expect({ exitCode, wroteResults, output: ok ? '' : output }).toEqual({ exitCode: 0, wroteResults: true, output: '' });
    const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchResults;
    expect(results.errors).toEqual([]);
    expect(output).toContain('ours/baseline added latency over raw, n=1 p50');
    expect(results.throughput.rows.map((row) => [row.implementation, row.failed, row.upstreamCalls >= 4])).toEqual([
      ['today', 0, true],
      ['single', 0, true],
      ['routed', 0, true],
    ]);
  });
});
