import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { RunningBlobTriggers } from '../../local-host/blob-trigger';
import { startBlobTriggers } from '../../local-host/blob-trigger';
import { createContainers, createQueues } from '../../local-host/containers';
import type * as FunctionsCore from '../../local-host/functions-core';
import type { RunningFunctionsHost } from '../../local-host/http-host';
import { newJobTokenSecret } from '../../local-host/job-token-secret';
import { startFunctionsHost } from '../../local-host/http-host';
import type { QueueTriggerSettings, RunningQueueRunner } from '../../local-host/queue-runner';
import { readQueueTriggerSettings, startQueueRunner } from '../../local-host/queue-runner';
import type { CapturedApp } from '../../local-host/registry';
import { captureFunctionApp } from '../../local-host/registry';
import { bindingSettings, emulatorAppSettings, storageAppSettings } from '../../local-host/settings';
import { loadConfig } from '../../src/config';
import { testStorageConnectionString } from './azurite';

// Importing this helper is enough for a test file: `@azure/functions` finds our recording core
// instead of switching to test mode. (The factory only calls jest APIs: it runs before imports.)
jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

const PROJECT_ROOT = resolve(__dirname, '..', '..');

/** Every function file of the app, as TypeScript sources (jest compiles them). */
export function appFunctionModules(): string[] {
  const directory = join(PROJECT_ROOT, 'src', 'functions');
  return readdirSync(directory)
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .sort()
    .map((name) => join(directory, name));
}

export interface AppTestEnvOptions {
  /** The emulator's URL (`startEmulator().url`). */
  readonly emulatorUrl: string;
  /** Default: the run's shared Azurite. */
  readonly storageConnectionString?: string;
  /** Default: a fresh unique container is better; pass `uniqueContainerName('images')`. */
  readonly imagesContainer?: string;
  /** Default `emulator-key`. */
  readonly apiKey?: string;
}

/** The app settings `npm start` would use: the emulator for Azure OpenAI, Azurite for storage, a job-token secret of its own. */
export function appTestEnv(options: AppTestEnvOptions): Record<string, string> {
  return {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    JOB_TOKEN_SECRET: newJobTokenSecret(),
    ...emulatorAppSettings(options.emulatorUrl, options.apiKey),
    ...storageAppSettings(options.storageConnectionString ?? testStorageConnectionString()),
    ...(options.imagesContainer === undefined ? {} : { IMAGES_CONTAINER: options.imagesContainer }),
  };
}

export interface TestFunctionsHostOptions {
  /** Files that register functions; default every `src/functions/*.ts`. */
  readonly functionModules?: readonly string[];
  /** App settings for this host, set in process.env until close() (see below). */
  readonly env?: Readonly<Record<string, string>>;
  /** Default: a random key, returned as `functionKey`. */
  readonly functionKey?: string;
  /** Default: a random key, returned as `masterKey`. */
  readonly masterKey?: string;
  readonly maxRequestBodyBytes?: number;
  /** Create the containers the configuration names (as `npm start` does); default true. Skipped when the configuration is invalid. */
  readonly createContainers?: boolean;
  /** Receives the host's log lines as well as `logs`. Set TEST_HOST_LOGS=1 to print them. */
  readonly log?: (line: string) => void;
  /** Also run the Storage Queue triggers against Azurite, as `npm start` does; default false. */
  readonly runQueueTriggers?: boolean;
  /** For the queue triggers: overrides of host.json `extensions.queues`. */
  readonly queueTriggerSettings?: Partial<QueueTriggerSettings>;
  /**
   * Run the Event Grid blob triggers: `'webhook'` serves /runtime/webhooks/blobs only (deliver events
   * by hand), `'watch'` also turns new blobs in their containers into events, as `npm start` does.
   */
  readonly blobTriggers?: 'webhook' | 'watch';
}

export interface TestFunctionsHost {
  /** `http://127.0.0.1:PORT`; the functions are under `${url}/api/...`. */
  readonly url: string;
  readonly functionKey: string;
  /** The host's master key: what admin routes (GET /api/usage) take. */
  readonly masterKey: string;
  /** Request lines, function logs and failures, already redacted. */
  readonly logs: readonly string[];
  readonly app: CapturedApp;
  /** Stops the server and puts process.env back as it was. Always call it (afterAll / finally). */
  close(): Promise<void>;
}

/**
 * Serves the app's functions in-process over loopback, the way `npm start` does, for integration
 * tests against Azurite and the emulator.
 *
 * Settings: the app reads process.env on the first request and keeps what it built (its composition
 * root caches). So `env` is written into process.env before the functions load and stays there until
 * close(), and each host loads the function files in a fresh module registry (`jest.resetModules`):
 * two hosts in one file each build their own services from their own settings. The registry is reset
 * rather than isolated because the app loads its SDK modules lazily, on the first request: those
 * later imports must land in the registry the function files came from, or the app would see two
 * copies of its own error classes. Hosts that run at the same time share process.env and the
 * registry, so start the second only after the first has served a request.
 */
export async function startTestFunctionsHost(options: TestFunctionsHostOptions = {}): Promise<TestFunctionsHost> {
  const env = { ...options.env, ...bindingSettingsFor({ ...process.env, ...options.env }) };
  const previous = new Map(Object.keys(env).map((name) => [name, process.env[name]]));
  const restoreEnv = (): void => {
    for (const [name, value] of previous) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  Object.assign(process.env, env);

  const logs: string[] = [];
  const printLogs = process.env['TEST_HOST_LOGS'] === '1';
  const log = (line: string): void => {
    logs.push(line);
    options.log?.(line);
    if (printLogs) console.log(line);
  };

  let host: RunningFunctionsHost | undefined;
  let queueRunner: RunningQueueRunner | undefined;
  let blobTriggers: RunningBlobTriggers | undefined;
  try {
    if (options.createContainers ?? true) await createConfiguredContainers();
    const modules = options.functionModules ?? appFunctionModules();
    const app = captureFunctionApp(() => {
      jest.resetModules();
      for (const file of modules) jest.requireActual(file);
    });
    if (app.functions.length === 0) throw new Error(`No function registered by ${modules.join(', ')}.`);
    if (options.blobTriggers !== undefined) {
      blobTriggers = await startBlobTriggers({
        registrations: app.functions,
        settings: process.env,
        log,
        watch: options.blobTriggers === 'watch',
        pollIntervalInMs: 200,
        maxAttempts: 2,
      });
    }
    const runningBlobTriggers = blobTriggers;
    host = await startFunctionsHost({
      ...(runningBlobTriggers ? { blobWebhook: (name, eventType, body) => runningBlobTriggers.handleWebhook(name, eventType, body) } : {}),
      registrations: app.functions,
      hooks: app.hooks,
      functionAppDirectory: PROJECT_ROOT,
      log,
      ...(options.functionKey === undefined ? {} : { functionKey: options.functionKey }),
      ...(options.masterKey === undefined ? {} : { masterKey: options.masterKey }),
      ...(options.maxRequestBodyBytes === undefined ? {} : { maxRequestBodyBytes: options.maxRequestBodyBytes }),
    });
    // As `func start` does: the app builds its absolute links from the address it listens on.
    if (options.env?.['WEBSITE_HOSTNAME'] === undefined) {
      previous.set('WEBSITE_HOSTNAME', process.env['WEBSITE_HOSTNAME']);
      process.env['WEBSITE_HOSTNAME'] = new URL(host.url).host;
    }
    if (options.runQueueTriggers === true) {
      queueRunner = await startQueueRunner({
        registrations: app.functions,
        settings: process.env,
        triggerSettings: { ...readQueueTriggerSettings(PROJECT_ROOT), ...options.queueTriggerSettings },
        log,
        maxPollIntervalInMs: 200,
      });
    }
    const running = host;
    const runningQueues = queueRunner;
    let closed: Promise<void> | undefined;
    return {
      url: running.url,
      functionKey: running.functionKey,
      masterKey: running.masterKey,
      logs,
      app,
      close() {
        closed ??= Promise.allSettled([runningQueues?.close(), runningBlobTriggers?.close(), running.close()]).then(restoreEnv);
        return closed;
      },
    };
  } catch (error: unknown) {
    await queueRunner?.close();
    await blobTriggers?.close();
    await host?.close();
    restoreEnv();
    throw error;
  }
}

async function createConfiguredContainers(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch {
    return; // a test of a bad configuration: the app itself must report it
  }
  if (config.storage.connection.kind !== 'connection-string') return;
  await createContainers(config.storage.connection.connectionString, Object.values(config.storage.containers));
  await createQueues(config.storage.connection.connectionString, Object.values(config.storage.queues));
}

function bindingSettingsFor(settings: Record<string, string | undefined>): Record<string, string> {
  try {
    return bindingSettings(loadConfig(settings), settings);
  } catch {
    return {}; // a test of a bad configuration
  }
}
