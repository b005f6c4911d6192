import { encode as encodeJpeg } from 'jpeg-js';
import { z } from 'zod';

import { editColour } from '../../emulator/images/render';
import type { FormFile } from '../emulator/helpers';
import { multipart, pixelOf, webpHeader } from '../emulator/helpers';
import type { EditStack } from './edits-fixtures';
import { HEIGHT, WIDTH, downloadPng, expectedMaskedEdit, inputPng, inputSamples, maskPng, sha256, startEditStack } from './edits-fixtures';

const IMAGE_LIMIT = 200_000;
const MASK_LIMIT = 50_000;
const BODY_LIMIT = 1_000_000;

const editResponse = z.object({
  id: z.string(),
  model: z.string(),
  size: z.string(),
  data: z.array(z.object({ url: z.url(), blob_name: z.string(), content_type: z.string(), width: z.number(), height: z.number(), b64_json: z.string().optional() })),
});
const errorResponse = z.object({ error: z.object({ code: z.string(), message: z.string(), target: z.string().optional() }) });

const image: FormFile = { name: 'image', bytes: inputPng, type: 'image/png', filename: 'photo.png' };
const mask: FormFile = { name: 'mask', bytes: maskPng(), type: 'image/png', filename: 'mask.png' };
const jpegInput = Buffer.from(encodeJpeg({ width: 40, height: 24, data: Buffer.alloc(40 * 24 * 4, 200) }, 80).data);
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

describe('POST /api/images/edits through the local stack', () => {
  let stack: EditStack;

  beforeAll(async () => {
    stack = await startEditStack('edits', {
      MAX_EDIT_IMAGE_BYTES: String(IMAGE_LIMIT),
      MAX_EDIT_MASK_BYTES: String(MASK_LIMIT),
      MAX_EDIT_BODY_BYTES: String(BODY_LIMIT),
    });
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.emulator.reset());

  async function postForm(fields: Record<string, string>, files: readonly FormFile[], path = '/api/images/edits') {
    const { body, contentType } = await multipart(fields, files);
    return post(path, body, contentType);
  }

  function postJson(body: unknown) {
    return post('/api/images/edits', JSON.stringify(body), 'application/json');
  }

  async function post(path: string, body: string | Buffer, contentType: string) {
    const response = await fetch(`${stack.host.url}${path}`, {
      method: 'POST',
      headers: { 'x-functions-key': stack.host.functionKey, 'content-type': contentType },
      body,
    });
    const json: unknown = await response.json();
    return { status: response.status, headers: response.headers, json };
  }

  function uploadedFiles() {
    return stack.emulator.requests.flatMap((request) => request.files ?? []);
  }

  describe('multipart, as the upstream and the openai SDK send it', () => {
    it('edits one image under its mask: the upstream gets both intact, and the stored result keeps every unmasked pixel', async () => {
      const prompt = 'paint a red door';
      const response = await postForm({ prompt, quality: 'low' }, [image, mask]);

      expect(response.status).toBe(200);
      const body = editResponse.parse(response.json);
      expect(body).toMatchObject({ model: 'gpt-image-1.5', size: `${WIDTH}x${HEIGHT}` });
      expect(body.data).toHaveLength(1);
      expect(body.data[0]).toMatchObject({ blob_name: `${body.id}/0.png`, content_type: 'image/png', width: WIDTH, height: HEIGHT });

      expect(uploadedFiles()).toEqual([
        { field: 'image', filename: 'photo.png', contentType: 'image/png', size: inputPng.length, sha256: sha256(inputPng) },
        { field: 'mask', filename: 'mask.png', contentType: 'image/png', size: mask.bytes.length, sha256: sha256(mask.bytes) },
      ]);
      const result = await downloadPng(body.data[0]?.url ?? '');
      expect(result).toMatchObject({ width: WIDTH, height: HEIGHT, channels: 3 });
      expect(Buffer.from(result.samples).equals(expectedMaskedEdit(prompt))).toBe(true);
    });

    it('stores metadata and a request record that describes the inputs by name, size and hash, not by their bytes', async () => {
      const response = await postForm({ prompt: 'a hat', user: 'flow-42' }, [image, mask]);
      const body = editResponse.parse(response.json);
      const container = stack.blobs.getContainerClient(stack.imagesContainer);

      const properties = await container.getBlobClient(`${body.id}/0.png`).getProperties();
      expect(properties.contentType).toBe('image/png');
      expect(properties.metadata).toMatchObject({ model: 'gpt-image-1.5', format: 'png', requestid: body.id, user: 'flow-42' });
      const record: unknown = JSON.parse((await container.getBlobClient(`${body.id}/request.json`).downloadToBuffer()).toString('utf8'));
      expect(record).toMatchObject({
        id: body.id,
        operation: 'edit',
        request: {
          prompt: 'a hat',
          model: 'gpt-image-1.5',
          images: [{ field: 'image', fileName: 'photo.png', contentType: 'image/png', bytes: inputPng.length, width: WIDTH, height: HEIGHT, sha256: sha256(inputPng) }],
          mask: { field: 'mask', fileName: 'mask.png', bytes: mask.bytes.length, sha256: sha256(mask.bytes) },
        },
        images: [{ blobName: `${body.id}/0.png` }],
      });
      expect(JSON.stringify(record)).not.toContain(base64(inputPng).slice(0, 40));
    });

    it('sends several image[] parts upstream as image[] and answers n results', async () => {
      const files = [0, 1, 2].map((index) => ({ ...image, name: 'image[]', filename: `in-${index}.png` }));
      const response = await postForm({ prompt: 'three in one', n: '2' }, [...files, mask]);

      expect(response.status).toBe(200);
      expect(editResponse.parse(response.json).data).toHaveLength(2);
      expect(uploadedFiles().map((file) => [file.field, file.filename])).toEqual([
        ['image[]', 'in-0.png'],
        ['image[]', 'in-1.png'],
        ['image[]', 'in-2.png'],
        ['mask', 'mask.png'],
      ]);
      expect(stack.emulator.requests[0]?.body).toMatchObject({ prompt: 'three in one', n: '2', model: 'gpt-image-1.5' });
    });

    it('types each part from its bytes: an image declared application/octet-stream goes upstream as image/jpeg', async () => {
      const response = await postForm({ prompt: 'x', output_format: 'jpeg' }, [{ name: 'image', bytes: jpegInput, type: 'application/octet-stream', filename: 'upload.bin' }]);

      expect(response.status).toBe(200);
      expect(editResponse.parse(response.json).data[0]).toMatchObject({ content_type: 'image/jpeg', width: 40, height: 24 });
      expect(uploadedFiles()).toEqual([expect.objectContaining({ field: 'image', filename: 'upload.jpg', contentType: 'image/jpeg', sha256: sha256(jpegInput) })]);
    });

    it('takes Power Automate $multipart bodies with unquoted Content-Disposition parameters', async () => {
      const boundary = 'pa-boundary';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name=prompt\r\n\r\nmake it pop\r\n`),
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name=image; filename=in.png\r\nContent-Type: image/png\r\n\r\n`),
        inputPng,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const response = await post('/api/images/edits', body, `multipart/form-data; boundary=${boundary}`);

      expect(response.status).toBe(200);
      expect(uploadedFiles()).toEqual([expect.objectContaining({ field: 'image', filename: 'in.png', sha256: sha256(inputPng) })]);
    });

    it('passes input_fidelity to models that take it and returns base64 when asked', async () => {
      const response = await postForm({ prompt: 'x', input_fidelity: 'high', response_format: 'b64_json' }, [image]);

      expect(response.status).toBe(200);
      expect(stack.emulator.requests[0]?.body).toMatchObject({ input_fidelity: 'high' });
      const b64 = editResponse.parse(response.json).data[0]?.b64_json ?? '';
      expect(Buffer.from(b64, 'base64').subarray(1, 4).toString('latin1')).toBe('PNG');
    });
  });

  describe('upstream failures, mapped as for generations', () => {
    it('answers 400 contentFilter when the safety system refuses the edit', async () => {
      const response = await postForm({ prompt: 'x [emulator:filter-input]' }, [image, mask]);

      expect(response.status).toBe(400);
      expect(errorResponse.parse(response.json).error.code).toBe('contentFilter');
      expect(stack.emulator.requests).toHaveLength(1);
    });

    it('retries a 503 with the same inputs and succeeds', async () => {
      stack.emulator.enqueueFaults({ kind: 'status', status: 503, retryAfterMs: 10 });

      const response = await postJson({ prompt: 'x', images: [base64(inputPng)], mask: base64(maskPng()) });

      expect(response.status).toBe(200);
      expect(stack.emulator.requests.map((request) => request.status)).toEqual([503, 200]);
      expect(stack.emulator.requests.map((request) => request.files?.map((file) => file.sha256))).toEqual([
        [sha256(inputPng), sha256(maskPng())],
        [sha256(inputPng), sha256(maskPng())],
      ]);
    });
  });

  describe('JSON, for flows and scripts', () => {
    it('takes a Power Automate {"$content-type","$content"} file object, whatever type it declares', async () => {
      const prompt = 'paint a red door';
      const response = await postJson({
        prompt,
        images: [{ '$content-type': 'application/octet-stream', $content: base64(inputPng) }],
        mask: { '$content-type': 'image/png', $content: base64(maskPng()) },
      });

      expect(response.status).toBe(200);
      expect(uploadedFiles()).toEqual([
        { field: 'image', filename: 'image-0.png', contentType: 'image/png', size: inputPng.length, sha256: sha256(inputPng) },
        { field: 'mask', filename: 'mask.png', contentType: 'image/png', size: maskPng().length, sha256: sha256(maskPng()) },
      ]);
      const result = await downloadPng(editResponse.parse(response.json).data[0]?.url ?? '');
      expect(Buffer.from(result.samples).equals(expectedMaskedEdit(prompt))).toBe(true);
    });

    it('takes data URIs for images and mask', async () => {
      const response = await postJson({
        prompt: 'x',
        images: [`data:image/png;base64,${base64(inputPng)}`, `data:image/jpeg;base64,${base64(jpegInput)}`],
        mask: `data:image/png;base64,${base64(maskPng())}`,
      });

      expect(response.status).toBe(200);
      expect(uploadedFiles().map((file) => [file.field, file.contentType, file.sha256])).toEqual([
        ['image[]', 'image/png', sha256(inputPng)],
        ['image[]', 'image/jpeg', sha256(jpegInput)],
        ['mask', 'image/png', sha256(maskPng())],
      ]);
    });

    it('takes plain base64, with or without line breaks', async () => {
      const wrapped = base64(inputPng).replace(/.{76}/g, '$&\r\n');
      const response = await postJson({ prompt: 'make it warmer', images: [wrapped] });

      expect(response.status).toBe(200);
      expect(uploadedFiles()).toEqual([expect.objectContaining({ field: 'image', sha256: sha256(inputPng) })]);
      // Without a mask the emulator tints every pixel a quarter of the way toward the prompt's colour.
      const result = await downloadPng(editResponse.parse(response.json).data[0]?.url ?? '');
      const colour = editColour('make it warmer', 0);
      const original = Array.from(inputSamples.subarray(0, 3));
      expect(pixelOf(result, 0, 0)).toEqual(original.map((value, c) => (value * 3 + (colour[c] ?? 0)) >> 2));
    });

    it('reads images and masks by reference from the inbox container and from earlier results', async () => {
      const inbox = stack.blobs.getContainerClient(stack.inboxContainer);
      await inbox.getBlockBlobClient('product-shots/chair.png').uploadData(inputPng);
      await inbox.getBlockBlobClient('masks/door.png').uploadData(maskPng());
      const prompt = 'paint a red door';

      const first = await postJson({ prompt, images: [{ blob: 'inbox/product-shots/chair.png' }], mask: { blob: 'inbox/masks/door.png' } });
      expect(first.status).toBe(200);
      expect(uploadedFiles()).toEqual([
        expect.objectContaining({ field: 'image', filename: 'chair.png', sha256: sha256(inputPng) }),
        expect.objectContaining({ field: 'mask', sha256: sha256(maskPng()) }),
      ]);
      const firstResult = editResponse.parse(first.json).data[0];

      // An earlier result, named as the API returned it.
      stack.emulator.reset();
      const second = await postJson({ prompt: 'again', images: [{ blob: `images/${firstResult?.blob_name ?? ''}` }] });
      expect(second.status).toBe(200);
      const stored = await stack.blobs.getContainerClient(stack.imagesContainer).getBlobClient(firstResult?.blob_name ?? '').downloadToBuffer();
      expect(uploadedFiles()).toEqual([expect.objectContaining({ field: 'image', filename: '0.png', sha256: sha256(stored) })]);
    });
  });

  describe('refusals before anything is spent upstream', () => {
    const webp = webpHeader(WIDTH, HEIGHT);
    const bigPng = Buffer.concat([inputPng, Buffer.alloc(IMAGE_LIMIT)]);

    const formCases: readonly [string, number, string, string, Record<string, string>, readonly FormFile[]][] = [
      ['no image', 400, 'MissingParameter', 'image', { prompt: 'x' }, []],
      ['no prompt', 400, 'MissingParameter', 'prompt', {}, [image]],
      ['17 images', 400, 'TooManyImages', 'image', { prompt: 'x' }, Array.from({ length: 17 }, () => ({ ...image, name: 'image[]' }))],
      ['bytes that are no image, declared image/png', 415, 'UnsupportedImageType', 'image', { prompt: 'x' }, [{ ...image, bytes: Buffer.from('definitely not a picture') }]],
      ['a WebP image (Azure OpenAI edits PNG and JPEG only)', 415, 'UnsupportedImageType', 'image', { prompt: 'x' }, [{ ...image, bytes: webp, type: 'image/webp' }]],
      ['an image over the per-file limit', 413, 'FileTooLarge', 'image', { prompt: 'x' }, [{ ...image, bytes: bigPng }]],
      ['a second image over the per-file limit', 413, 'FileTooLarge', 'image[1]', { prompt: 'x' }, [{ ...image, name: 'image[]' }, { ...image, name: 'image[]', bytes: bigPng }]],
      ['a JPEG mask', 415, 'UnsupportedImageType', 'mask', { prompt: 'x' }, [image, { ...mask, bytes: jpegInput }]],
      ['a mask without alpha', 400, 'InvalidMask', 'mask', { prompt: 'x' }, [image, { ...mask, bytes: maskPng(WIDTH, HEIGHT, 3) }]],
      ['a mask of another size', 400, 'MaskSizeMismatch', 'mask', { prompt: 'x' }, [image, { ...mask, bytes: maskPng(WIDTH / 2, HEIGHT) }]],
      ['a mask over its limit', 413, 'FileTooLarge', 'mask', { prompt: 'x' }, [image, { ...mask, bytes: Buffer.concat([maskPng(), Buffer.alloc(MASK_LIMIT)]) }]],
      ['two masks', 400, 'InvalidParameter', 'mask', { prompt: 'x' }, [image, mask, mask]],
      ['input_fidelity for gpt-image-2', 400, 'UnsupportedParameter', 'input_fidelity', { prompt: 'x', model: 'gpt-image-2', input_fidelity: 'low' }, [image]],
      ['input_fidelity high for gpt-image-1-mini', 400, 'InvalidParameter', 'input_fidelity', { prompt: 'x', model: 'gpt-image-1-mini', input_fidelity: 'high' }, [image]],
      ['a size gpt-image-1.5 does not make', 400, 'InvalidParameter', 'size', { prompt: 'x', size: '2048x2048' }, [image]],
      ['an unknown model', 400, 'UnknownModel', 'model', { prompt: 'x', model: 'gpt-image-9' }, [image]],
      ['an unknown field', 400, 'UnknownParameter', 'style', { prompt: 'x', style: 'vivid' }, [image]],
      ['a field named like an Object property', 400, 'UnknownParameter', 'constructor', { prompt: 'x', constructor: 'y' }, [image]],
      ['an unknown file part', 400, 'UnknownParameter', 'picture', { prompt: 'x' }, [image, { ...image, name: 'picture' }]],
      ['n that is not a number', 400, 'InvalidParameter', 'n', { prompt: 'x', n: 'two' }, [image]],
    ];

    it.each(formCases)('multipart: %s → %i %s', async (_case, status, code, target, fields, files) => {
      const response = await postForm(fields, files);

      expect(response.status).toBe(status);
      expect(errorResponse.parse(response.json).error).toMatchObject({ code, target });
      expect(stack.emulator.requests).toHaveLength(0);
    });

    it('multipart: an image sent as a text field → 400 naming the field', async () => {
      const response = await postForm({ prompt: 'x', image: base64(inputPng) }, []);

      expect(response.status).toBe(400);
      expect(errorResponse.parse(response.json).error).toMatchObject({ code: 'InvalidParameter', target: 'image' });
      expect(stack.emulator.requests).toHaveLength(0);
    });

    it('multipart: a body over the request limit → 413 PayloadTooLarge', async () => {
      const files = Array.from({ length: 8 }, (_, index) => ({ ...image, name: 'image[]', bytes: Buffer.concat([inputPng, Buffer.alloc(150_000 + index)]) }));
      const response = await postForm({ prompt: 'x' }, files);

      expect(response.status).toBe(413);
      expect(errorResponse.parse(response.json).error.code).toBe('PayloadTooLarge');
      expect(stack.emulator.requests).toHaveLength(0);
    });

    it('multipart: a broken form → 400 InvalidMultipart', async () => {
      const response = await post('/api/images/edits', Buffer.from('--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx'), 'multipart/form-data; boundary=b');

      expect(response.status).toBe(400);
      expect(errorResponse.parse(response.json).error).toMatchObject({ code: 'InvalidMultipart', target: 'body' });
      expect(stack.emulator.requests).toHaveLength(0);
    });

    it('multipart: a form that breaks after a large first part → 400 InvalidMultipart', async () => {
      const body = Buffer.concat([
        Buffer.from('--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'),
        Buffer.alloc(100_000, 1),
        // A part whose header never ends: busboy gives up once it passes its header size limit.
        Buffer.from(`\r\n--b\r\nX-Long: ${'h'.repeat(100_000)}`),
      ]);
      const response = await post('/api/images/edits', body, 'multipart/form-data; boundary=b');

      expect(response.status).toBe(400);
      expect(errorResponse.parse(response.json).error).toMatchObject({ code: 'InvalidMultipart', target: 'body' });
      expect(stack.emulator.requests).toHaveLength(0);
    });

    it('another content type → 415 UnsupportedMediaType', async () => {
      const response = await post('/api/images/edits', inputPng, 'image/png');

      expect(response.status).toBe(415);
      expect(errorResponse.parse(response.json).error.code).toBe('UnsupportedMediaType');
      expect(stack.emulator.requests).toHaveLength(0);
    });

    const jsonCases: readonly [string, number, string, string, Record<string, unknown>][] = [
      ['no images', 400, 'MissingParameter', 'images', { prompt: 'x' }],
      ['an empty images array', 400, 'MissingParameter', 'images', { prompt: 'x', images: [] }],
      ['17 images', 400, 'TooManyImages', 'images', { prompt: 'x', images: Array.from({ length: 17 }, () => base64(inputPng)) }],
      ['a URL (never fetched)', 400, 'UnsupportedImageSource', 'images[0]', { prompt: 'x', images: ['https://example.com/cat.png'] }],
      ['a data URI that is not base64', 400, 'InvalidImageData', 'images[0]', { prompt: 'x', images: ['data:image/png,rawbytes'] }],
      ['text that is not base64', 400, 'InvalidImageData', 'images[0]', { prompt: 'x', images: ['this is not base64!'] }],
      ['an object of another shape', 400, 'InvalidParameter', 'images[0]', { prompt: 'x', images: [{ url: 'https://example.com/cat.png' }] }],
      ['a blob in another container', 400, 'InvalidBlobReference', 'images[0].blob', { prompt: 'x', images: [{ blob: 'jobs/secret.png' }] }],
      ['a blob name that climbs out', 400, 'InvalidBlobReference', 'images[0].blob', { prompt: 'x', images: [{ blob: 'inbox/../jobs/secret.png' }] }],
      ['a blob that does not exist', 400, 'InputBlobNotFound', 'images[0].blob', { prompt: 'x', images: [{ blob: 'inbox/nothing-here.png' }] }],
      ['base64 over the per-file limit', 413, 'FileTooLarge', 'images[0]', { prompt: 'x', images: [base64(bigPng)] }],
      ['a second image that is no image', 415, 'UnsupportedImageType', 'images[1]', { prompt: 'x', images: [base64(inputPng), base64(Buffer.from('plain text, not pixels'))] }],
      ['a mask without alpha', 400, 'InvalidMask', 'mask', { prompt: 'x', images: [base64(inputPng)], mask: base64(maskPng(WIDTH, HEIGHT, 3)) }],
      ['a mask of another size', 400, 'MaskSizeMismatch', 'mask', { prompt: 'x', images: [base64(inputPng)], mask: { $content: base64(maskPng(WIDTH, HEIGHT / 2)) } }],
      ['a mask URL', 400, 'UnsupportedImageSource', 'mask', { prompt: 'x', images: [base64(inputPng)], mask: 'http://169.254.169.254/metadata' }],
    ];

    it.each(jsonCases)('JSON: %s → %i %s', async (_case, status, code, target, body) => {
      const response = await postJson(body);

      expect(response.status).toBe(status);
      expect(errorResponse.parse(response.json).error).toMatchObject({ code, target });
      expect(stack.emulator.requests).toHaveLength(0);
    });

    it('JSON: a referenced blob over the per-file limit → 413 without reading it whole', async () => {
      await stack.blobs.getContainerClient(stack.inboxContainer).getBlockBlobClient('big.png').uploadData(bigPng);

      const response = await postJson({ prompt: 'x', images: [{ blob: 'inbox/big.png' }] });

      expect(response.status).toBe(413);
      expect(errorResponse.parse(response.json).error).toMatchObject({ code: 'FileTooLarge', target: 'images[0]' });
      expect(stack.emulator.requests).toHaveLength(0);
    });

    it('JSON: referenced blobs that together pass the request limit → 413 PayloadTooLarge', async () => {
      const inbox = stack.blobs.getContainerClient(stack.inboxContainer);
      const near = Buffer.concat([inputPng, Buffer.alloc(IMAGE_LIMIT - inputPng.length - 1)]);
      await inbox.getBlockBlobClient('near-limit.png').uploadData(near);

      const response = await postJson({ prompt: 'x', images: Array.from({ length: 6 }, () => ({ blob: 'inbox/near-limit.png' })) });

      expect(response.status).toBe(413);
      expect(errorResponse.parse(response.json).error).toMatchObject({ code: 'PayloadTooLarge', target: 'images[5]' });
      expect(stack.emulator.requests).toHaveLength(0);
    });
  });
});
