import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type * as FunctionsCore from '../../local-host/functions-core';
import type { FunctionRegistration } from '../../local-host/registry';
import { httpFunctions, triggerOf } from '../../local-host/registry';
import { captureAppFunctions } from './app-registrations';
import { objectVariable, PROJECT_ROOT, readInfra, statementNamed, stringLiteral } from './bicep';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

const main = readInfra('main.bicep');
const storageNames = objectVariable(main, 'storageNames');
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

function output(name: string): string {
  return statementNamed(main, 'output', name).rest;
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

  it('subscribes the one Event Grid blob trigger the app registers, under the container it watches', () => {
    const eventGridTriggers = registrations.filter((registration) => {
      const { binding } = triggerOf(registration);
      return binding.type === 'blobTrigger' && binding['source'] === 'EventGrid';
    });
    const subscribed = stringLiteral(statementNamed(main, 'var', 'inboxFunctionName').rest.replace(/^=\s*/, ''));
    if (eventGridTriggers.length === 0) {
      throw new Error(`No function registers an Event Grid-sourced blob trigger; infra/main.bicep (inboxFunctionName) and postdeploy.sh expect "${subscribed}".`);
    }
    expect(eventGridTriggers.map((registration) => registration.name)).toEqual([subscribed]);

    // The hook reads these outputs: the function name and the container behind %INBOX_CONTAINER%.
    expect(output('INBOX_FUNCTION_NAME')).toBe('string = inboxFunctionName');
    expect(output('INBOX_CONTAINER')).toBe('string = storageNames.inbox');
    expect(objectVariable(main, 'baseAppSettings').get('INBOX_CONTAINER')).toBe('storageNames.inbox');
    expect(stringLiteral(storageNames.get('inbox') ?? '')).toBe('inbox');
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
