/**
 * `npm run connector -- --host <app host>`: writes the custom connector package for a deployment
 * (see connector-package.ts), ready to import or to hand to `paconn create`.
 */
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

import { writeConnectorPackage } from './connector-package';
import { callerPath } from './stack';

const USAGE = `usage: npm run -s connector -- --host <host> [--out <folder>] [publisher options]
       npm run -s connector -- --base-url <https://host/prefix> [--out <folder>] [publisher options]

  --host            the function app's host name, such as myapp.azurewebsites.net (https, /api)
  --base-url        or the public base URL (PUBLIC_BASE_URL) when callers reach the app elsewhere
  --out             the folder to write (default: connector)
  --website, --privacy-policy, --contact-name, --contact-email
                    the publisher's details (default: the deployment's own address)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        host: { type: 'string' },
        'base-url': { type: 'string' },
        out: { type: 'string' },
        website: { type: 'string' },
        'privacy-policy': { type: 'string' },
        'contact-name': { type: 'string' },
        'contact-email': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error: unknown) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { host, 'base-url': baseUrl } = values;
  if ((host === undefined) === (baseUrl === undefined)) fail('Give either --host or --base-url.');
  if (host !== undefined && !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host)) fail(`--host takes a host name such as myapp.azurewebsites.net, not "${host}".`);
  const base = baseUrl ?? `https://${host ?? ''}`;
  if (!URL.canParse(base) || !['https:', 'http:'].includes(new URL(base).protocol)) fail(`--base-url must be an http(s) URL, not "${base}".`);
  for (const name of ['website', 'privacy-policy'] as const) {
    const url = values[name];
    if (url !== undefined && !URL.canParse(url)) fail(`--${name} must be a URL, not "${url}".`);
  }
  const outDir = callerPath(values.out ?? 'connector');
  const files = await writeConnectorPackage({
    apiBaseUrl: `${base.replace(/\/+$/, '')}/api`,
    outDir,
    website: values.website,
    privacyPolicy: values['privacy-policy'],
    contactName: values['contact-name'],
    contactEmail: values['contact-email'],
  });
  const fromHere = relative(callerPath('.'), outDir);
  const shown = fromHere.startsWith('..') ? outDir : fromHere || '.';
  process.stdout.write(`wrote ${shown}/: ${files.join(', ')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
