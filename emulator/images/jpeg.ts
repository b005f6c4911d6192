/**
 * A baseline (sequential, Huffman-coded) JFIF encoder: YCbCr 4:4:4 with the example quantisation and
 * Huffman tables of ITU-T T.81 Annex K. It is small and plain rather than fast; the emulator caches
 * what it encodes, so this cost is paid once per distinct image.
 */
import type { RasterImage } from './raster';

// Annex K.1 / K.2 quantisation tables, natural (row-major) order.
const LUMA_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68,
  109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_QUANT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/** Zig-zag position k → natural index (row * 8 + column). */
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29,
  22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

interface HuffmanSpec {
  /** Number of codes of each length 1..16. */
  readonly counts: readonly number[];
  readonly symbols: readonly number[];
}

// Annex K.3 Huffman tables.
const DC_LUMA: HuffmanSpec = { counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], symbols: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] };
const DC_CHROMA: HuffmanSpec = { counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], symbols: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] };
const AC_LUMA: HuffmanSpec = {
  counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  symbols: [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
    0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
    0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};
const AC_CHROMA: HuffmanSpec = {
  counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
  symbols: [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
    0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
    0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
    0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};

interface HuffmanTable {
  readonly codes: Uint16Array;
  readonly lengths: Uint8Array;
}

/** Canonical Huffman codes from the (counts, symbols) form that DHT carries (T.81 Annex C). */
function buildHuffmanTable(spec: HuffmanSpec): HuffmanTable {
  const codes = new Uint16Array(256);
  const lengths = new Uint8Array(256);
  let code = 0;
  let next = 0;
  for (let length = 1; length <= 16; length++) {
    const count = spec.counts[length - 1] ?? 0;
    for (let i = 0; i < count; i++) {
      const symbol = spec.symbols[next++] ?? 0;
      codes[symbol] = code++;
      lengths[symbol] = length;
    }
    code <<= 1;
  }
  return { codes, lengths };
}

const TABLES = {
  dcLuma: buildHuffmanTable(DC_LUMA),
  acLuma: buildHuffmanTable(AC_LUMA),
  dcChroma: buildHuffmanTable(DC_CHROMA),
  acChroma: buildHuffmanTable(AC_CHROMA),
};

/** The IJG quality scaling, so that `quality` means what it means in libjpeg. */
function scaleQuantTable(base: readonly number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  return Uint8Array.from(base, (value) => Math.min(255, Math.max(1, Math.floor((value * scale + 50) / 100))));
}

// DCT basis: COSINES[u * 8 + x] = C(u)/2 · cos((2x + 1)uπ/16), so that F = M · f · Mᵀ.
const COSINES = new Float64Array(64);
for (let u = 0; u < 8; u++) {
  for (let x = 0; x < 8; x++) {
    COSINES[u * 8 + x] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
}

class BitWriter {
  private bytes: Uint8Array;
  private length = 0;
  private accumulator = 0;
  private bitCount = 0;

  constructor(initialCapacity: number) {
    this.bytes = new Uint8Array(Math.max(1024, initialCapacity));
  }

  write(code: number, length: number): void {
    this.accumulator = (this.accumulator << length) | code;
    this.bitCount += length;
    while (this.bitCount >= 8) {
      const byte = (this.accumulator >>> (this.bitCount - 8)) & 0xff;
      this.push(byte);
      // A 0xFF in entropy-coded data must be followed by a stuffed zero so it is not read as a marker.
      if (byte === 0xff) this.push(0);
      this.bitCount -= 8;
    }
    this.accumulator &= (1 << this.bitCount) - 1;
  }

  /** Pads the last byte with 1-bits, as T.81 F.1.2.3 asks. */
  finish(): Uint8Array {
    if (this.bitCount > 0) this.write((1 << (8 - this.bitCount)) - 1, 8 - this.bitCount);
    return this.bytes.subarray(0, this.length);
  }

  private push(byte: number): void {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = byte;
  }
}

function bitLength(value: number): number {
  return value === 0 ? 0 : 32 - Math.clz32(Math.abs(value));
}

/** The magnitude bits that follow a Huffman category: negatives are sent as value - 1 in that many bits. */
function magnitudeBits(value: number, category: number): number {
  return value < 0 ? value + (1 << category) - 1 : value;
}

class BlockEncoder {
  private readonly rows = new Float64Array(64);
  private readonly coefficients = new Int32Array(64);

  constructor(private readonly writer: BitWriter) {}

  /** Transforms, quantises and entropy-codes one 8×8 block of level-shifted samples; returns its DC value. */
  encode(samples: Float64Array, quant: Uint8Array, dc: HuffmanTable, ac: HuffmanTable, previousDc: number): number {
    const { rows, coefficients, writer } = this;
    // Rows first: rows[y*8+u] = Σx M[u][x]·f[y][x].
    for (let y = 0; y < 8; y++) {
      for (let u = 0; u < 8; u++) {
        let sum = 0;
        for (let x = 0; x < 8; x++) sum += (COSINES[u * 8 + x] ?? 0) * (samples[y * 8 + x] ?? 0);
        rows[y * 8 + u] = sum;
      }
    }
    // Then columns: F[v][u] = Σy M[v][y]·rows[y][u], quantised and stored in zig-zag order.
    for (let v = 0; v < 8; v++) {
      for (let u = 0; u < 8; u++) {
        let sum = 0;
        for (let y = 0; y < 8; y++) sum += (COSINES[v * 8 + y] ?? 0) * (rows[y * 8 + u] ?? 0);
        coefficients[v * 8 + u] = Math.round(sum / (quant[v * 8 + u] ?? 1));
      }
    }

    const dcValue = coefficients[0] ?? 0;
    const difference = dcValue - previousDc;
    const dcCategory = bitLength(difference);
    writer.write(dc.codes[dcCategory] ?? 0, dc.lengths[dcCategory] ?? 0);
    if (dcCategory > 0) writer.write(magnitudeBits(difference, dcCategory), dcCategory);

    let run = 0;
    for (let k = 1; k < 64; k++) {
      const value = coefficients[ZIGZAG[k] ?? 0] ?? 0;
      if (value === 0) {
        run++;
        continue;
      }
      while (run > 15) {
        writer.write(ac.codes[0xf0] ?? 0, ac.lengths[0xf0] ?? 0); // ZRL: sixteen zeros
        run -= 16;
      }
      const category = bitLength(value);
      const symbol = (run << 4) | category;
      writer.write(ac.codes[symbol] ?? 0, ac.lengths[symbol] ?? 0);
      writer.write(magnitudeBits(value, category), category);
      run = 0;
    }
    if (run > 0) writer.write(ac.codes[0] ?? 0, ac.lengths[0] ?? 0); // EOB
    return dcValue;
  }
}

function segment(marker: number, payload: readonly number[]): number[] {
  const length = payload.length + 2;
  return [0xff, marker, length >> 8, length & 0xff, ...payload];
}

function huffmanSegmentPayload(tableClassAndId: number, spec: HuffmanSpec): number[] {
  return [tableClassAndId, ...spec.counts, ...spec.symbols];
}

/** Encodes RGB(A) pixels (alpha ignored) as a baseline JPEG of the same size; `quality` 1–100 as in libjpeg. */
export function encodeJpeg(image: RasterImage, quality: number): Buffer {
  const { width, height, channels, pixels } = image;
  const lumaQuant = scaleQuantTable(LUMA_QUANT, quality);
  const chromaQuant = scaleQuantTable(CHROMA_QUANT, quality);

  const header: number[] = [0xff, 0xd8];
  header.push(...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
  header.push(
    ...segment(0xdb, [
      0x00,
      ...ZIGZAG.map((index) => lumaQuant[index] ?? 1),
      0x01,
      ...ZIGZAG.map((index) => chromaQuant[index] ?? 1),
    ]),
  );
  header.push(
    ...segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]),
  );
  header.push(
    ...segment(0xc4, [
      ...huffmanSegmentPayload(0x00, DC_LUMA),
      ...huffmanSegmentPayload(0x10, AC_LUMA),
      ...huffmanSegmentPayload(0x01, DC_CHROMA),
      ...huffmanSegmentPayload(0x11, AC_CHROMA),
    ]),
  );
  header.push(...segment(0xda, [3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]));

  const writer = new BitWriter((width * height) >> 1);
  const blocks = new BlockEncoder(writer);
  const luma = new Float64Array(64);
  const blue = new Float64Array(64);
  const red = new Float64Array(64);
  let previousY = 0;
  let previousCb = 0;
  let previousCr = 0;
  for (let blockY = 0; blockY < height; blockY += 8) {
    for (let blockX = 0; blockX < width; blockX += 8) {
      for (let y = 0; y < 8; y++) {
        // Blocks that overhang the right or bottom edge repeat the last row/column, which compresses best.
        const sourceRow = Math.min(blockY + y, height - 1) * width;
        for (let x = 0; x < 8; x++) {
          const offset = (sourceRow + Math.min(blockX + x, width - 1)) * channels;
          const r = pixels[offset] ?? 0;
          const g = pixels[offset + 1] ?? 0;
          const b = pixels[offset + 2] ?? 0;
          // JFIF RGB → YCbCr, level-shifted by 128 for the DCT.
          luma[y * 8 + x] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
          blue[y * 8 + x] = -0.168736 * r - 0.331264 * g + 0.5 * b;
          red[y * 8 + x] = 0.5 * r - 0.418688 * g - 0.081312 * b;
        }
      }
      previousY = blocks.encode(luma, lumaQuant, TABLES.dcLuma, TABLES.acLuma, previousY);
      previousCb = blocks.encode(blue, chromaQuant, TABLES.dcChroma, TABLES.acChroma, previousCb);
      previousCr = blocks.encode(red, chromaQuant, TABLES.dcChroma, TABLES.acChroma, previousCr);
    }
  }
  return Buffer.concat([Buffer.from(header), writer.finish(), Buffer.from([0xff, 0xd9])]);
}
