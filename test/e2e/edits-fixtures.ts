/**
 * Inputs and checks shared by the edit integration tests: a patterned input PNG whose every pixel
 * can be told apart, a mask with a transparent rectangle, and the expected result of the emulator's
 * checkable edit (mask alpha 0 → the prompt's edit colour, every other pixel unchanged).
 */
import { createHash } from 'node:crypto';

import { BlobServiceClient } from '@azure/storage-blob';

import { editColour } from '../../emulator/images/render';
import type { RunningEmulator } from '../../emulator/server';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { startAppStack } from '../helpers/app-stack';
import { makePng, patternSamples, readPng } from '../emulator/helpers';

export const WIDTH = 96;
export const HEIGHT = 64;
export const inputSamples = patternSamples(WIDTH, HEIGHT, 3);
export const inputPng = makePng(WIDTH, HEIGHT, 3, inputSamples, [0, 1, 2, 3, 4]);

/** The area to edit: x 10–39, y 20–49. */
export function inRectangle(x: number, y: number): boolean {
  return x >= 10 && x < 40 && y >= 20 && y < 50;
}

/** Opaque everywhere except the rectangle, where alpha is 0. `channels` 3 makes a mask without alpha. */
export function maskPng(width = WIDTH, height = HEIGHT, channels: 2 | 3 | 4 = 4): Buffer {
  const samples = new Uint8Array(width * height * channels).fill(255);
  if (channels !== 3) {
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (inRectangle(x, y)) samples[(y * width + x) * channels + channels - 1] = 0;
  }
  return makePng(width, height, channels, samples);
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The emulator's masked edit of `inputPng`: the rectangle painted with the prompt's colour, the rest exactly the input. */
export function expectedMaskedEdit(prompt: string, index = 0): Buffer {
  const colour = editColour(prompt, index);
  const expected = Uint8Array.from(inputSamples);
  for (let y = 0; y < HEIGHT; y++) for (let x = 0; x < WIDTH; x++) if (inRectangle(x, y)) expected.set(colour, (y * WIDTH + x) * 3);
  return Buffer.from(expected);
}

/** Downloads through the link itself (a real SAS over HTTP) and decodes the PNG independently. */
export async function downloadPng(url: string): Promise<ReturnType<typeof readPng>> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url.split('?')[0] ?? ''} answered ${response.status}`);
  return readPng(Buffer.from(await response.arrayBuffer()));
}

export interface EditStack {
  readonly emulator: RunningEmulator;
  readonly host: TestFunctionsHost;
  readonly imagesContainer: string;
  readonly inboxContainer: string;
  readonly blobs: BlobServiceClient;
  close(): Promise<void>;
}

/** The emulator, the real app in-process and Azurite, with its own images and inbox containers. */
export async function startEditStack(prefix: string, settings: Record<string, string> = {}): Promise<EditStack> {
  const imagesContainer = uniqueContainerName(`${prefix}-images`);
  const inboxContainer = uniqueContainerName(`${prefix}-inbox`);
  const stack = await startAppStack({ settings: { IMAGES_CONTAINER: imagesContainer, INBOX_CONTAINER: inboxContainer, ...settings } });
  return { ...stack, imagesContainer, inboxContainer, blobs: BlobServiceClient.fromConnectionString(testStorageConnectionString()) };
}
