import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { z } from 'zod';

import { sniffImage } from '../src/domain/image-format';
import { isTicketInputName, manifestName, outputPrefix } from '../src/domain/inbox-edits';
import type { ConnectedStack } from './stack';
import { callerPath, readJsonBlob } from './stack';

/** The request fields an upload may carry in its metadata, as the CLI's options name them. */
export const REQUEST_OPTIONS = ['prompt', 'model', 'n', 'size', 'quality', 'output_format', 'background', 'input_fidelity'] as const;

const manifestSchema = z.looseObject({
  status: z.enum(['succeeded', 'failed', 'retrying', 'queued']),
  images: z.array(z.looseObject({ blobName: z.string() })).optional(),
  error: z.looseObject({ code: z.string(), message: z.string() }).optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;

/** A manifest found where the app writes it: the outputs container, under the upload's name and version. */
export interface FoundManifest {
  readonly blobName: string;
  readonly manifest: Manifest;
}

export interface PutOptions {
  /** The blob's name in the inbox. */
  readonly name: string;
  readonly request: Partial<Record<(typeof REQUEST_OPTIONS)[number], string>>;
  readonly wait: boolean;
  readonly timeoutInMs: number;
  readonly print: (line: string) => void;
}

/** Uploads a file into the inbox with its request in the metadata; with `wait`, returns its final manifest. */
export async function putIntoInbox(connected: ConnectedStack, file: string, options: PutOptions): Promise<FoundManifest | undefined> {
  const bytes = await readFile(callerPath(file));
  const { name } = options;
  const sniffed = sniffImage(bytes.subarray(0, 64 * 1024));
  const contentType = typeof sniffed === 'string' ? (name.endsWith('.json') ? 'application/json' : 'application/octet-stream') : sniffed.contentType;
  const metadata = Object.fromEntries(Object.entries(options.request).flatMap(([key, value]) => (value === undefined ? [] : [[key, metadataValue(value)]])));
  const inbox = connected.container('inbox');
  const uploaded = await inbox.getBlockBlobClient(name).uploadData(bytes, { metadata, blobHTTPHeaders: { blobContentType: contentType } });
  const etag = uploaded.etag ?? '';
  options.print(`uploaded ${inbox.containerName}/${name} (${bytes.length} bytes, version ${etag})`);
  if (isTicketInputName(name)) {
    options.print(`${name} is under a '_' folder: an input for tickets, not edited on its own`);
    return undefined;
  }
  if (!options.wait) {
    options.print(`its manifest will be outputs/${manifestName(outputPrefix(name, etag))}; \`npm run -s imagegen -- manifest ${name} --wait\` waits for it`);
    return undefined;
  }
  return waitForManifest(connected, name, etag, options.timeoutInMs, options.print);
}

/** The manifest of the upload's current version; with `wait`, once the edit has ended. */
export async function manifestOf(connected: ConnectedStack, name: string, wait: { readonly timeoutInMs: number; readonly print: (line: string) => void } | undefined): Promise<FoundManifest> {
  const { blobName, etag } = await locateManifest(connected, name, undefined);
  if (wait) return waitForManifest(connected, name, etag, wait.timeoutInMs, wait.print);
  const manifest = await readManifest(connected, blobName);
  if (!manifest) throw new Error(`${name} has no manifest yet (outputs/${blobName}); its edit may still be running: add --wait.`);
  return { blobName, manifest };
}

/**
 * Where the manifest of an upload version (by default the current one) is. The app records it on the
 * upload once it is done (`imagegen_output`): for an upload identical to an earlier one, that is the
 * earlier one's folder, since its edit is the answer. Until then it is the version's own folder.
 */
async function locateManifest(connected: ConnectedStack, name: string, version: string | undefined): Promise<{ blobName: string; etag: string }> {
  const inbox = connected.container('inbox');
  try {
    const properties = await inbox.getBlobClient(name).getProperties();
    const etag = version ?? properties.etag ?? '';
    return { blobName: manifestName(properties.metadata?.['imagegen_output'] ?? outputPrefix(name, etag)), etag };
  } catch (error: unknown) {
    if (error instanceof Error && 'statusCode' in error && error.statusCode === 404) throw new Error(`There is no ${inbox.containerName}/${name}.`, { cause: error });
    throw error;
  }
}

async function waitForManifest(connected: ConnectedStack, name: string, etag: string, timeoutInMs: number, print: (line: string) => void): Promise<FoundManifest> {
  const deadline = Date.now() + timeoutInMs;
  let reported: string | undefined;
  for (;;) {
    const { blobName } = await locateManifest(connected, name, etag);
    const manifest = await readManifest(connected, blobName);
    if (manifest && manifest.status !== 'retrying' && manifest.status !== 'queued') return { blobName, manifest };
    if (manifest && reported !== manifest.status) {
      print(
        manifest.status === 'queued'
          ? 'the upstream has no room for the edit now: it waits in the jobs queue and runs when there is...'
          : `the edit failed for now (${manifest.error?.code ?? 'unknown'}) and is retried...`,
      );
      reported = manifest.status;
    }
    if (Date.now() > deadline) {
      throw new Error(`No final manifest for ${name} at outputs/${blobName} after ${Math.round(timeoutInMs / 1000)} s: is the inbox trigger running? See npm start's output.`);
    }
    await sleep(250);
  }
}

async function readManifest(connected: ConnectedStack, blobName: string): Promise<Manifest | undefined> {
  const json = await readJsonBlob(connected.container('outputs').getBlobClient(blobName));
  return json === undefined ? undefined : manifestSchema.parse(json);
}

/** Metadata is ASCII; the app decodes percent-encoded values, so anything else travels encoded. */
function metadataValue(value: string): string {
  return /[^\x20-\x7e]|%/.test(value) ? encodeURIComponent(value) : value;
}
