import SwaggerParser from '@apidevtools/swagger-parser';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BRAND_COLOR, ICON_SIZE, writeConnectorPackage } from '../../cli/connector-package';
import { sniffImage } from '../../src/domain/image-format';
import { connectorRuleViolations, operations } from '../helpers/connector-rules';

// `npm run connector` writes what a maker imports or hands to `paconn create`.

describe('the connector package', () => {
  let folder: string;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'connector-'));
    await writeConnectorPackage({ apiBaseUrl: 'https://images.contoso.com/imagegen/api', outDir: folder, privacyPolicy: 'https://contoso.com/privacy', contactEmail: 'images@contoso.com' });
  });

  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  const json = (name: string) => JSON.parse(readFileSync(join(folder, name), 'utf8')) as Record<string, unknown>;

  it('holds the definition, the properties, the icon and a readme', () => {
    expect(readdirSync(folder).sort()).toEqual(['README.md', 'apiDefinition.swagger.json', 'apiProperties.json', 'icon.png']);
  });

  it('has a valid definition for the given host, by the connector rules, with the publisher given', async () => {
    const definition = json('apiDefinition.swagger.json');

    expect(definition).toMatchObject({
      host: 'images.contoso.com',
      basePath: '/imagegen/api',
      schemes: ['https'],
      info: { contact: { email: 'images@contoso.com' } },
      'x-ms-connector-metadata': expect.arrayContaining([{ propertyName: 'Privacy policy', propertyValue: 'https://contoso.com/privacy' }]) as unknown,
    });
    await expect(SwaggerParser.validate(structuredClone(definition) as never)).resolves.toBeDefined();
    expect(connectorRuleViolations(definition)).toEqual([]);
  });

  it('asks the connection for the function key, sent as the API key the definition declares', () => {
    const properties = json('apiProperties.json')['properties'] as Record<string, Record<string, unknown>>;
    const definition = json('apiDefinition.swagger.json');

    expect(properties['connectionParameters']).toEqual({
      api_key: { type: 'securestring', uiDefinition: expect.objectContaining({ displayName: 'Function Key', constraints: { tabIndex: 2, clearText: false, required: 'true' } }) as unknown },
    });
    expect(definition['securityDefinitions']).toEqual({ api_key: { type: 'apiKey', in: 'header', name: 'x-functions-key' } });
    expect(properties['iconBrandColor']).toBe(BRAND_COLOR);
  });

  it('has a small square PNG icon, as the connector wizard takes', () => {
    const icon = readFileSync(join(folder, 'icon.png'));

    expect(sniffImage(icon)).toMatchObject({ type: 'png', width: ICON_SIZE, height: ICON_SIZE });
    expect(icon.length).toBeLessThan(100 * 1024);
  });

  it('names every operation a maker sees in its readme', () => {
    const readme = readFileSync(join(folder, 'README.md'), 'utf8');
    const visible = operations(json('apiDefinition.swagger.json')).filter(({ operation }) => operation['x-ms-visibility'] !== 'internal');

    expect(visible.length).toBeGreaterThan(5);
    for (const { operation } of visible) expect(readme).toContain(`(\`${String(operation['operationId'])}\`)`);
    expect(readme).toContain('paconn create --api-def apiDefinition.swagger.json --api-prop apiProperties.json --icon icon.png');
  });
});
