import { createHash } from 'node:crypto';

import type { EditLimits, RawEditInput } from '../../src/domain/edit-images';
import { editImages, prepareEditInputs } from '../../src/domain/edit-images';
import { AppError } from '../../src/domain/errors';
import { makePng as makeTestPng } from '../emulator/helpers';
import { makeFakeServices } from '../fakes/services';
import { makePng } from '../helpers/images';

const limits: EditLimits = { maxImageBytes: 10_000, maxMaskBytes: 5_000, maxTotalBytes: 25_000 };
const photo = makePng(64, 48);
const rgbaMask = makeTestPng(64, 48, 4, new Uint8Array(64 * 48 * 4).fill(255));

/** Bytes in chunks of `size`, as a stream would hand them over. */
function raw(bytes: Buffer, target: string, fileName?: string, size = 16): RawEditInput {
  const content: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) content.push(bytes.subarray(offset, offset + size));
  return { target, fileName, size: bytes.length, content };
}

function refusal(run: () => unknown): { status: number; code: string; target: string | undefined } {
  try {
    run();
  } catch (error: unknown) {
    if (error instanceof AppError) return { status: error.status, code: error.code, target: error.target };
    throw error;
  }
  throw new Error('expected a refusal');
}

/** A palette PNG whose transparency comes from a tRNS chunk: alpha, but not an alpha channel. */
function paletteWithTransparency(width: number, height: number): Buffer {
  const png = makePng(width, height);
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    return Buffer.concat([length, Buffer.from(type, 'latin1'), data, Buffer.alloc(4)]);
  };
  const head = Buffer.from(png.subarray(0, 33));
  head[25] = 3; // colour type: palette
  return Buffer.concat([head, chunk('PLTE', Buffer.alloc(3)), chunk('tRNS', Buffer.from([0])), png.subarray(33)]);
}

describe('prepareEditInputs', () => {
  it('describes inputs from their bytes, keeps their chunks as they came and hashes them', () => {
    const image = raw(photo, 'image', 'holiday photo.PNG');
    const inputs = prepareEditInputs({ images: [image], mask: raw(rgbaMask, 'mask'), imagesTarget: 'image' }, limits);

    expect(inputs.images[0]).toMatchObject({
      target: 'image',
      fileName: 'holiday_photo.png',
      contentType: 'image/png',
      size: photo.length,
      sha256: createHash('sha256').update(photo).digest('hex'),
      info: { width: 64, height: 48 },
    });
    expect(inputs.images[0]?.content).toBe(image.content);
    expect(inputs.mask).toMatchObject({ fileName: 'mask.png', info: { pngColourType: 6 } });
  });

  it('names files safely with the extension of what they are', () => {
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x20, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    const inputs = prepareEditInputs(
      { images: [raw(jpeg, 'images[0]', '../../etc/pa"ss\r\nwd.png'), raw(photo, 'images[1]'), raw(photo, 'images[2]', '...')], imagesTarget: 'images' },
      limits,
    );

    expect(inputs.images.map((file) => file.fileName)).toEqual(['pa_ss_wd.jpg', 'image-1.png', 'image-2.png']);
    expect(inputs.images[0]?.info).toMatchObject({ type: 'jpeg', width: 32, height: 16 });
  });

  it('treats the per-file limits as exclusive, like the upstream, and the total as inclusive', () => {
    const padded = (bytes: Buffer, size: number) => Buffer.concat([bytes, Buffer.alloc(size - bytes.length)]);

    expect(refusal(() => prepareEditInputs({ images: [raw(padded(photo, 10_000), 'image')], imagesTarget: 'image' }, limits))).toEqual({ status: 413, code: 'FileTooLarge', target: 'image' });
    expect(prepareEditInputs({ images: [raw(padded(photo, 9_999), 'image')], imagesTarget: 'image' }, limits).images).toHaveLength(1);
    expect(refusal(() => prepareEditInputs({ images: [raw(photo, 'image')], mask: raw(padded(rgbaMask, 5_000), 'mask'), imagesTarget: 'image' }, limits))).toEqual({
      status: 413,
      code: 'FileTooLarge',
      target: 'mask',
    });
    const three = [0, 1, 2].map((index) => raw(padded(photo, 9_000), `images[${index}]`));
    expect(refusal(() => prepareEditInputs({ images: three, imagesTarget: 'images' }, limits))).toEqual({ status: 413, code: 'PayloadTooLarge', target: 'images' });
  });

  it('refuses a mask whose transparency is a palette tRNS chunk, and takes grey+alpha', () => {
    expect(refusal(() => prepareEditInputs({ images: [raw(photo, 'image')], mask: raw(paletteWithTransparency(64, 48), 'mask'), imagesTarget: 'image' }, limits))).toEqual({
      status: 400,
      code: 'InvalidMask',
      target: 'mask',
    });
    const greyAlpha = makeTestPng(64, 48, 2, new Uint8Array(64 * 48 * 2));
    expect(prepareEditInputs({ images: [raw(photo, 'image')], mask: raw(greyAlpha, 'mask'), imagesTarget: 'image' }, limits).mask?.info.pngColourType).toBe(4);
  });

  it('sniffs a header split across one-byte chunks', () => {
    expect(prepareEditInputs({ images: [raw(photo, 'image', undefined, 1)], imagesTarget: 'image' }, limits).images[0]?.info).toMatchObject({ width: 64, height: 48 });
  });

  it('refuses more than 16 images and none at all', () => {
    const seventeen = Array.from({ length: 17 }, (_, index) => raw(makePng(2, 2), `images[${index}]`));
    expect(refusal(() => prepareEditInputs({ images: seventeen, imagesTarget: 'images' }, { ...limits, maxTotalBytes: 1e9 }))).toEqual({ status: 400, code: 'TooManyImages', target: 'images' });
    expect(refusal(() => prepareEditInputs({ images: [], imagesTarget: 'image' }, limits))).toEqual({ status: 400, code: 'MissingParameter', target: 'image' });
  });
});

describe('editImages', () => {
  const inputs = () => prepareEditInputs({ images: [raw(photo, 'image', 'in.png')], mask: raw(rgbaMask, 'mask'), imagesTarget: 'image' }, limits);
  const deploymentFor = (model: string) => `${model}-deployment`;
  const caller = { id: 'user:ana', source: 'user' } as const;

  it('refuses a model that cannot edit before calling the upstream', async () => {
    const services = makeFakeServices();

    await expect(editImages({ prompt: 'x', model: 'dall-e-3', options: {}, includeBase64: false, inputs: inputs(), caller }, { ...services, deploymentFor })).rejects.toMatchObject({
      code: 'OperationNotSupported',
      target: 'model',
    });
    expect(services.imageModel.editCalls).toHaveLength(0);
  });

  it('sends the checked inputs and edit options, and records the inputs without their bytes', async () => {
    const services = makeFakeServices();
    services.imageModel.willReturn(makePng(64, 48));

    const result = await editImages(
      { prompt: 'a hat', model: 'gpt-image-1.5', options: { inputFidelity: 'high', quality: 'low' }, includeBase64: false, inputs: inputs(), caller },
      { ...services, deploymentFor },
    );

    expect(services.imageModel.editCalls[0]?.request).toMatchObject({
      deployment: 'gpt-image-1.5-deployment',
      prompt: 'a hat',
      n: 1,
      inputFidelity: 'high',
      images: [{ fileName: 'in.png', contentType: 'image/png', size: photo.length }],
      mask: { fileName: 'mask.png', size: rgbaMask.length },
    });
    expect(result.images[0]).toMatchObject({ blobName: 'request-1/0.png', width: 64, height: 48 });
    const record = services.imageStore.records.get('request-1/request.json');
    expect(record).toMatchObject({ operation: 'edit', request: { inputFidelity: 'high', images: [{ fileName: 'in.png', bytes: photo.length }], mask: { fileName: 'mask.png' } } });
    expect(JSON.stringify(record)).not.toContain(photo.toString('base64').slice(0, 24));
  });
});
