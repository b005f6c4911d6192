import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { encodePng } from '../emulator/images/png';
import type { ConnectorPublisher } from '../src/http/openapi';
import { apiTarget, CONNECTOR_DESCRIPTION, CONNECTOR_TITLE, openApiDocument } from '../src/http/openapi';

/**
 * The folder a maker imports as a custom connector, or hands to `paconn create` / `pac connector
 * create`: the definition for one deployment, its properties (the function key as the API key
 * connection parameter), an icon and a short readme.
 */

/** The independent publishers' brand colour, which certification asks for. */
export const BRAND_COLOR = '#da3b01';
export const ICON_SIZE = 160;

export interface ConnectorPackageOptions extends ConnectorPublisher {
  /** The API's base URL, such as `https://myapp.azurewebsites.net/api`. */
  readonly apiBaseUrl: string;
  readonly outDir: string;
}

export const PACKAGE_FILES = ['apiDefinition.swagger.json', 'apiProperties.json', 'icon.png', 'README.md'] as const;

export async function writeConnectorPackage(options: ConnectorPackageOptions): Promise<readonly string[]> {
  const document = openApiDocument(apiTarget(options.apiBaseUrl), options);
  await mkdir(options.outDir, { recursive: true });
  const files: Record<(typeof PACKAGE_FILES)[number], string | Buffer> = {
    'apiDefinition.swagger.json': `${JSON.stringify(document, null, 2)}\n`,
    'apiProperties.json': `${JSON.stringify(apiProperties(options), null, 2)}\n`,
    'icon.png': await drawIcon(),
    'README.md': readme(document, options.apiBaseUrl),
  };
  for (const [name, content] of Object.entries(files)) await writeFile(join(options.outDir, name), content);
  return PACKAGE_FILES;
}

/** The connection asks for one thing: the function key, sent as `x-functions-key` (securityDefinitions.api_key). */
export function apiProperties(publisher: ConnectorPublisher) {
  const owner = publisher.contactName ?? 'Imagegen operator';
  return {
    properties: {
      connectionParameters: {
        api_key: {
          type: 'securestring',
          uiDefinition: {
            displayName: 'Function Key',
            description: 'The function key of the Imagegen function app.',
            tooltip: 'In the Azure portal: the function app, App keys, the default host key.',
            constraints: { tabIndex: 2, clearText: false, required: 'true' },
          },
        },
      },
      iconBrandColor: BRAND_COLOR,
      capabilities: [],
      // The host is fixed in the definition and the key is a plain header: no policy is needed.
      policyTemplateInstances: [],
      publisher: owner,
      stackOwner: owner,
    },
  };
}

/** A square in the brand colour with a white framed picture (a sun over hills): what the connector does, at a glance. */
export async function drawIcon(): Promise<Buffer> {
  const size = ICON_SIZE;
  const brand = [0xda, 0x3b, 0x01] as const;
  const pixels = new Uint8Array(size * size * 3);
  const paint = (x: number, y: number, [r, g, b]: readonly number[]) => {
    const at = (y * size + x) * 3;
    pixels[at] = r ?? 0;
    pixels[at + 1] = g ?? 0;
    pixels[at + 2] = b ?? 0;
  };
  const frame = { left: 32, top: 40, right: 128, bottom: 120 };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inFrame = x >= frame.left && x < frame.right && y >= frame.top && y < frame.bottom;
      const onBorder = inFrame && (x < frame.left + 6 || x >= frame.right - 6 || y < frame.top + 6 || y >= frame.bottom - 6);
      const sun = (x - 102) ** 2 + (y - 62) ** 2 <= 9 ** 2;
      const hill = y >= frame.bottom - 6 - Math.max(0, 34 - Math.abs(x - 62) * 0.8);
      paint(x, y, onBorder || (inFrame && (sun || hill)) ? [255, 255, 255] : brand);
    }
  }
  return encodePng({ width: size, height: size, channels: 3, pixels }, { level: 9 });
}

function readme(document: ReturnType<typeof openApiDocument>, apiBaseUrl: string): string {
  const operations = Object.values(document.paths).flatMap((item) =>
    Object.entries(item)
      .filter(([method]) => !method.startsWith('x-'))
      .map(([, operation]) => operation as { operationId: string; summary: string; description: string; 'x-ms-visibility'?: string }),
  );
  const visible = operations.filter((operation) => operation['x-ms-visibility'] !== 'internal');
  return `# ${CONNECTOR_TITLE}

${CONNECTOR_DESCRIPTION}

This package is for the deployment at \`${apiBaseUrl}\`.

## Prerequisites

- The Imagegen function app deployed (\`azd up\`), and its function key.
- Power Automate with premium connectors (custom connectors are premium).

## Supported operations

${visible.map((operation) => `- **${operation.summary}** (\`${operation.operationId}\`): ${operation.description}`).join('\n')}

The designer lists the models of the deployment and shows, for the model and output format chosen,
only the options it accepts.

## Obtaining credentials

Create the connection with the function key: in the Azure portal, the function app, *App keys*, the
default host key (or \`az functionapp keys list -g <group> -n <app>\`).

## Deployment instructions

- In Power Automate: *Custom connectors*, *New custom connector*, *Import an OpenAPI file*, choose
  \`apiDefinition.swagger.json\`; on the *General* tab upload \`icon.png\`; *Create connector*.
- Or with the CLI: \`paconn create --api-def apiDefinition.swagger.json --api-prop apiProperties.json --icon icon.png\`
  (or \`pac connector create --api-definition-file apiDefinition.swagger.json --api-properties-file apiProperties.json --icon-file icon.png\`).

## Known issues and limitations

- *Generate an image* and *Edit an image* run as jobs: the action waits, polling, until the images
  are ready (keep the action's asynchronous pattern on, the default).
- Image links expire after the app's link lifetime; *Get a job result* with the job ID and the job
  token from an earlier step gives fresh ones.
- Website and privacy policy default to the deployment's address; regenerate with
  \`--website\`, \`--privacy-policy\`, \`--contact-name\` and \`--contact-email\` before certification.
`;
}
