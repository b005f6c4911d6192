import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/**
 * Child processes the bench started, so that a failure, a timeout or Ctrl-C can end each of them by
 * its pid. Every child also watches its stdin: if we die without cleaning up (SIGKILL), the pipe
 * closes and it exits instead of living on.
 */
const running = new Set<ChildProcessWithoutNullStreams>();

// Runs before the entry in the child: exit once our end of its stdin closes. With -e, process.argv is
// already [node, entry, ...args], as if the entry had been started directly.
const PARENT_GUARD = `
const entry = process.argv[1];
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.on('error', () => {});
process.stdin.resume();
process.stdin.unref();
require(entry);
`;

function spawnNode(entry: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; nodeOptions?: readonly string[] } = {}): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), '-e', PARENT_GUARD, '--', entry, ...args], {
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

function isRunning(child: ChildProcessWithoutNullStreams): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function signalPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch (error: unknown) {
    // ESRCH: it is already gone, which is what we wanted.
    if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
  }
}

/** Sends `signal` to every child still running (used on Ctrl-C, where nothing can be awaited for long). */
export function signalAllChildren(signal: NodeJS.Signals): void {
  for (const child of running) if (isRunning(child)) signalPid(child.pid, signal);
}

async function stopChild(child: ChildProcessWithoutNullStreams, graceInMs: number): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalPid(child.pid, 'SIGTERM');
  const timer = setTimeout(() => signalPid(child.pid, 'SIGKILL'), graceInMs);
  await exited;
  clearTimeout(timer);
}

export interface RunningEmulator {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts `dist/emulator/main.js` on a free port and resolves with its URL once it prints its ready line. */
export function startEmulatorProcess(
  entry: string,
  settings: { latencyMs: number; apiKey: string; deployments: string; imageDetail: 'flat' | 'noise'; quotas?: string; minuteMs?: number },
  startTimeoutInMs = 30_000,
): Promise<RunningEmulator> {
  return startServiceProcess(
    entry,
    {
      EMULATOR_HOST: '127.0.0.1',
      EMULATOR_PORT: '0',
      EMULATOR_API_KEY: settings.apiKey,
      EMULATOR_DEPLOYMENTS: settings.deployments,
      EMULATOR_LATENCY_MS: String(settings.latencyMs),
      EMULATOR_IMAGE_DETAIL: settings.imageDetail,
      EMULATOR_QUOTAS: settings.quotas ?? '',
      EMULATOR_MINUTE_MS: settings.minuteMs === undefined ? '' : String(settings.minuteMs),
    },
    'The emulator',
    startTimeoutInMs,
  );
}

/** Starts `dist/bench/null-blob-main.js`; its URL is the blob endpoint of the development account. */
export function startNullBlobProcess(entry: string, startTimeoutInMs = 30_000): Promise<RunningEmulator> {
  return startServiceProcess(entry, {}, 'The null blob endpoint', startTimeoutInMs);
}

/** Starts a server process and resolves with the URL of its "ready at URL" line. */
async function startServiceProcess(entry: string, env: NodeJS.ProcessEnv, what: string, startTimeoutInMs: number): Promise<RunningEmulator> {
  const child = spawnNode(entry, [], { env: { ...process.env, ...env } });
  const stop = () => stopChild(child, 5_000);
  const output: string[] = [];
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} printed no ready line within ${startTimeoutInMs} ms.`)), startTimeoutInMs);
      const onData = (chunk: Buffer): void => {
        output.push(chunk.toString('utf8'));
        const match = /ready at (https?:\/\/[^\s)]+)/.exec(output.join(''));
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${output.join('').trim()}`));
      });
    });
    // From here on its output only matters if it grows without bound; drop it.
    child.stdout.removeAllListeners('data');
    child.stderr.removeAllListeners('data');
    child.stdout.resume();
    child.stderr.resume();
    return { url, pid: child.pid ?? 0, stop };
  } catch (error: unknown) {
    await stop();
    throw error;
  }
}

export interface WorkerRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly stdout: string;
  /** The last lines of stderr, for the report when something went wrong. */
  readonly stderrTail: string;
}

/** Runs `node <entry> '<json>'`, killing it (SIGKILL, by pid) if it outlives `timeoutInMs`. */
export async function runWorkerProcess(entry: string, args: unknown, timeoutInMs: number, nodeOptions: readonly string[]): Promise<WorkerRun> {
  const startedAt = performance.now();
  const child = spawnNode(entry, [JSON.stringify(args)], { nodeOptions });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signalPid(child.pid, 'SIGKILL');
  }, timeoutInMs);
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('close', (code, closeSignal) => resolve([code, closeSignal]));
  });
  clearTimeout(timer);
  const stderrLines = Buffer.concat(stderr).toString('utf8').trim().split('\n');
  return {
    exitCode,
    signal,
    timedOut,
    durationMs: performance.now() - startedAt,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderrTail: stderrLines.slice(-15).join('\n'),
  };
}
