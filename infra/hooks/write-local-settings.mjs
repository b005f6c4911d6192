// @ts-check
// azd `postprovision` hook: writes local.settings.json so `npm start` (or `func start`) runs the app
// on this machine against what was just provisioned: the images storage account and Azure OpenAI
// (with its extra backends), reached with your own Azure login (az login / VS Code / azd), which
// provisioning granted the same data roles as the app's identity. No key or secret is written, in
// any auth mode.
//
// The Functions host's own storage stays local (Azurite, `UseDevelopmentStorage=true`): your
// machine should not take leases or write keys in the deployed app's host account.
//
// An existing local.settings.json that this script did not write is left alone; the settings then
// go to .azure/<environment>/local.settings.json, with a note on how to use them.
//
// Usage: node infra/hooks/write-local-settings.mjs [projectRoot]   (inputs: the azd environment)

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Marks the files this script writes, so it may replace them on the next `azd provision`. */
export const GENERATED_BY = 'infra/hooks/write-local-settings.mjs';

const projectRoot = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..'));

/** azd environment value (a Bicep output) → app setting. */
const fromEnvironment = {
  ImagesStorage__blobServiceUri: 'AZURE_STORAGE_BLOB_ENDPOINT',
  ImagesStorage__queueServiceUri: 'AZURE_STORAGE_QUEUE_ENDPOINT',
  ImagesStorage__tableServiceUri: 'AZURE_STORAGE_TABLE_ENDPOINT',
  USAGE_TABLE: 'USAGE_TABLE',
  IMAGES_CONTAINER: 'IMAGES_CONTAINER',
  INBOX_CONTAINER: 'INBOX_CONTAINER',
  OUTPUTS_CONTAINER: 'OUTPUTS_CONTAINER',
  JOBS_CONTAINER: 'JOBS_CONTAINER',
  JOBS_QUEUE: 'JOBS_QUEUE',
  CALLBACKS_QUEUE: 'CALLBACKS_QUEUE',
  USAGE_QUEUE: 'USAGE_QUEUE',
  AZURE_OPENAI_ENDPOINT: 'AZURE_OPENAI_ENDPOINT',
  AZURE_OPENAI_DEPLOYMENTS: 'AZURE_OPENAI_DEPLOYMENTS',
  AZURE_OPENAI_DEFAULT_MODEL: 'AZURE_OPENAI_DEFAULT_MODEL',
  AZURE_OPENAI_BACKENDS: 'AZURE_OPENAI_BACKENDS',
};
/** Outputs that are empty when the deployment has none of the thing: the extra backends. */
const mayBeEmpty = new Set(['AZURE_OPENAI_BACKENDS']);

const missing = Object.values(fromEnvironment).filter((name) => !process.env[name] && !mayBeEmpty.has(name));
if (missing.length > 0) {
  console.error(`write-local-settings: ${missing.join(', ')} not set; these are Bicep outputs azd passes to hooks after provisioning.`);
  process.exit(1);
}

/** @type {Record<string, string>} */
const values = {
  FUNCTIONS_WORKER_RUNTIME: 'node',
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  // Token auth with your login even when the deployed app uses a key: the key stays in Key Vault.
  AZURE_OPENAI_AUTH: 'managed-identity',
};
for (const [setting, variable] of Object.entries(fromEnvironment)) {
  if (process.env[variable]) values[setting] = process.env[variable];
}

const content = `${JSON.stringify({ IsEncrypted: false, GeneratedBy: GENERATED_BY, Values: values }, null, 2)}\n`;

const target = join(projectRoot, 'local.settings.json');
let destination = target;
if (existsSync(target) && !isOurs(target)) {
  const environment = process.env['AZURE_ENV_NAME'] || 'default';
  destination = join(projectRoot, '.azure', environment, 'local.settings.json');
}
mkdirSync(dirname(destination), { recursive: true });
writeFileSync(destination, content);

if (destination === target) {
  console.log(`write-local-settings: wrote ${relative(process.cwd(), target) || target} for running locally against Azure (npm start).`);
} else {
  console.log(
    `write-local-settings: ${relative(process.cwd(), target)} exists and was not written by azd, so it was kept; ` +
      `the settings for Azure are in ${relative(process.cwd(), destination)} (copy it over local.settings.json to use them).`,
  );
}

/** @param {string} path */
function isOurs(path) {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8'));
    return typeof parsed === 'object' && parsed !== null && parsed.GeneratedBy === GENERATED_BY;
  } catch {
    return false;
  }
}
