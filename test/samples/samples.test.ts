import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { encodeJpeg } from '../../emulator/images/jpeg';
import { decodePng, encodePng } from '../../emulator/images/png';
import { createMask } from '../../cli/mask';
import { sniffImage } from '../../src/domain/image-format';
import { DOOR, drawHouse, SAMPLE_HEIGHT, SAMPLE_WIDTH } from './draw-samples';

// The sample inputs the README and docs/ use: a photo-like PNG, the same photo as a JPEG, and the
// mask `npm run imagegen -- mask` makes for its door. They are committed, so a fresh clone has them;
// this test keeps them what they say they are. UPDATE_SAMPLES=1 rewrites them from the drawing.

const SAMPLES = join(__dirname, '..', '..', 'samples');
const JPEG_QUALITY = 85;

describe('samples/', () => {
  beforeAll(async () => {
    if (process.env['UPDATE_SAMPLES'] !== '1') return;
    const house = drawHouse();
    writeFileSync(join(SAMPLES, 'house.png'), await encodePng(house, { level: 9 }));
    writeFileSync(join(SAMPLES, 'house.jpg'), encodeJpeg(house, JPEG_QUALITY));
    writeFileSync(join(SAMPLES, 'door-mask.png'), await createMask(readFileSync(join(SAMPLES, 'house.png')), [DOOR]));
  });

  const read = (name: string) => readFileSync(join(SAMPLES, name));

  it('house.png is the drawn photo, as an RGB PNG small enough to keep in git', async () => {
    const png = await decodePng(read('house.png'));

    expect({ width: png.width, height: png.height, hasAlpha: png.hasAlpha }).toEqual({ width: SAMPLE_WIDTH, height: SAMPLE_HEIGHT, hasAlpha: false });
    const rgb = Buffer.from(png.pixels.filter((_value, index) => index % 4 !== 3));
    expect(rgb.equals(Buffer.from(drawHouse().pixels))).toBe(true);
    expect(read('house.png').length).toBeLessThan(100 * 1024);
  });

  it('house.jpg is the same photo as a JPEG', () => {
    expect(sniffImage(read('house.jpg'))).toMatchObject({ type: 'jpeg', width: SAMPLE_WIDTH, height: SAMPLE_HEIGHT });
    expect(read('house.jpg').equals(encodeJpeg(drawHouse(), JPEG_QUALITY))).toBe(true);
  });

  it('door-mask.png is the mask command\'s output for the door: transparent there, opaque elsewhere', async () => {
    const mask = await decodePng(read('door-mask.png'));

    expect({ width: mask.width, height: mask.height, hasAlpha: mask.hasAlpha }).toEqual({ width: SAMPLE_WIDTH, height: SAMPLE_HEIGHT, hasAlpha: true });
    const transparent: number[] = [];
    for (let index = 0; index < mask.width * mask.height; index++) if (mask.pixels[index * 4 + 3] === 0) transparent.push(index);
    expect(transparent).toHaveLength(DOOR.width * DOOR.height);
    expect(transparent[0]).toBe(DOOR.y * SAMPLE_WIDTH + DOOR.x);
    const again = await decodePng(await createMask(read('house.png'), [DOOR]));
    expect(Buffer.from(again.pixels).equals(Buffer.from(mask.pixels))).toBe(true);
  });
});
