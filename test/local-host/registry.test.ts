import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type * as FunctionsCore from '../../local-host/functions-core';
import type { CapturedApp } from '../../local-host/registry';
import {
  bindingsOfType,
  captureFunctionApp,
  expandFilePattern,
  functionsWithTrigger,
  httpFunctions,
  loadFunctionApp,
  triggerOf,
} from '../../local-host/registry';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

describe('function registry', () => {
  let app: CapturedApp;
  beforeAll(() => {
    app = captureFunctionApp(() => jest.requireActual('./fixtures/echo-functions'));
  });

  it('captures every registration with its handler and raw bindings', () => {
    expect(app.functions.map((fn) => fn.name)).toEqual([
      'echo', 'binary', 'stream', 'items-special', 'items-get', 'items-delete', 'ping', 'boom', 'logs', 'cookies', 'queue-worker', 'on-upload',
    ]);
    for (const fn of app.functions) expect(typeof fn.handler).toBe('function');
  });

  it('gives a typed view of the HTTP functions, with the host defaults filled in', () => {
    const byName = new Map(httpFunctions(app.functions).map((fn) => [fn.name, fn]));

    expect(byName.get('echo')).toMatchObject({ route: 'echo/{id}/{extra?}', methods: ['POST', 'PUT'], authLevel: 'function' });
    expect(byName.get('ping')).toMatchObject({ route: 'ping', methods: ['GET', 'POST'], authLevel: 'anonymous' });
    expect(byName.has('queue-worker')).toBe(false);
  });

  it('finds queue and blob triggers and their output bindings by type, whatever their generated names', () => {
    const [queueWorker] = functionsWithTrigger(app.functions, 'queueTrigger');
    const [onUpload] = functionsWithTrigger(app.functions, 'blobTrigger');
    if (queueWorker === undefined || onUpload === undefined) throw new Error('triggers not captured');

    expect(triggerOf(queueWorker).binding).toMatchObject({ type: 'queueTrigger', direction: 'in', queueName: 'edit-jobs', connection: 'AzureWebJobsStorage' });
    expect(triggerOf(onUpload).binding).toMatchObject({ type: 'blobTrigger', path: 'uploads/{name}', source: 'EventGrid' });
    expect(triggerOf(onUpload).name).toMatch(/^blobTrigger/);
    expect(bindingsOfType(onUpload, 'queue').map(({ binding }) => binding)).toEqual([
      expect.objectContaining({ type: 'queue', direction: 'out', queueName: 'edit-jobs' }),
    ]);
  });

  it('captures app hooks', () => {
    expect(app.hooks.map((hook) => hook.hookName)).toEqual(['appStart']);
  });

  it('records nothing for a file that was already loaded (require caches it)', () => {
    expect(captureFunctionApp(() => jest.requireActual('./fixtures/echo-functions')).functions).toEqual([]);
  });
});

describe('loading an app from package.json main', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'function-app-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('expands a wildcard in the file name only, in a stable order', () => {
    for (const name of ['b.js', 'a.js', 'a.js.map', 'notes.txt']) writeFileSync(join(dir, name), '');

    expect(expandFilePattern(dir, '*.js')).toEqual([join(dir, 'a.js'), join(dir, 'b.js')]);
    expect(expandFilePattern(dir, 'missing/*.js')).toEqual([]);
    expect(() => expandFilePattern(dir, '*/functions/*.js')).toThrow(/Only the file name/);
  });

  it('says to build when nothing matches main', () => {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ main: 'dist/src/functions/*.js' }));

    expect(() => loadFunctionApp(dir, () => undefined)).toThrow(/No function files match "dist\/src\/functions\/\*\.js".*npm run build/);
  });

  it('says why when the files register nothing', () => {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ main: '*.js' }));
    writeFileSync(join(dir, 'empty.js'), '');

    expect(() => loadFunctionApp(dir, () => undefined)).toThrow(/registered no function/);
  });
});
