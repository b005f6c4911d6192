import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { killWithParent } from './child-processes';
import { getFreePort, isPortListening } from './ports';

/** Azurite's well-known development account (public, documented, the same on every machine). */
export const DEV_ACCOUNT_NAME = 'devstoreaccount1';
export const DEV_ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface StartAzuriteOptions {
  /** Address the three services listen on; default 127.0.0.1. */
  host?: string;
  /** Keep data in this folder across runs; without it Azurite keeps everything in memory. */
  dataDir?: string;
  /** Default: a free port for each service. */
  blobPort?: number;
  queuePort?: number;
  tablePort?: number;
  /** Receives Azurite's own output, line by line. */
  log?: (line: string) => void;
  /** How long to wait for the three ports to accept connections; default 30 s. */
  startTimeoutInMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL; default 5 s. */
  stopGraceInMs?: number;
  /**
   * Serve HTTPS with this certificate and accept Entra ID bearer tokens (Azurite's `--oauth basic`,
   * which checks a token's claims but not its signature): what user-delegation SAS needs.
   */
  tls?: { readonly certPath: string; readonly keyPath: string };
}

export interface RunningAzurite {
  readonly connectionString: string;
  readonly blobEndpoint: string;
  readonly queueEndpoint: string;
  readonly tableEndpoint: string;
  readonly pid: number;
  /** Terminates Azurite (SIGTERM, then SIGKILL after the grace period); resolves once it has exited. */
  stop(): Promise<void>;
}

/** A connection string for the development account with explicit endpoints (ports are not the defaults). */
export function devStorageConnectionString(endpoints: { blobEndpoint: string; queueEndpoint: string; tableEndpoint: string }): string {
  return [
    `DefaultEndpointsProtocol=${new URL(endpoints.blobEndpoint).protocol.replace(':', '')}`,
    `AccountName=${DEV_ACCOUNT_NAME}`,
    `AccountKey=${DEV_ACCOUNT_KEY}`,
    `BlobEndpoint=${endpoints.blobEndpoint}`,
    `QueueEndpoint=${endpoints.queueEndpoint}`,
    `TableEndpoint=${endpoints.tableEndpoint}`,
    '',
  ].join(';');
}

/** True for `UseDevelopmentStorage=true` and for any connection string naming the development account. */
export function isDevelopmentStorage(connectionString: string): boolean {
  return /(^|;)\s*UseDevelopmentStorage\s*=\s*true\s*(;|$)/i.test(connectionString) || /(^|;)\s*AccountName\s*=\s*devstoreaccount1\s*(;|$)/i.test(connectionString);
}

// Runs in the child before Azurite: when our end of its stdin closes (we exited, even by SIGKILL),
// Azurite gets a SIGTERM instead of living on as an orphan. stdin is unref'd so it never keeps
// Azurite alive by itself once its servers have closed.
const PARENT_GUARD = `
const [entry, ...args] = process.argv.slice(1);
process.argv = [process.argv[0], entry, ...args];
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.on('error', () => {});
process.stdin.resume();
if (typeof process.stdin.unref === 'function') process.stdin.unref();
require(entry);
`;

const OUTPUT_TAIL_LINES = 40;

/** Starts Azurite (blob, queue, table) as a child process and resolves once all three ports accept connections. */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<RunningAzurite> {
  const host = options.host ?? '127.0.0.1';
  const connectHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const urlHost = connectHost.includes(':') ? `[${connectHost}]` : connectHost;
  const ports = await pickPorts(host, [options.blobPort, options.queuePort, options.tablePort]);
  const [blobPort, queuePort, tablePort] = ports;

  const entry = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
  const args = [
    '--silent',
    '--disableTelemetry', // otherwise Azurite phones Application Insights
    '--skipApiVersionCheck', // the storage SDK speaks a newer x-ms-version than Azurite 3.35 knows
    '--loose',
    '--blobHost', host, '--blobPort', String(blobPort),
    '--queueHost', host, '--queuePort', String(queuePort),
    '--tableHost', host, '--tablePort', String(tablePort),
    ...(options.tls ? ['--cert', options.tls.certPath, '--key', options.tls.keyPath, '--oauth', 'basic'] : []),
  ];
  // Azurite refuses --inMemoryPersistence together with --location, so in memory we only set its cwd.
  let cwd: string;
  let temporaryDir: string | undefined;
  if (options.dataDir !== undefined) {
    cwd = resolve(options.dataDir);
    mkdirSync(cwd, { recursive: true });
    args.push('--location', cwd);
  } else {
    temporaryDir = mkdtempSync(join(tmpdir(), 'azurite-'));
    cwd = temporaryDir;
    args.push('--inMemoryPersistence');
  }

  const child = spawn(process.execPath, ['-e', PARENT_GUARD, '--', entry, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  const releaseGuard = killWithParent(child);
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const removeTemporaryDir = (): void => {
    if (temporaryDir !== undefined) rmSync(temporaryDir, { recursive: true, force: true });
  };
  void exited.then(removeTemporaryDir);

  const tail: string[] = [];
  const onOutput = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split(/\r?\n/)) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
      options.log?.(line);
    }
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));

  const pid = child.pid;
  const describe = (): string => `Azurite (blob ${blobPort}, queue ${queuePort}, table ${tablePort})`;
  const output = (): string => (tail.length > 0 ? `\nAzurite said:\n  ${tail.join('\n  ')}` : '');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null && pid !== undefined) {
        // Keep our event loop alive until Azurite is gone: unref'd, it would let us exit mid-stop.
        child.ref();
        signal(pid, 'SIGTERM');
        const graceful = await Promise.race([exited.then(() => true), delay(options.stopGraceInMs ?? 5_000, false, { ref: false })]);
        if (!graceful) {
          signal(pid, 'SIGKILL');
          await exited;
        }
      }
      releaseGuard();
      removeTemporaryDir();
    })();
    return stopping;
  };

  try {
    if (pid === undefined) {
      await delay(0); // let the 'error' event carrying the reason arrive
      throw new Error(`Could not start ${describe()}: ${spawnError?.message ?? 'no process id'}`);
    }
    const deadline = Date.now() + (options.startTimeoutInMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${describe()} exited (${child.exitCode ?? child.signalCode}) before it was ready.${output()}`);
      }
      const listening = await Promise.all(ports.map((port) => isPortListening(port, connectHost, 500)));
      if (listening.every(Boolean)) break;
      if (Date.now() > deadline) {
        throw new Error(`${describe()} did not accept connections within ${options.startTimeoutInMs ?? 30_000} ms.${output()}`);
      }
      await delay(50);
    }
  } catch (error: unknown) {
    await stop();
    throw error;
  }

  // Only our own exit (or stop()) ends Azurite; it must not hold the parent's event loop open.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) unrefStream(stream);

  const scheme = options.tls ? 'https' : 'http';
  const endpoint = (port: number): string => `${scheme}://${urlHost}:${port}/${DEV_ACCOUNT_NAME}`;
  const endpoints = { blobEndpoint: endpoint(blobPort), queueEndpoint: endpoint(queuePort), tableEndpoint: endpoint(tablePort) };
  return { ...endpoints, connectionString: devStorageConnectionString(endpoints), pid, stop };
}

async function pickPorts(host: string, wanted: readonly (number | undefined)[]): Promise<[number, number, number]> {
  const chosen: number[] = [];
  for (const port of wanted) {
    let candidate = port ?? (await getFreePort(host));
    // The OS may hand the same free port out twice in a row; Azurite needs three different ones.
    while (port === undefined && (chosen.includes(candidate) || wanted.includes(candidate))) candidate = await getFreePort(host);
    chosen.push(candidate);
  }
  const [blob, queue, table] = chosen;
  if (blob === undefined || queue === undefined || table === undefined || new Set(chosen).size !== 3) {
    throw new Error(`Azurite needs three different ports; got ${chosen.join(', ')}.`);
  }
  return [blob, queue, table];
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error: unknown) {
    // ESRCH: it exited on its own in the meantime, which is what we wanted.
    if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
  }
}

function unrefStream(stream: unknown): void {
  if (typeof stream === 'object' && stream !== null && 'unref' in stream && typeof stream.unref === 'function') {
    (stream as { unref(): void }).unref();
  }
}
