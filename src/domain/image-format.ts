/**
 * Image type and dimensions read from the first bytes of a file, so that streamed images can be
 * described without decoding them and uploads can be checked by content rather than by declared type.
 */
export type ImageType = 'png' | 'jpeg' | 'webp';

export interface ImageInfo {
  readonly type: ImageType;
  readonly contentType: string;
  readonly width: number;
  readonly height: number;
  /** PNG only: whether the pixel format carries an alpha channel (RGBA, grey+alpha, or a tRNS chunk was seen). */
  readonly hasAlphaChannel?: boolean;
  /** PNG only: the IHDR colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA). */
  readonly pngColourType?: number;
}

export const CONTENT_TYPES: Readonly<Record<ImageType, string>> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** How much of a file's head the sniffer may ask for before it gives up on dimensions. */
export const MAX_SNIFF_BYTES = 512 * 1024;

export type SniffResult = ImageInfo | 'need-more' | 'unknown';

/**
 * Identifies PNG, JPEG and WebP from `head` (the first bytes of the file). Returns 'need-more' while
 * the header is incomplete, 'unknown' for anything that is not one of those images.
 */
export function sniffImage(head: Uint8Array): SniffResult {
  if (head.length < 12) return looksLikePrefix(head) ? 'need-more' : 'unknown';
  if (PNG_SIGNATURE.every((byte, index) => head[index] === byte)) return sniffPng(head);
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return sniffJpeg(head);
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return sniffWebp(head);
  return 'unknown';
}

function looksLikePrefix(head: Uint8Array): boolean {
  const starts = [PNG_SIGNATURE, [0xff, 0xd8, 0xff], [0x52, 0x49, 0x46, 0x46]];
  return starts.some((start) => head.every((byte, index) => index >= start.length || start[index] === byte));
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function sniffPng(head: Uint8Array): SniffResult {
  // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4) + depth (1) + colour type (1).
  if (head.length < 26) return 'need-more';
  if (ascii(head, 12, 16) !== 'IHDR') return 'unknown';
  const data = view(head);
  const colourType = head[25] ?? 0;
  const alphaInPixels = colourType === 4 || colourType === 6;
  return {
    type: 'png',
    contentType: CONTENT_TYPES.png,
    width: data.getUint32(16),
    height: data.getUint32(20),
    hasAlphaChannel: alphaInPixels || hasTransparencyChunk(head),
    pngColourType: colourType,
  };
}

/** A palette or RGB PNG can still carry alpha through a tRNS chunk before its first IDAT. */
function hasTransparencyChunk(head: Uint8Array): boolean {
  const data = view(head);
  let offset = 8;
  while (offset + 8 <= head.length) {
    const length = data.getUint32(offset);
    const type = ascii(head, offset + 4, offset + 8);
    if (type === 'tRNS') return true;
    if (type === 'IDAT' || type === 'IEND') return false;
    offset += 12 + length;
  }
  return false;
}

// SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
const isStartOfFrame = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

function sniffJpeg(head: Uint8Array): SniffResult {
  const data = view(head);
  let offset = 2;
  while (offset + 4 <= head.length) {
    if (head[offset] !== 0xff) return 'unknown';
    const marker = head[offset + 1] ?? 0;
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      offset += 2;
      continue;
    }
    const length = data.getUint16(offset + 2);
    if (isStartOfFrame(marker)) {
      if (offset + 9 > head.length) return 'need-more';
      return { type: 'jpeg', contentType: CONTENT_TYPES.jpeg, height: data.getUint16(offset + 5), width: data.getUint16(offset + 7) };
    }
    if (marker === 0xda || marker === 0xd9) return 'unknown'; // scan data before any frame header
    offset += 2 + length;
  }
  return head.length >= MAX_SNIFF_BYTES ? 'unknown' : 'need-more';
}

function sniffWebp(head: Uint8Array): SniffResult {
  if (head.length < 30) return 'need-more';
  const data = view(head);
  const chunk = ascii(head, 12, 16);
  if (chunk === 'VP8X') {
    const width = 1 + (data.getUint16(24, true) | ((head[26] ?? 0) << 16));
    const height = 1 + (data.getUint16(27, true) | ((head[29] ?? 0) << 16));
    return { type: 'webp', contentType: CONTENT_TYPES.webp, width, height };
  }
  if (chunk === 'VP8 ') {
    return { type: 'webp', contentType: CONTENT_TYPES.webp, width: data.getUint16(26, true) & 0x3fff, height: data.getUint16(28, true) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    const bits = data.getUint32(21, true);
    return { type: 'webp', contentType: CONTENT_TYPES.webp, width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  return 'unknown';
}
