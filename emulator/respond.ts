/**
 * Writing large bodies without building them: a body is a list of pieces, text or bytes to be sent as
 * base64, written chunk by chunk with backpressure. Megabyte images therefore never become one giant
 * string, and a client that reads slowly slows the emulator down instead of filling its memory.
 */
import type { ServerResponse } from 'node:http';

export type BodyPiece = string | { readonly base64: Uint8Array };

// A multiple of 3 bytes, so that each chunk's base64 has no padding and the chunks simply concatenate.
const BASE64_CHUNK_BYTES = 3 * 16 * 1024;

export function bodyLength(pieces: readonly BodyPiece[]): number {
  let total = 0;
  for (const piece of pieces) {
    total += typeof piece === 'string' ? Buffer.byteLength(piece) : 4 * Math.ceil(piece.base64.length / 3);
  }
  return total;
}

function* chunks(pieces: readonly BodyPiece[]): Generator<string | Buffer> {
  for (const piece of pieces) {
    if (typeof piece === 'string') {
      yield piece;
      continue;
    }
    const bytes = Buffer.from(piece.base64.buffer, piece.base64.byteOffset, piece.base64.byteLength);
    for (let start = 0; start < bytes.length; start += BASE64_CHUNK_BYTES) {
      yield bytes.subarray(start, start + BASE64_CHUNK_BYTES).toString('base64');
    }
  }
}

function waitForDrainOrClose(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

function writeAndFlush(response: ServerResponse, chunk: string | Buffer): Promise<void> {
  return new Promise((resolve) => response.write(chunk, () => resolve()));
}

/**
 * Writes the pieces (headers must already be set). With `stopAfterBytes`, writes only that many bytes,
 * waits until they are handed to the socket, and returns false so the caller can break the connection.
 * Returns false as well when the client went away.
 */
export async function writePieces(response: ServerResponse, pieces: readonly BodyPiece[], stopAfterBytes?: number): Promise<boolean> {
  let written = 0;
  for (const chunk of chunks(pieces)) {
    if (response.destroyed) return false;
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (stopAfterBytes !== undefined && written + size >= stopAfterBytes) {
      const part = Buffer.from(chunk).subarray(0, stopAfterBytes - written);
      await writeAndFlush(response, part);
      return false;
    }
    written += size;
    if (!response.write(chunk)) await waitForDrainOrClose(response);
  }
  return !response.destroyed;
}
