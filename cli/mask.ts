import { encodePng } from '../emulator/images/png';
import { sniffImage } from '../src/domain/image-format';

/** A rectangle in pixels: its top-left corner and its size. */
export interface MaskArea {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Reads `x,y,width,height`. */
export function parseMaskArea(text: string): MaskArea {
  const numbers = text.split(',').map((part) => part.trim());
  if (numbers.length !== 4 || numbers.some((part) => !/^\d+$/.test(part))) {
    throw new Error(`--area takes x,y,width,height in whole pixels (e.g. 116,116,24,44), not "${text}".`);
  }
  const [x = 0, y = 0, width = 0, height = 0] = numbers.map(Number);
  if (width === 0 || height === 0) throw new Error(`--area ${text} is empty: width and height must be at least 1.`);
  return { x, y, width, height };
}

/**
 * The mask the edit endpoints take for `image`: an RGBA PNG of the image's size, opaque where the
 * image must stay as it is and fully transparent (alpha 0) inside the areas the model may repaint.
 */
export async function createMask(image: Uint8Array, areas: readonly MaskArea[]): Promise<Buffer> {
  const info = sniffImage(image.subarray(0, 64 * 1024));
  if (typeof info === 'string' || (info.type !== 'png' && info.type !== 'jpeg')) throw new Error('The image must be a PNG or a JPEG.');
  const { width, height } = info;
  for (const area of areas) {
    if (area.x + area.width > width || area.y + area.height > height) {
      throw new Error(`--area ${area.x},${area.y},${area.width},${area.height} reaches outside the ${width}x${height} image.`);
    }
  }
  const pixels = new Uint8Array(width * height * 4);
  for (let index = 3; index < pixels.length; index += 4) pixels[index] = 255;
  for (const area of areas) {
    for (let y = area.y; y < area.y + area.height; y++) {
      for (let x = area.x; x < area.x + area.width; x++) pixels[(y * width + x) * 4 + 3] = 0;
    }
  }
  return encodePng({ width, height, channels: 4, pixels }, { level: 9 });
}
