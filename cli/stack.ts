import { resolve } from 'node:path';

import { BlobServiceClient } from '@azure/storage-blob';
import type { BlobClient, ContainerClient } from '@azure/storage-blob';

import type { RunningStack } from '../local-host/running-stack';
import { readAll } from '../src/adapters/streams';
import { readRunningStack } from '../local-host/running-stack';
import { findProjectRoot, localStateDir } from '../local-host/settings';

/** The project this CLI belongs to, wherever it is called from. */
export const projectRoot = (): string => findProjectRoot(__dirname);

/** Paths on the command line are the caller's: `npm run` moves to the project root but says where it came from. */
export const callerPath = (path: string): string => resolve(process.env['INIT_CWD'] ?? process.cwd(), path);

export interface ConnectedStack {
  readonly stack: RunningStack;
  readonly container: (name: keyof RunningStack['containers']) => ContainerClient;
}

/** The stack `npm start` runs now, found through the state folder it writes into. */
export function connectToStack(): ConnectedStack {
  const stack = readRunningStack(localStateDir(projectRoot(), process.env));
  const { storageConnectionString } = stack;
  if (storageConnectionString === undefined) {
    throw new Error('The running stack does not use the local Azurite (ImagesStorage names another account), and this CLI only works with the local one.');
  }
  const service = BlobServiceClient.fromConnectionString(storageConnectionString);
  return { stack, container: (name) => service.getContainerClient(stack.containers[name]) };
}

/** A blob's bytes, in one GET (a blob being rewritten is never read half old, half new). */
export async function readBlob(blob: BlobClient): Promise<Buffer> {
  return readAll((await blob.download()).readableStreamBody);
}

/** A JSON blob, parsed; undefined when there is no such blob. */
export async function readJsonBlob(blob: BlobClient): Promise<unknown> {
  try {
    return JSON.parse((await readBlob(blob)).toString('utf8'));
  } catch (error: unknown) {
    if (error instanceof Error && 'statusCode' in error && error.statusCode === 404) return undefined;
    throw error;
  }
}
