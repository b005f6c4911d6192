import { existsSync, readFileSync, readdirSync } from 'node:fs';
import Module from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';

import type { BindingMetadata, FunctionHandler, FunctionRegistration, HookRegistration } from './functions-core';
import { coreState } from './functions-core';

export type { BindingMetadata, FunctionHandler, FunctionRegistration, HookRegistration } from './functions-core';

/** Everything an app registered while it loaded: its functions and its `app.hook.*` callbacks. */
export interface CapturedApp {
  readonly functions: readonly FunctionRegistration[];
  readonly hooks: readonly HookRegistration[];
}

export const FUNCTIONS_CORE_MODULE = '@azure/functions-core';

/**
 * Runs `load` (which requires function files) and returns what they registered. The core module must
 * already be reachable: outside jest through {@link installFunctionsCore}, inside jest through
 * `jest.mock('@azure/functions-core', () => jest.requireActual('<path>/local-host/functions-core'), { virtual: true })`.
 * A file that was required before is cached and registers nothing the second time.
 */
export function captureFunctionApp(load: () => void): CapturedApp {
  const state = coreState();
  const firstFunction = state.functions.length;
  const firstHook = state.hooks.length;
  load();
  return { functions: state.functions.slice(firstFunction), hooks: state.hooks.slice(firstHook) };
}

/** {@link captureFunctionApp} without the hooks. */
export function captureFunctionRegistrations(load: () => void): FunctionRegistration[] {
  return [...captureFunctionApp(load).functions];
}

let uninstallCore: (() => void) | undefined;

/**
 * Makes `require('@azure/functions-core')` resolve to our recording core, as the Functions worker
 * does with its own. Call it before the app's first `app.*` call: `@azure/functions` looks the core up
 * once and stays in test mode for good if it is missing then. Returns the undo.
 */
export function installFunctionsCore(): () => void {
  if (uninstallCore) return uninstallCore;
  const corePath = require.resolve('./functions-core');
  type ResolveFilename = (this: unknown, request: string, ...rest: unknown[]) => string;
  // `_resolveFilename` is Node's internal resolver; there is no public hook for CommonJS on Node 20.
  const loader = Module as unknown as { _resolveFilename: ResolveFilename };
  const original = loader._resolveFilename;
  loader._resolveFilename = function resolveFunctionsCore(this: unknown, request: string, ...rest: unknown[]): string {
    return request === FUNCTIONS_CORE_MODULE ? corePath : original.call(this, request, ...rest);
  };
  uninstallCore = () => {
    loader._resolveFilename = original;
    uninstallCore = undefined;
  };
  return uninstallCore;
}

// ---- Views over the raw registrations ----

export interface TriggerBinding {
  readonly name: string;
  readonly binding: BindingMetadata;
}

/** The function's trigger binding (the one `in` binding whose type ends in `Trigger`). */
export function triggerOf(registration: FunctionRegistration): TriggerBinding {
  for (const [name, binding] of Object.entries(registration.bindings)) {
    if (/trigger$/i.test(binding.type)) return { name, binding };
  }
  throw new Error(`Function "${registration.name}" has no trigger binding.`);
}

/** Bindings of one type (e.g. `queue` outputs); binding names carry a hash suffix, types do not. */
export function bindingsOfType(registration: FunctionRegistration, type: string): TriggerBinding[] {
  return Object.entries(registration.bindings)
    .filter(([, binding]) => binding.type.toLowerCase() === type.toLowerCase())
    .map(([name, binding]) => ({ name, binding }));
}

/** Functions whose trigger has this type: `httpTrigger`, `queueTrigger`, `blobTrigger`, `eventGridTrigger`, ... */
export function functionsWithTrigger(registrations: readonly FunctionRegistration[], triggerType: string): FunctionRegistration[] {
  return registrations.filter((registration) => triggerOf(registration).binding.type.toLowerCase() === triggerType.toLowerCase());
}

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HttpFunction {
  readonly name: string;
  /** Without the `api/` prefix; the function name when the registration gave none (as the host does). */
  readonly route: string;
  /** Upper-case; empty means every method. */
  readonly methods: readonly string[];
  readonly authLevel: AuthLevel;
  readonly handler: FunctionHandler;
  readonly registration: FunctionRegistration;
}

export function httpFunctions(registrations: readonly FunctionRegistration[]): HttpFunction[] {
  return functionsWithTrigger(registrations, 'httpTrigger').map((registration) => {
    const { binding } = triggerOf(registration);
    const route = typeof binding['route'] === 'string' && binding['route'].trim() !== '' ? binding['route'].trim() : registration.name;
    const rawMethods = binding['methods'];
    const methods = Array.isArray(rawMethods) ? rawMethods.filter((m): m is string => typeof m === 'string').map((m) => m.toUpperCase()) : [];
    const rawLevel = typeof binding['authLevel'] === 'string' ? binding['authLevel'].toLowerCase() : 'function';
    if (rawLevel !== 'anonymous' && rawLevel !== 'function' && rawLevel !== 'admin') {
      throw new Error(`Function "${registration.name}" has an unknown authLevel "${rawLevel}".`);
    }
    return { name: registration.name, route: route.replace(/^\/+|\/+$/g, ''), methods, authLevel: rawLevel, handler: registration.handler, registration };
  });
}

// ---- Loading an app the way `func start` does ----

/** Expands `package.json` `main` (e.g. `dist/src/functions/*.js`); wildcards only in the file name. */
export function resolveFunctionFiles(projectRoot: string): { pattern: string; files: string[] } {
  const manifest: unknown = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'));
  const main: unknown = typeof manifest === 'object' && manifest !== null ? Reflect.get(manifest, 'main') : undefined;
  if (typeof main !== 'string' || main.trim() === '') {
    throw new Error(`package.json in ${projectRoot} has no "main"; the Functions host loads the app from it.`);
  }
  return { pattern: main, files: expandFilePattern(projectRoot, main) };
}

export function expandFilePattern(projectRoot: string, pattern: string): string[] {
  const absolute = resolve(projectRoot, pattern);
  const directory = dirname(absolute);
  const name = basename(absolute);
  if (/[*?[\]{}]/.test(directory)) throw new Error(`Only the file name may hold wildcards: "${pattern}".`);
  if (!/[*?]/.test(name)) return existsSync(absolute) ? [absolute] : [];
  if (!existsSync(directory)) return [];
  const matcher = new RegExp(
    `^${name
      .split('')
      .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  return readdirSync(directory, { withFileTypes: true })
    .filter((entry) => entry.isFile() && matcher.test(entry.name))
    .map((entry) => join(directory, entry.name))
    .sort();
}

export interface LoadedFunctionApp extends CapturedApp {
  readonly files: readonly string[];
}

/**
 * Loads the app's function files (from `package.json` `main`) with `requireFile` and returns what
 * they registered. Fails when nothing matches or nothing registered, with the likely reason.
 */
export function loadFunctionApp(projectRoot: string, requireFile: (path: string) => unknown): LoadedFunctionApp {
  const { pattern, files } = resolveFunctionFiles(projectRoot);
  if (files.length === 0) {
    throw new Error(`No function files match "${pattern}" in ${projectRoot}; run \`npm run build\` first.`);
  }
  const captured = captureFunctionApp(() => {
    for (const file of files) requireFile(file);
  });
  if (captured.functions.length === 0) {
    throw new Error(
      `Loading ${files.length} file(s) from "${pattern}" registered no function. Either they call no app.* method, or ` +
        `@azure/functions was loaded before ${FUNCTIONS_CORE_MODULE} was installed and switched to test mode.`,
    );
  }
  return { ...captured, files };
}
