import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

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
  const defaults: AppSettings = { JOBS_QUEUE: config.storage.queues.jobs, INBOX_CONTAINER: config.storage.containers.inbox };
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
