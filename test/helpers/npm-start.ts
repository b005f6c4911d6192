import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { getFreePort } from '../../local-host/ports';

export const PROJECT_ROOT = join(__dirname, '..', '..');

/** Set by test/global-setup.ts: one id per jest run, so the test files share one build. */
export const TEST_RUN_ID_ENV = 'TEST_RUN_ID';

/**
 * `npm run build` once per jest run. Test files that run the compiled app may run in parallel
 * workers: a second tsc rewriting dist/ under a running host could hand it a half-written file, so
 * builds take a lock, and the first one of the run leaves a stamp the others find.
 */
export async function buildOnce(): Promise<void> {
  const runId = process.env[TEST_RUN_ID_ENV] ?? `pid-${process.pid}`;
  const stamp = join(PROJECT_ROOT, 'dist', '.test-run-build');
  const lock = join(PROJECT_ROOT, 'node_modules', '.cache', 'test-build.lock');
  mkdirSync(join(lock, '..'), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error: unknown) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
      if (Date.now() > deadline) throw new Error(`${lock} is still held after 3 minutes; remove it if no test run is building.`);
      await sleep(200);
    }
  }
  try {
    if (readText(stamp) === runId) return;
    execFileSync('npm', ['run', '-s', 'build'], { cwd: PROJECT_ROOT, stdio: 'ignore' });
    writeFileSync(stamp, runId);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Free loopback ports for everything `npm start` listens on, and the settings that ask for them. */
export async function freeStackPorts(): Promise<{ env: Record<string, string>; ports: StackPorts }> {
  const ports: StackPorts = { http: 0, emulator: 0, blob: 0, queue: 0, table: 0 };
  const taken = new Set<number>();
  for (const name of Object.keys(ports) as (keyof StackPorts)[]) {
    let port = await getFreePort();
    while (taken.has(port)) port = await getFreePort();
    taken.add(port);
    ports[name] = port;
  }
  return {
    ports,
    env: {
      PORT: String(ports.http),
      EMULATOR_PORT: String(ports.emulator),
      AZURITE_BLOB_PORT: String(ports.blob),
      AZURITE_QUEUE_PORT: String(ports.queue),
      AZURITE_TABLE_PORT: String(ports.table),
    },
  };
}

export interface StackPorts {
  http: number;
  emulator: number;
  blob: number;
  queue: number;
  table: number;
}

export interface NpmStartProcess {
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  readonly child: ChildProcess;
  /** SIGTERM, then waits for the exit. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartLikeNpmStartOptions {
  /** Environment on top of this process's. */
  readonly env: Readonly<Record<string, string>>;
  /** The project folder whose dist/local-host/main.js runs; default this project. */
  readonly projectRoot?: string;
  readonly cwd?: string;
}

/**
 * Runs what `npm start` runs after its build (`node dist/local-host/main.js`) and resolves once it
 * prints that it is ready. Call buildOnce() first. Always stop() it (afterAll).
 */
export async function startLikeNpmStart(options: StartLikeNpmStartOptions): Promise<NpmStartProcess> {
  const root = options.projectRoot ?? PROJECT_ROOT;
  const child = spawn(process.execPath, [join(root, 'dist', 'local-host', 'main.js')], {
    cwd: options.cwd ?? root,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    })();
    return stopping;
  };
  const deadline = Date.now() + 90_000;
  while (!output.includes('ready on')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`npm start did not get ready:\n${output}`);
    }
    await sleep(100);
  }
  return { output: () => output, child, stop };
}

/**
 * A throwaway copy of the project as `npm start` sees it (the build, package.json, host.json and a
 * link to node_modules), for runs with a local.settings.json of their own. Remove it when done.
 */
export function copyProjectForStart(localSettings?: unknown): { root: string; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), 'npm-start-project-'));
  cpSync(join(PROJECT_ROOT, 'dist'), join(root, 'dist'), { recursive: true });
  for (const file of ['package.json', 'host.json']) cpSync(join(PROJECT_ROOT, file), join(root, file));
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  if (localSettings !== undefined) writeFileSync(join(root, 'local.settings.json'), JSON.stringify(localSettings, null, 2));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}
