import { existsSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

import { manifestOf } from './inbox';
import type { ConnectedStack } from './stack';
import { callerPath, readBlob } from './stack';

export interface Downloaded {
  readonly path: string;
  readonly bytes: number;
}

/**
 * Saves results: every image of an inbox upload's manifest (`house.png`), one blob
 * (`images/<id>/0.png`, `outputs/...`) or a SAS link. `out` is a folder (default: where the command
 * was run) or, for one file, a file name.
 */
export async function download(connected: ConnectedStack, target: string, out: string | undefined): Promise<Downloaded[]> {
  const sources = await resolveSources(connected, target);
  const outPath = callerPath(out ?? '.');
  const intoFolder = out === undefined || out.endsWith('/') || (existsSync(outPath) && statSync(outPath).isDirectory()) || sources.length > 1;
  const saved: Downloaded[] = [];
  for (const source of sources) {
    const path = intoFolder ? join(outPath, source.fileName) : outPath;
    const content = await source.read();
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    saved.push({ path: relative(callerPath('.'), path) || path, bytes: content.length });
  }
  return saved;
}

interface Source {
  readonly fileName: string;
  read(): Promise<Buffer>;
}

async function resolveSources(connected: ConnectedStack, target: string): Promise<Source[]> {
  if (/^https?:\/\//i.test(target)) {
    const url = new URL(target);
    return [{ fileName: fileNameOf(decodeURIComponent(url.pathname)), read: () => fetchBytes(url) }];
  }
  const [first = '', ...rest] = target.split('/');
  const containers = Object.entries(connected.stack.containers) as [keyof ConnectedStack['stack']['containers'], string][];
  const named = containers.find(([, containerName]) => containerName === first);
  if (named && rest.length > 0) {
    const blob = connected.container(named[0]).getBlobClient(rest.join('/'));
    return [{ fileName: fileNameOf(target), read: () => readBlob(blob) }];
  }
  // Otherwise: an inbox upload, whose results its manifest lists.
  const { manifest, blobName } = await manifestOf(connected, target, undefined);
  if (manifest.status !== 'succeeded' || !manifest.images) throw new Error(`${target} has no results: its manifest (outputs/${blobName}) says ${manifest.status}${manifest.error ? ` (${manifest.error.code})` : ''}.`);
  const stem = target.slice(target.lastIndexOf('/') + 1).replace(/\.[^.]*$/, '');
  return manifest.images.map((image, index) => {
    const extension = image.blobName.slice(image.blobName.lastIndexOf('.'));
    const blob = connected.container('outputs').getBlobClient(image.blobName);
    return { fileName: `${stem}-edited-${index}${extension}`, read: () => readBlob(blob) };
  });
}

/** `images/3f1c.../0.png` → `3f1c...-0.png`: the last two segments, so several results do not collide. */
function fileNameOf(path: string): string {
  return path.split('/').filter(Boolean).slice(-2).join('-');
}

async function fetchBytes(url: URL): Promise<Buffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url.origin}${url.pathname} answered ${response.status}${response.status === 403 ? ' (the link expired or is not valid here)' : ''}.`);
  return Buffer.from(await response.arrayBuffer());
}
