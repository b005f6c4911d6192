import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type * as FunctionsCore from '../../local-host/functions-core';
import type { FunctionRegistration } from '../../local-host/registry';
import { httpFunctions, triggerOf } from '../../local-host/registry';
import { describeWithTool } from '../helpers/system-tools';
import { captureAppFunctions } from './app-registrations';
import { azdEnvironment, compileMain, PROJECT_ROOT, snapshotFor } from './bicep-cli';
import { Deployment } from './deployment';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

const registrations = captureAppFunctions();
const byName = new Map(registrations.map((registration) => [registration.name, registration]));

/** The registration, or a failure that says what is missing and why the infra needs it. */
function requireFunction(name: string, why: string): FunctionRegistration {
  const registration = byName.get(name);
  if (!registration) {
    throw new Error(`Function "${name}" is not registered by src/functions/* (found: ${[...byName.keys()].join(', ')}). ${why}`);
  }
  return registration;
}

describe('function names shared by the code, the Bicep and the postdeploy hook', () => {
  it('registers jobs-worker: a queue trigger on %JOBS_QUEUE% through the ImagesStorage connection', () => {
    const worker = requireFunction(
      'jobs-worker',
      'The Bicep creates the job queue (JOBS_QUEUE) and grants Storage Queue Data Contributor for it; without this worker queued jobs are never run.',
    );
    expect(triggerOf(worker).binding).toMatchObject({ type: 'queueTrigger', queueName: '%JOBS_QUEUE%', connection: 'ImagesStorage' });
  });

  it('registers inbox-edit: an Event Grid-sourced blob trigger on %INBOX_CONTAINER%/{name} through ImagesStorage', () => {
    const inbox = requireFunction(
      'inbox-edit',
      'infra/hooks/postdeploy.sh subscribes Host.Functions.inbox-edit to the inbox container; without it `azd deploy` fails in the hook.',
    );
    expect(triggerOf(inbox).binding).toMatchObject({ type: 'blobTrigger', source: 'EventGrid', path: '%INBOX_CONTAINER%/{name}', connection: 'ImagesStorage' });
  });

  it('keeps the HTTP functions the docs call', () => {
    const routes = new Map(httpFunctions(registrations).map((fn) => [fn.route, fn]));
    expect(routes.get('images/generations')).toMatchObject({ name: 'images-generate', methods: ['POST'], authLevel: 'function' });
    expect(routes.get('health')).toMatchObject({ name: 'health-get', authLevel: 'anonymous' });

    const docs = readFileSync(join(PROJECT_ROOT, 'docs', 'deploy.md'), 'utf8');
    const called = [...docs.matchAll(/\/api\/([a-z0-9/-]+)/g)].map((match) => match[1] ?? '');
    expect(called.length).toBeGreaterThan(0);
    expect(called.filter((route) => !routes.has(route))).toEqual([]);
  });
});

describeWithTool('bicep', 'the function the postdeploy hook subscribes (bicep snapshot)', (bicep) => {
  let deployed: Deployment;
  beforeAll(async () => {
    const { template } = await compileMain(bicep);
    const environment = azdEnvironment();
    const result = await snapshotFor(bicep, template, environment);
    if (!result.ok) throw new Error(`bicep snapshot failed:\n${result.run.stderr}`);
    deployed = new Deployment(result.snapshot, environment.principal.id);
  }, 120_000);

  it('is the one Event Grid blob trigger the app registers, on the container it watches', () => {
    const eventGridTriggers = registrations.filter((registration) => {
      const { binding } = triggerOf(registration);
      return binding.type === 'blobTrigger' && binding['source'] === 'EventGrid';
    });
    const outputs = deployed.outputs();
    expect(eventGridTriggers.map((registration) => registration.name)).toEqual([outputs['INBOX_FUNCTION_NAME']]);
    // The hook reads these outputs: the function name and the container behind %INBOX_CONTAINER%.
    expect(outputs['INBOX_CONTAINER']).toBe(deployed.appSettings()['INBOX_CONTAINER']);
    expect(outputs['INBOX_CONTAINER']).toBe('inbox');
  });
});
