/** Pixels in memory: row-major, 8 bits per sample, RGB or RGBA. */
export interface RasterImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
  readonly pixels: Uint8Array;
}
