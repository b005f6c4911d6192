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
const ESCAPED_SLASH = Buffer.from('/');

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
    let offset = 0;

    while (offset < chunk.length) {
      if (this.inString === 'image') {
        const closingQuote = this.scanBase64(chunk, offset, events);
        // The rest of the chunk was base64, which never goes into the skeleton.
        if (closingQuote === undefined) return events;
        copyFrom = closingQuote; // the closing quote belongs to the skeleton
        offset = closingQuote + 1;
        continue;
      }
      const byte = chunk[offset] ?? 0;
      offset += 1;
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
          const imageIndex = this.imageIndexHere();
          if (top?.type === 'object' && top.expectingKey) {
            this.inString = 'key';
            this.key = '';
          } else if (imageIndex !== undefined) {
            this.inString = 'image';
            this.imageIndex = imageIndex;
            events.push({ kind: 'image-start', index: imageIndex });
            this.appendSkeleton(chunk.subarray(copyFrom, offset)); // up to and with the opening quote
            copyFrom = offset;
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

    this.appendSkeleton(chunk.subarray(copyFrom));
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

  /**
   * Hands out the base64 text from `from` on as slices, finding the closing quote and escapes with
   * `indexOf` (memchr) rather than byte by byte: this loop sees every byte of every image. Returns the
   * offset of the closing quote, or undefined when the string goes on in the next chunk.
   */
  private scanBase64(chunk: Buffer, from: number, events: ScanEvent[]): number | undefined {
    const index = this.imageIndex;
    const quote = chunk.indexOf(QUOTE, from);
    const stop = quote === -1 ? chunk.length : quote;
    let offset = from;
    while (offset < stop) {
      if (this.escaped) {
        // JSON may escape '/' in base64; any other escape cannot occur in base64 text.
        if (chunk[offset] !== SLASH) throw new MalformedResponseError('Unexpected escape sequence inside b64_json.');
        events.push({ kind: 'image-base64', index, data: ESCAPED_SLASH });
        this.escaped = false;
        offset += 1;
        continue;
      }
      const backslash = chunk.subarray(offset, stop).indexOf(BACKSLASH);
      const runEnd = backslash === -1 ? stop : offset + backslash;
      if (runEnd > offset) events.push({ kind: 'image-base64', index, data: chunk.subarray(offset, runEnd) });
      if (backslash !== -1) this.escaped = true;
      offset = backslash === -1 ? stop : runEnd + 1;
    }
    if (quote === -1) return undefined;
    if (this.escaped) throw new MalformedResponseError('Unexpected escape sequence inside b64_json.');
    events.push({ kind: 'image-end', index });
    this.inString = undefined;
    return quote;
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

/**
 * Decodes base64 that arrives in arbitrary slices, carrying an incomplete 4-character group over to the
 * next slice. Decoded bytes go into one scratch buffer that is reused for every slice, so an image
 * streams through without a fresh allocation per chunk; the caller must use (or copy) them before the
 * next `push`. One decoder serves every image of a response, one after the other.
 */
export class Base64StreamDecoder {
  private readonly carry = Buffer.alloc(4);
  private carryLength = 0;
  private padded = false;
  private scratch = Buffer.alloc(0);

  /** Decodes `slice`; the result is a view of the scratch buffer, valid until the next call. */
  push(slice: Buffer): Buffer {
    if (slice.length === 0) return EMPTY;
    const capacity = Math.ceil((this.carryLength + slice.length) / 4) * 3;
    if (this.scratch.length < capacity) this.scratch = Buffer.allocUnsafe(Math.max(capacity, this.scratch.length * 2));
    let decoded = 0;
    let from = 0;
    if (this.carryLength > 0) {
      from = Math.min(4 - this.carryLength, slice.length);
      slice.copy(this.carry, this.carryLength, 0, from);
      this.carryLength += from;
      if (this.carryLength < 4) return EMPTY;
      decoded += this.decodeGroups(this.carry, 0, 4, decoded);
      this.carryLength = 0;
    }
    const usableEnd = from + ((slice.length - from) & ~3);
    if (usableEnd > from) decoded += this.decodeGroups(slice, from, usableEnd, decoded);
    this.carryLength = slice.copy(this.carry, 0, usableEnd);
    return this.scratch.subarray(0, decoded);
  }

  /** Checks that the image ended on a whole group, and gets ready for the next image. */
  end(): void {
    const incomplete = this.carryLength > 0;
    this.carryLength = 0;
    this.padded = false;
    if (incomplete) throw new MalformedResponseError('An image ended in the middle of a base64 group.');
  }

  private decodeGroups(text: Buffer, start: number, end: number, into: number): number {
    // Padding may only close the image: text after it means two images were glued together.
    if (this.padded) throw new MalformedResponseError('An image is not valid base64.');
    const padding = text[end - 1] !== EQUALS ? 0 : text[end - 2] === EQUALS ? 2 : 1;
    const written = this.scratch.write(text.toString('latin1', start, end), into, 'base64');
    // Node skips characters it does not know and stops at '='; a short count is how corrupt text shows.
    if (written !== ((end - start) / 4) * 3 - padding) throw new MalformedResponseError('An image is not valid base64.');
    this.padded = padding > 0;
    return written;
  }
}

const EQUALS = 0x3d;
const EMPTY = Buffer.alloc(0);
