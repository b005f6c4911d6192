import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

export interface MultipartFile {
  readonly field: string;
  readonly fileName: string;
  readonly contentType: string;
  readonly size: number;
  readonly content: readonly Uint8Array[];
}

const CRLF = Buffer.from('\r\n');

/**
 * A multipart/form-data body written from the files' own chunks: its length is known up front (so it
 * goes out with a Content-Length), and every `stream()` replays the same bytes for a retry without the
 * images ever being joined into one buffer.
 */
export class MultipartBody {
  readonly contentType: string;
  readonly length: number;
  private readonly pieces: readonly (Uint8Array | readonly Uint8Array[])[];

  constructor(fields: readonly (readonly [string, string])[], files: readonly MultipartFile[], boundary = `imagegen-${randomBytes(16).toString('hex')}`) {
    this.contentType = `multipart/form-data; boundary=${boundary}`;
    const pieces: (Uint8Array | readonly Uint8Array[])[] = [];
    for (const [name, value] of fields) {
      pieces.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quoted(name)}"\r\n\r\n${value}\r\n`, 'utf8'));
    }
    for (const file of files) {
      pieces.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${quoted(file.field)}"; filename="${quoted(file.fileName)}"\r\nContent-Type: ${file.contentType}\r\n\r\n`,
          'utf8',
        ),
        file.content,
        CRLF,
      );
    }
    pieces.push(Buffer.from(`--${boundary}--\r\n`, 'utf8'));
    this.pieces = pieces;
    this.length = pieces.reduce((sum, piece) => sum + (piece instanceof Uint8Array ? piece.length : piece.reduce((total, chunk) => total + chunk.length, 0)), 0);
  }

  /** A new stream over the body; each attempt of a request needs its own. */
  stream(): Readable {
    const pieces = this.pieces;
    function* chunks(): Generator<Uint8Array> {
      for (const piece of pieces) {
        if (piece instanceof Uint8Array) yield piece;
        else yield* piece;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }
}

// Names are ours and file names are already reduced to safe characters; this only guards the header
// syntax, escaping as the HTML form encoding does (parsers such as undici's turn it back).
function quoted(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
