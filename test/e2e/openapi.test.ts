import SwaggerParser from '@apidevtools/swagger-parser';

import { httpFunctions } from '../../local-host/registry';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import { connectorRuleViolations, operations } from '../helpers/connector-rules';
import type { TestFunctionsHost } from '../helpers/functions-host';

// The definition this very deployment serves for "Import from URL": valid, by the connector rules,
// for the configured host, and only about routes the app serves. Every operation is run as the
// designer would in test/e2e/connector-designer.test.ts.

describe('GET /api/swagger.json', () => {
  let stack: AppStack | undefined;
  let host: TestFunctionsHost;
  let document: Record<string, unknown>;

  beforeAll(async () => {
    stack = await startAppStack();
    ({ host } = stack);
    const response = await fetch(`${host.url}/api/swagger.json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as Record<string, unknown>;
  });

  afterAll(() => stack?.close());

  it('is valid OpenAPI 2.0 for this host, by the connector rules', async () => {
    expect(document).toMatchObject({ swagger: '2.0', host: new URL(host.url).host, basePath: '/api', schemes: ['http'] });
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
    expect(connectorRuleViolations(document)).toEqual([]);
  });

  it('describes only routes the app serves, with the methods and the auth it serves them with', () => {
    const served = new Map<string, string>(httpFunctions(host.app.functions).flatMap((fn) => fn.methods.map((method) => [`${method} /${fn.route}`, fn.authLevel] as const)));

    for (const { path, method, operation } of operations(document)) {
      const route = `${method.toUpperCase()} ${path}`;
      expect([route, served.has(route)]).toEqual([route, true]);
      // An operation without the key (security: []) must be anonymous, and one with it must not be.
      expect([route, served.get(route) === 'anonymous']).toEqual([route, Array.isArray(operation['security']) && (operation['security'] as unknown[]).length === 0]);
    }
  });
});
