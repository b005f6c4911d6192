/**
 * Our stand-in for `@azure/functions-core`, the module the Azure Functions Node worker injects into
 * the app. `@azure/functions` hands it every `app.http(...)`/`app.storageQueue(...)` registration
 * and every `app.hook.*` callback; without it the library drops them ("test mode"). This module only
 * records what it is given; the local host decides what to do with it.
 *
 * State lives on `globalThis` rather than in module scope: jest gives each test file (and each
 * `jest.isolateModules` block) its own copy of this module, and all copies must feed the same record.
 */

/** Binding metadata exactly as `@azure/functions` produced it (`type`, `direction` and the trigger's options). */
export interface BindingMetadata {
  readonly type: string;
  readonly direction?: string;
  readonly [option: string]: unknown;
}

/** What the worker would invoke: `(triggerInput, context) => result`. */
export type FunctionHandler = (...args: unknown[]) => unknown;

export interface FunctionRegistration {
  /** The name given to `app.http(name, ...)` and friends. */
  readonly name: string;
  /** Keyed by binding name; the library appends a hash to generated names, so look bindings up by `type`. */
  readonly bindings: Readonly<Record<string, BindingMetadata>>;
  readonly retryOptions?: unknown;
  readonly handler: FunctionHandler;
}

export interface HookRegistration {
  /** `appStart`, `appTerminate`, `preInvocation`, `postInvocation` or `log`. */
  readonly hookName: string;
  readonly callback: (context: unknown) => unknown;
}

export type SystemLogHandler = (level: string, category: string, message: string) => void;

interface CoreState {
  readonly functions: FunctionRegistration[];
  readonly hooks: HookRegistration[];
  programmingModel: unknown;
  systemLog: SystemLogHandler;
}

const STATE_KEY: unique symbol = Symbol.for('imagegen-functions.local-host.functions-core');
type GlobalWithCoreState = typeof globalThis & { [STATE_KEY]?: CoreState };

const defaultSystemLog: SystemLogHandler = (level, _category, message) => {
  // The library's own chatter ("HTTP streaming enabled.") is debug level; only problems are shown.
  if (level === 'warning' || level === 'error' || level === 'critical') console.error(`[functions] ${level}: ${message}`);
};

/** The shared record behind every copy of this module. */
export function coreState(): CoreState {
  const scope = globalThis as GlobalWithCoreState;
  scope[STATE_KEY] ??= { functions: [], hooks: [], programmingModel: undefined, systemLog: defaultSystemLog };
  return scope[STATE_KEY];
}

class Disposable {
  #dispose: (() => void) | undefined;
  constructor(dispose: () => void) {
    this.#dispose = dispose;
  }
  dispose(): void {
    this.#dispose?.();
    this.#dispose = undefined;
  }
}

// ---- The members `@azure/functions` 4.16.5 calls on the core module. ----

/** Matches the host version whose features we emulate well enough (HTTP streaming needs `log`). */
export const version = '4.x-local';

export function setProgrammingModel(programmingModel: unknown): void {
  coreState().programmingModel = programmingModel;
}

export function getProgrammingModel(): unknown {
  return coreState().programmingModel;
}

export function registerFunction(metadata: unknown, handler: unknown): Disposable {
  const registration = toRegistration(metadata, handler);
  const { functions } = coreState();
  functions.push(registration);
  return new Disposable(() => {
    const index = functions.indexOf(registration);
    if (index >= 0) functions.splice(index, 1);
  });
}

export function registerHook(hookName: string, callback: unknown): Disposable {
  if (typeof callback !== 'function') throw new TypeError(`The ${hookName} hook must be a function.`);
  const registration: HookRegistration = { hookName, callback: callback as HookRegistration['callback'] };
  const { hooks } = coreState();
  hooks.push(registration);
  return new Disposable(() => {
    const index = hooks.indexOf(registration);
    if (index >= 0) hooks.splice(index, 1);
  });
}

export function log(level: string, category: string, message: string): void {
  coreState().systemLog(level, category, message);
}

function toRegistration(metadata: unknown, handler: unknown): FunctionRegistration {
  if (typeof metadata !== 'object' || metadata === null) throw new TypeError('Function metadata must be an object.');
  const name: unknown = Reflect.get(metadata, 'name');
  const rawBindings: unknown = Reflect.get(metadata, 'bindings');
  if (typeof name !== 'string' || name === '') throw new TypeError('Function metadata needs a name.');
  if (typeof handler !== 'function') throw new TypeError(`Function "${name}" has no handler.`);
  if (typeof rawBindings !== 'object' || rawBindings === null) throw new TypeError(`Function "${name}" has no bindings.`);

  const bindings: Record<string, BindingMetadata> = {};
  for (const [bindingName, binding] of Object.entries(rawBindings)) {
    const type: unknown = typeof binding === 'object' && binding !== null ? Reflect.get(binding, 'type') : undefined;
    if (typeof type !== 'string') throw new TypeError(`Binding "${bindingName}" of function "${name}" has no type.`);
    bindings[bindingName] = { ...(binding as object), type };
  }
  const retryOptions: unknown = Reflect.get(metadata, 'retryOptions');
  return {
    name,
    bindings,
    ...(retryOptions === undefined ? {} : { retryOptions }),
    handler: handler as FunctionHandler,
  };
}
