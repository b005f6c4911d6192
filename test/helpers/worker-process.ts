import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A queue worker of the app in its own process (see worker-process/main.ts). */
export interface WorkerProcess {
  readonly pid: number;
  /** Everything it printed so far, line by line. */
  readonly lines: readonly string[];
  /** Kills it with SIGKILL, as a crashed instance dies: no cleanup, no lease given back. */
  crash(): Promise<void>;
  /** Stops it if it still runs (SIGTERM). Always call it (finally / afterAll). */
  stop(): Promise<void>;
}

const ROOT = join(__dirname, 'worker-process');

/** Starts a worker process with these app settings on top of the environment and waits until it polls its queue. */
export async function startWorkerProcess(settings: Readonly<Record<string, string>>, readyTimeoutInMs = 60_000): Promise<WorkerProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--require', join(ROOT, 'register.cjs'), join(ROOT, 'main.ts')], {
    env: { ...process.env, ...settings },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = once(child, 'exit');
  const signal = async (name: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(name);
    await exited;
  };

  const until = Date.now() + readyTimeoutInMs;
  while (!lines.some((line) => line.startsWith('worker ready'))) {
    if (child.exitCode !== null || Date.now() > until) {
      await signal('SIGKILL');
      throw new Error(`The worker process did not get ready:\n${lines.join('\n')}`);
    }
    await sleep(50);
  }
  return { pid: child.pid ?? 0, lines, crash: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}
