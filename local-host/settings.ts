import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

import { DEFAULT_API_KEY } from '../emulator/server';
import type { AppConfig } from '../src/config';

/** App settings as the Functions host hands them to the worker: names to string values. */
export type AppSettings = Record<string, string>;

/** The key the emulator accepts unless told otherwise. */
export const EMULATOR_API_KEY = DEFAULT_API_KEY;
export const DEFAULT_EMULATOR_PORT = 8089;
export const DEFAULT_HTTP_PORT = 7071;
export const DEFAULT_AZURITE_PORTS = { blob: 10000, queue: 10001, table: 10002 } as const;

/** Every model the emulator serves, each under a deployment of the same name. */
export const EMULATOR_DEPLOYMENTS = 'gpt-image-1.5=gpt-image-1.5,gpt-image-1=gpt-image-1,gpt-image-1-mini=gpt-image-1-mini,gpt-image-2=gpt-image-2';
export const EMULATOR_DEFAULT_MODEL = 'gpt-image-1.5';

/** The Azure OpenAI settings that point the app at the local emulator. */
export function emulatorAppSettings(emulatorUrl: string, apiKey: string = EMULATOR_API_KEY): AppSettings {
  return {
    AZURE_OPENAI_ENDPOINT: emulatorUrl,
    AZURE_OPENAI_AUTH: 'key',
    AZURE_OPENAI_API_KEY: apiKey,
    AZURE_OPENAI_DEPLOYMENTS: EMULATOR_DEPLOYMENTS,
    AZURE_OPENAI_DEFAULT_MODEL: EMULATOR_DEFAULT_MODEL,
  };
}

/**
 * Trigger bindings name their queue and container through app settings (`%JOBS_QUEUE%`), which the
 * Functions host requires to be set. Locally, unset ones take the app's own defaults.
 */
export function bindingSettings(config: AppConfig, settings: Readonly<Record<string, string | undefined>>): AppSettings {
  const defaults: AppSettings = {
    JOBS_QUEUE: config.storage.queues.jobs,
    CALLBACKS_QUEUE: config.storage.queues.callbacks,
    USAGE_QUEUE: config.storage.queues.usage,
    INBOX_CONTAINER: config.storage.containers.inbox,
  };
  return Object.fromEntries(Object.entries(defaults).filter(([name]) => (settings[name] ?? '').trim() === ''));
}

/** The storage settings that point the app (and the host's own bindings) at one account. */
export function storageAppSettings(connectionString: string): AppSettings {
  return { ImagesStorage: connectionString, AzureWebJobsStorage: connectionString };
}

export interface LocalSettingsFile {
  readonly path: string;
  readonly values: AppSettings;
  /** `Host.LocalHttpPort`, which `func start` listens on. */
  readonly localHttpPort?: number;
}

/**
 * Reads `local.settings.json` like `func start`: `Values` become app settings. Missing file → undefined.
 * Values must be strings (numbers and booleans are accepted and turned into strings).
 */
export function readLocalSettings(projectRoot: string): LocalSettingsFile | undefined {
  const path = join(projectRoot, 'local.settings.json');
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error: unknown) {
    throw new Error(`${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${path} must hold a JSON object.`);
  if (Reflect.get(parsed, 'IsEncrypted') === true) {
    throw new Error(`${path} is encrypted (IsEncrypted: true); the local host reads plain settings only. Run \`func settings decrypt\` or recreate it from local.settings.example.json.`);
  }
  const rawValues: unknown = Reflect.get(parsed, 'Values') ?? {};
  if (typeof rawValues !== 'object' || rawValues === null || Array.isArray(rawValues)) throw new Error(`${path}: "Values" must be an object.`);
  const values: AppSettings = {};
  const problems: string[] = [];
  for (const [name, value] of Object.entries(rawValues)) {
    if (typeof value === 'string') values[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') values[name] = String(value);
    else problems.push(`"Values.${name}" must be a string`);
  }
  if (problems.length > 0) throw new Error(`${path}: ${problems.join('; ')}.`);

  const hostSection: unknown = Reflect.get(parsed, 'Host');
  const port: unknown = typeof hostSection === 'object' && hostSection !== null ? Reflect.get(hostSection, 'LocalHttpPort') : undefined;
  const localHttpPort = typeof port === 'number' ? port : typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : undefined;
  return { path, values, ...(localHttpPort === undefined ? {} : { localHttpPort }) };
}

/** Later layers win; empty strings count as set (as they do for the host). */
export function mergeSettings(...layers: readonly Readonly<Record<string, string | undefined>>[]): AppSettings {
  const merged: AppSettings = {};
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer)) {
      if (value !== undefined) merged[name] = value;
    }
  }
  return merged;
}

/** The nearest folder at or above `start` holding a package.json. */
export function findProjectRoot(start: string): string {
  let directory = start;
  for (;;) {
    if (existsSync(join(directory, 'package.json'))) return directory;
    const parent = dirname(directory);
    if (parent === directory) throw new Error(`No package.json found at or above ${start}.`);
    directory = parent;
  }
}

/** The local host's own knobs, read from the real environment (not from local.settings.json). */
export interface LocalHostEnv {
  /** `EMULATOR_PORT`. */
  readonly emulatorPort?: number;
  /** `AZURITE_BLOB_PORT`, `AZURITE_QUEUE_PORT`, `AZURITE_TABLE_PORT`: each one asked for explicitly. */
  readonly azuritePorts: { readonly blob?: number; readonly queue?: number; readonly table?: number };
  /** `AZURITE_DATA=memory`: start from empty storage and keep nothing. */
  readonly azuriteInMemory: boolean;
  /** `LOCAL_STATE_DIR`: Azurite's files and running-stack.json; default `.azurite/` in the project. */
  readonly stateDir: string;
}

/** Reads the local host's knobs; a malformed one fails start-up with every problem listed. */
export function readLocalHostEnv(env: Readonly<Record<string, string | undefined>>, projectRoot: string): LocalHostEnv {
  const problems: string[] = [];
  const port = (name: string): number | undefined => {
    const value = env[name]?.trim();
    if (value === undefined || value === '') return undefined;
    if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65_535) return Number(value);
    problems.push(`${name} must be a port number (1-65535), not "${value}"`);
    return undefined;
  };
  const emulatorPort = port('EMULATOR_PORT');
  const [blob, queue, table] = [port('AZURITE_BLOB_PORT'), port('AZURITE_QUEUE_PORT'), port('AZURITE_TABLE_PORT')];
  if (problems.length > 0) throw new Error(`${problems.join('; ')}.`);
  return {
    ...(emulatorPort === undefined ? {} : { emulatorPort }),
    azuritePorts: { ...(blob === undefined ? {} : { blob }), ...(queue === undefined ? {} : { queue }), ...(table === undefined ? {} : { table }) },
    azuriteInMemory: env['AZURITE_DATA']?.trim().toLowerCase() === 'memory',
    stateDir: localStateDir(projectRoot, env),
  };
}

/** Where `npm start` keeps its state, for the local host and the project CLI alike. */
export function localStateDir(projectRoot: string, env: Readonly<Record<string, string | undefined>>): string {
  const configured = env['LOCAL_STATE_DIR']?.trim();
  if (configured === undefined || configured === '') return join(projectRoot, '.azurite');
  return isAbsolute(configured) ? configured : join(projectRoot, configured);
}

/** Where a configured Azure OpenAI endpoint came from. */
export type SettingSource = 'environment' | 'local.settings.json';

/**
 * What to do about Azure OpenAI locally:
 * - `emulator`: start the emulator (on `port`, or the default port, or a free one when that is busy)
 *   and point the app at it;
 * - `emulator-at-endpoint`: the configured endpoint is a loopback address (the emulator's): start the
 *   emulator there unless something already listens, and leave the app's settings alone;
 * - `endpoint`: a real resource; no emulator.
 * `note` is a line to print when a setting the user made is overruled or ignored.
 */
export type EmulatorPlan =
  | { readonly kind: 'emulator'; readonly port?: number; readonly note?: string }
  | { readonly kind: 'emulator-at-endpoint'; readonly port: number; readonly note?: string }
  | { readonly kind: 'endpoint'; readonly note?: string };

export function planEmulator(endpoint: { readonly url: string; readonly source: SettingSource } | undefined, emulatorPort: number | undefined): EmulatorPlan {
  const port = emulatorPort === undefined ? {} : { port: emulatorPort };
  if (endpoint === undefined) return { kind: 'emulator', ...port };
  const endpointPort = loopbackPort(endpoint.url);
  if (endpointPort === undefined) {
    return {
      kind: 'endpoint',
      ...(emulatorPort === undefined ? {} : { note: `EMULATOR_PORT=${emulatorPort} is ignored: AZURE_OPENAI_ENDPOINT (${endpoint.source}) names ${endpoint.url}, so no emulator is started.` }),
    };
  }
  if (emulatorPort === undefined || emulatorPort === endpointPort) return { kind: 'emulator-at-endpoint', port: endpointPort };
  // The environment overrides local.settings.json everywhere else, so it does here too.
  if (endpoint.source === 'local.settings.json') {
    return { kind: 'emulator', port: emulatorPort, note: `EMULATOR_PORT=${emulatorPort} overrides AZURE_OPENAI_ENDPOINT ${endpoint.url} from local.settings.json: the emulator and the app use port ${emulatorPort}.` };
  }
  return {
    kind: 'emulator-at-endpoint',
    port: endpointPort,
    note: `EMULATOR_PORT=${emulatorPort} is ignored: AZURE_OPENAI_ENDPOINT=${endpoint.url} is set in the environment too, and the app calls that address.`,
  };
}

/** A loopback http URL's port, for "the configured endpoint is the emulator's address". */
function loopbackPort(endpoint: string): number | undefined {
  if (!URL.canParse(endpoint)) return undefined;
  const url = new URL(endpoint);
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) return undefined;
  return url.port === '' ? 80 : Number(url.port);
}
