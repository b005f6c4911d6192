/**
 * Reads an images API response body (`{"created":…,"data":[{"b64_json":"…"},…],"usage":…}`) as it
 * arrives, handing out each `data[i].b64_json` string in slices instead of building it, so a response of
 * ten 4 MB strings never exists in memory at once. Everything else (the "skeleton", with the image
 * strings emptied) is kept, parsed and validated when the body ends.
 */
export type ScanEvent =
  | { readonly kind: 'image-start'; readonly index: number }
  | { readonly kind: 'image-base64'; readonly index: number; readonly data: Buffer }
  | { readonly kind: 'image-end'; readonly index: number };

export class MalformedResponseError extends Error {}

type Frame =
  | { type: 'object'; key: string | undefined; expectingKey: boolean }
  | { type: 'array'; index: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SLASH = 0x2f;
const KEY_LIMIT = 256;

export class ImagesResponseScanner {
  private readonly stack: Frame[] = [];
  private readonly skeleton: Buffer[] = [];
  private skeletonBytes = 0;
  private inString: 'key' | 'value' | 'image' | undefined;
  private escaped = false;
  private key = '';
  private imageIndex = -1;
  private finished = false;

  constructor(private readonly maxSkeletonBytes = 1024 * 1024) {}

  /** Scans one chunk of the body; the returned slices point into `chunk` and are valid while it is. */
  push(chunk: Buffer): ScanEvent[] {
    const events: ScanEvent[] = [];
    let copyFrom = 0; // start of the current run of skeleton bytes in this chunk
    let imageFrom = 0; // start of the current run of base64 bytes in this chunk

    for (let offset = 0; offset < chunk.length; offset++) {
      const byte = chunk[offset] ?? 0;
      if (this.inString === 'image') {
        if (this.escaped) {
          // JSON may escape '/' in base64; any other escape cannot occur in base64 text.
          if (byte !== SLASH) throw new MalformedResponseError('Unexpected escape sequence inside b64_json.');
          events.push({ kind: 'image-base64', index: this.imageIndex, data: Buffer.from('/') });
          this.escaped = false;
          imageFrom = offset + 1;
        } else if (byte === BACKSLASH) {
          if (offset > imageFrom) events.push({ kind: 'image-base64', index: this.imageIndex, data: chunk.subarray(imageFrom, offset) });
          this.escaped = true;
        } else if (byte === QUOTE) {
          if (offset > imageFrom) events.push({ kind: 'image-base64', index: this.imageIndex, data: chunk.subarray(imageFrom, offset) });
          events.push({ kind: 'image-end', index: this.imageIndex });
          this.inString = undefined;
          copyFrom = offset; // the closing quote belongs to the skeleton
        }
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === BACKSLASH) this.escaped = true;
        else if (byte === QUOTE) {
          if (this.inString === 'key') this.keyDone();
          this.inString = undefined;
        } else if (this.inString === 'key' && this.key.length < KEY_LIMIT) {
          this.key += String.fromCharCode(byte);
        }
        continue;
      }
      switch (byte) {
        case 0x7b: // {
          this.beginValue();
          this.stack.push({ type: 'object', key: undefined, expectingKey: true });
          break;
        case 0x5b: // [
          this.beginValue();
          this.stack.push({ type: 'array', index: 0 });
          break;
        case 0x7d: // }
        case 0x5d: // ]
          if (!this.stack.pop()) throw new MalformedResponseError('Unbalanced brackets in the response body.');
          if (this.stack.length === 0) this.finished = true;
          break;
        case 0x2c: {
          // ,
          const top = this.stack.at(-1);
          if (top?.type === 'array') top.index += 1;
          else if (top) top.expectingKey = true;
          break;
        }
        case QUOTE: {
          const top = this.stack.at(-1);
          if (top?.type === 'object' && top.expectingKey) {
            this.inString = 'key';
            this.key = '';
          } else if (this.imageIndexHere() !== undefined) {
            this.inString = 'image';
            this.imageIndex = this.imageIndexHere() ?? -1;
            events.push({ kind: 'image-start', index: this.imageIndex });
            this.appendSkeleton(chunk.subarray(copyFrom, offset + 1));
            imageFrom = offset + 1;
          } else {
            this.beginValue();
            this.inString = 'value';
          }
          break;
        }
        default:
          if (byte > 0x20) this.beginValue();
      }
    }

    if (this.inString === 'image') {
      if (!this.escaped && chunk.length > imageFrom) {
        events.push({ kind: 'image-base64', index: this.imageIndex, data: chunk.subarray(imageFrom) });
      }
    } else {
      this.appendSkeleton(chunk.subarray(copyFrom));
    }
    return events;
  }

  /** The body with every image string emptied, parsed; throws if the body was cut short or is not JSON. */
  end(): unknown {
    if (!this.finished || this.inString) throw new MalformedResponseError('The response body ended before the JSON was complete.');
    try {
      return JSON.parse(Buffer.concat(this.skeleton, this.skeletonBytes).toString('utf8')) as unknown;
    } catch (error: unknown) {
      throw new MalformedResponseError('The response body is not valid JSON.', { cause: error });
    }
  }

  private beginValue(): void {
    if (this.finished) throw new MalformedResponseError('Unexpected data after the end of the JSON body.');
  }

  private keyDone(): void {
    const top = this.stack.at(-1);
    if (top?.type === 'object') {
      top.key = this.key;
      top.expectingKey = false;
    }
  }

  /** `i` when the scanner stands at the value of `data[i].b64_json` in the top-level object. */
  private imageIndexHere(): number | undefined {
    const [root, data, item] = this.stack;
    const here =
      this.stack.length === 3 &&
      root?.type === 'object' &&
      root.key === 'data' &&
      data?.type === 'array' &&
      item?.type === 'object' &&
      item.key === 'b64_json' &&
      !item.expectingKey;
    return here ? data.index : undefined;
  }

  private appendSkeleton(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.skeletonBytes += bytes.length;
    if (this.skeletonBytes > this.maxSkeletonBytes) {
      throw new MalformedResponseError(`The response carries more than ${this.maxSkeletonBytes} bytes besides its images.`);
    }
    // Copy: a slice would keep the whole (large) chunk alive for as long as the skeleton.
    this.skeleton.push(Buffer.from(bytes));
  }
}

/** Decodes base64 that arrives in arbitrary slices, carrying the incomplete 4-character group over. */
export class Base64StreamDecoder {
  private carry = '';

  push(slice: Buffer): Buffer {
    const text = this.carry + slice.toString('latin1');
    const usable = text.length - (text.length % 4);
    this.carry = text.slice(usable);
    return decodeStrict(text.slice(0, usable));
  }

  end(): Buffer {
    if (this.carry.length > 0) throw new MalformedResponseError('An image ended in the middle of a base64 group.');
    return Buffer.alloc(0);
  }
}

const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeStrict(text: string): Buffer {
  const decoded = Buffer.from(text, 'base64');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  // Node skips characters it does not know; a length mismatch is how a corrupt slice shows.
  if (decoded.length !== (text.length / 4) * 3 - padding || (padding > 0 && !BASE64_TEXT.test(text.slice(-4)))) {
    throw new MalformedResponseError('An image is not valid base64.');
  }
  return decoded;
}
