import { resolve } from 'node:path';

import { BlobServiceClient } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';

import type { RunningStack } from '../local-host/running-stack';
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
