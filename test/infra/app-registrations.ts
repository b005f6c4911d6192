import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import type { BindingMetadata, FunctionRegistration } from '../../local-host/registry';
import { captureFunctionRegistrations, triggerOf } from '../../local-host/registry';
import { PROJECT_ROOT } from './bicep-cli';

/**
 * The app's function registrations, captured from src/functions/* the way the Functions worker sees
 * them. The calling test file must route `@azure/functions-core` to the local host's recording core:
 * `jest.mock('@azure/functions-core', () => jest.requireActual('../../local-host/functions-core'), { virtual: true })`.
 */
export function captureAppFunctions(): FunctionRegistration[] {
  const dir = join(PROJECT_ROOT, 'src', 'functions');
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.ts'))
    .sort()
    .map((name) => join(dir, name));
  return captureFunctionRegistrations(() => {
    for (const file of files) jest.requireActual(file);
  });
}

/** Every `%NAME%` app-setting reference in a function's bindings (queue names, blob paths, …). */
export function settingReferences(registration: FunctionRegistration): string[] {
  const names = new Set<string>();
  for (const binding of Object.values(registration.bindings)) {
    for (const value of Object.values(binding)) {
      if (typeof value === 'string') for (const match of value.matchAll(/%([^%]+)%/g)) names.add(match[1] ?? '');
    }
  }
  return [...names];
}

/** The functions whose trigger binding has this type, with that binding. */
export function triggered(registrations: readonly FunctionRegistration[], type: string): { name: string; binding: BindingMetadata }[] {
  return registrations
    .map((registration) => ({ name: registration.name, binding: triggerOf(registration).binding }))
    .filter(({ binding }) => String(binding['type']).toLowerCase() === type.toLowerCase());
}
