import { httpFunctions } from '../../local-host/registry';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { pollLikePowerAutomate } from '../helpers/power-automate';

// The OpenAPI 2.0 document a Power Automate custom connector is imported from: it must describe the
// routes the app really serves, in the connector conventions, and its default path must work.

interface Operation {
  operationId: string;
  summary: string;
  description: string;
  parameters: { name: string; in: string; default?: unknown; schema?: { properties?: Record<string, Record<string, unknown>> } }[];
  responses: Record<string, unknown>;
}

interface OpenApi {
  swagger: string;
  host: string;
  basePath: string;
  paths: Record<string, Record<string, Operation>>;
  definitions: Record<string, { properties?: Record<string, Record<string, unknown>> }>;
}

describe('GET /api/swagger.json', () => {
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;
  let document: OpenApi;

  beforeAll(async () => {
    stack = await startAppStack({ settings: { JOBS_RETRY_AFTER_SECONDS: '1' }, host: { runQueueTriggers: true } });
    ({ host } = stack);
    const response = await fetch(`${host.url}/api/swagger.json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as OpenApi;
  });

  afterAll(() => stack?.close());

  const operations = () => Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, operation })));

  it('is OpenAPI 2.0 for this host', () => {
    expect(document).toMatchObject({ swagger: '2.0', host: new URL(host.url).host, basePath: '/api' });
  });

  it('describes only routes the app serves, with the methods it serves them with', () => {
    const served = httpFunctions(host.app.functions).flatMap((fn) => fn.methods.map((method) => `${method} /${fn.route}`));

    for (const { path, method } of operations()) expect(served).toContain(`${method.toUpperCase()} ${path}`);
  });

  it('follows the connector conventions: PascalCase ids, summaries, descriptions, field summaries', () => {
    for (const { operation } of operations()) {
      expect(operation.operationId).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(operation.summary).toMatch(/^[A-Z][^.]{3,79}$/);
      expect(operation.description).toMatch(/\.$/);
      expect(operation.description).not.toBe(operation.summary);
      for (const parameter of operation.parameters) {
        for (const [name, property] of Object.entries(parameter.schema?.properties ?? {})) {
          expect([name, property['x-ms-summary']]).toEqual([name, expect.any(String)]);
        }
      }
    }
    for (const definition of Object.values(document.definitions)) {
      for (const property of Object.values(definition.properties ?? {})) {
        if (!('$ref' in property)) expect(property['x-ms-summary']).toEqual(expect.any(String));
      }
    }
  });

  it('resolves every reference', () => {
    const references = [...JSON.stringify(document).matchAll(/"\$ref":"#\/definitions\/([A-Za-z]+)"/g)].map((match) => match[1] ?? '');

    expect(references.length).toBeGreaterThan(0);
    for (const reference of references) expect(Object.keys(document.definitions)).toContain(reference);
  });

  it('runs GenerateImage as the connector calls it: the default async, 202, then the images at the Location', async () => {
    const generate = document.paths['/images/generations']?.['post'];
    const asyncDefault = generate?.parameters.find((parameter) => parameter.name === 'async')?.default;

    const start = await fetch(`${host.url}/api/images/generations?async=${String(asyncDefault)}`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a connector test', size: '1024x1024' }),
    });
    const { final } = await pollLikePowerAutomate(start);

    expect(start.status).toBe(202);
    expect(final.status).toBe(200);
  });

  it('describes a job with the fields a real job answer has, and its status link as the status route', async () => {
    const start = await fetch(`${host.url}/api/images/generations?async=true`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a described job' }),
    });
    const accepted = (await start.json()) as { statusUrl: string };
    const status = (await (await fetch(accepted.statusUrl)).json()) as Record<string, unknown>;
    await pollLikePowerAutomate(await fetch(start.headers.get('location') ?? ''));

    const job = document.definitions['Job']?.properties ?? {};
    for (const field of new Set([...Object.keys(accepted), ...Object.keys(status)])) expect(Object.keys(job)).toContain(field);
    expect(new URL(accepted.statusUrl).pathname).toMatch(/\/status$/);
    expect(job['statusUrl']?.['description']).toMatch(/\/status/);
  });
});
