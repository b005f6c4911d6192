import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type * as FunctionsCore from '../local-host/functions-core';
import { APP_SETTING_NAMES, loadConfig } from '../src/config';
import { captureAppFunctions, settingReferences } from './infra/app-registrations';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../local-host/functions-core'), { virtual: true });

// `func start` reads local.settings.json, which users copy from the example: it must hold a valid
// configuration, no setting the app does not know, and every setting a binding names (%JOBS_QUEUE%),
// or the host refuses to index the functions.
const HOST_SETTINGS = ['FUNCTIONS_WORKER_RUNTIME', 'AzureWebJobsStorage'];

describe('local.settings.example.json', () => {
  const values = (JSON.parse(readFileSync(join(__dirname, '..', 'local.settings.example.json'), 'utf8')) as { Values: Record<string, string> }).Values;

  it('is a valid configuration of the app', () => {
    expect(() => loadConfig(values)).not.toThrow();
  });

  it('sets only settings the app or the host reads', () => {
    const known = new Set<string>([...APP_SETTING_NAMES, ...HOST_SETTINGS]);
    expect(Object.keys(values).filter((name) => !known.has(name))).toEqual([]);
  });

  it('sets every app setting a binding refers to', () => {
    const referenced = captureAppFunctions().flatMap(settingReferences);
    expect(referenced.length).toBeGreaterThan(0);
    expect(referenced.filter((name) => !(name in values))).toEqual([]);
  });
});
