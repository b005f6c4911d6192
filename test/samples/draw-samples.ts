import type { RasterImage } from '../../emulator/images/raster';

/** The sample photo's size and the door the README's mask opens up for editing. */
export const SAMPLE_WIDTH = 256;
export const SAMPLE_HEIGHT = 192;
export const DOOR = { x: 116, y: 116, width: 24, height: 44 } as const;

type Rgb = readonly [number, number, number];

/** A deterministic grain in [-1, 1], so the picture compresses like a photo, not like a diagram. */
function grain(x: number, y: number): number {
  let hash = Math.imul(x, 374_761_393) ^ Math.imul(y, 668_265_263);
  hash = Math.imul(hash ^ (hash >>> 13), 1_274_126_177);
  return (((hash ^ (hash >>> 16)) >>> 0) / 0xffff_ffff) * 2 - 1;
}

const mix = (a: Rgb, b: Rgb, t: number): Rgb => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
const inside = (x: number, y: number, box: { x: number; y: number; width: number; height: number }) => x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height;

/** What the sample photo shows at one pixel: a house with a door, two windows and a roof, on a lawn under a sky. */
function colourAt(x: number, y: number): { colour: Rgb; noise: number } {
  const horizon = 132;
  if (inside(x, y, DOOR)) return { colour: x === DOOR.x + DOOR.width - 6 && y === DOOR.y + 24 ? [220, 190, 90] : [96, 62, 40], noise: 4 };
  for (const window of [{ x: 84, y: 96, width: 22, height: 22 }, { x: 150, y: 96, width: 22, height: 22 }]) {
    if (inside(x, y, { x: window.x - 2, y: window.y - 2, width: window.width + 4, height: window.height + 4 })) {
      const pane = inside(x, y, window) && x !== window.x + window.width / 2 && y !== window.y + window.height / 2;
      return { colour: pane ? mix([150, 200, 235], [210, 230, 245], (y - window.y) / window.height) : [245, 245, 240], noise: 3 };
    }
  }
  if (inside(x, y, { x: 72, y: 80, width: 112, height: 80 })) return { colour: [226, 204, 168], noise: 6 };
  // The roof: a triangle from (64, 80) and (192, 80) up to (128, 36).
  if (y >= 36 && y < 80 && Math.abs(x - 128) <= ((y - 36) / 44) * 64) return { colour: mix([140, 52, 44], [170, 70, 56], (y - 36) / 44), noise: 8 };
  // The path from the door to the bottom edge, widening towards the viewer.
  if (y >= 160 && Math.abs(x - 128) <= 12 + (y - 160) * 0.6) return { colour: [196, 184, 160], noise: 10 };
  if (y >= horizon) return { colour: mix([92, 150, 70], [58, 112, 48], (y - horizon) / (SAMPLE_HEIGHT - horizon)), noise: 14 };
  const sun = Math.hypot(x - 214, y - 34);
  if (sun < 16) return { colour: [255, 236, 170], noise: 1 };
  const sky = mix([110, 162, 226], [196, 222, 246], y / horizon);
  return { colour: sun < 28 ? mix([255, 236, 170], sky, (sun - 16) / 12) : sky, noise: 2 };
}

/** The sample photo: RGB, a little grain everywhere. */
export function drawHouse(): RasterImage {
  const pixels = new Uint8Array(SAMPLE_WIDTH * SAMPLE_HEIGHT * 3);
  for (let y = 0; y < SAMPLE_HEIGHT; y++) {
    for (let x = 0; x < SAMPLE_WIDTH; x++) {
      const { colour, noise } = colourAt(x, y);
      const offset = grain(x, y) * noise;
      for (let channel = 0; channel < 3; channel++) {
        pixels[(y * SAMPLE_WIDTH + x) * 3 + channel] = Math.max(0, Math.min(255, Math.round((colour[channel] ?? 0) + offset)));
      }
    }
  }
  return { width: SAMPLE_WIDTH, height: SAMPLE_HEIGHT, channels: 3, pixels };
}
