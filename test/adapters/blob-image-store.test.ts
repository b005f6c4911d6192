import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';

import { BlobImageStore } from '../../src/adapters/blob-image-store';
import { SharedKeySasSigner } from '../../src/adapters/blob-sas';
import type { Clock } from '../../src/domain/ports';
import { testStorageConnectionString, uniqueContainerName } from '../helpers/azurite';
import { makePng } from '../helpers/images';

const DAY = 24 * 60 * 60_000;

describe('BlobImageStore against Azurite', () => {
  let container: ContainerClient;
  let credential: StorageSharedKeyCredential;

  beforeAll(async () => {
    const service = BlobServiceClient.fromConnectionString(testStorageConnectionString());
    if (!(service.credential instanceof StorageSharedKeyCredential)) throw new Error('Azurite connection string without a key');
    credential = service.credential;
    container = service.getContainerClient(uniqueContainerName('image-store'));
    await container.create();
  });

  afterAll(async () => {
    await container.deleteIfExists();
  });

  const storeWith = (clock: Clock = { now: () => new Date() }, lifetimeInMs = DAY) =>
    new BlobImageStore({
      container,
      sasSigner: new SharedKeySasSigner(credential, container.url, clock),
      sasLifetimeInMs: lifetimeInMs,
      clock,
      blockSizeInBytes: 64 * 1024,
      maxUploadBytesInFlight: 128 * 1024,
    });

  async function names(prefix: string): Promise<string[]> {
    const found: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix })) found.push(blob.name);
    return found;
  }

  // A PNG header followed by random bytes: big enough for several blocks, cheap to make.
  const bigImage = () => Buffer.concat([makePng(300, 200), randomBytes(300_000)]);

  it('stages blocks invisibly and commits them with type, cache headers, MD5 and metadata', async () => {
    const store = storeWith();
    const image = bigImage();
    const staged = store.stageImage('a/0.png', { keepBytes: false });
    for (let offset = 0; offset < image.length; offset += 10_000) await staged.write(image.subarray(offset, offset + 10_000));

    expect(await names('a/')).toEqual([]);
    const stored = await staged.commit({ metadata: { model: 'gpt-image-1.5', requestid: 'a' } });

    expect(stored).toMatchObject({ blobName: 'a/0.png', bytes: image.length, width: 300, height: 200, contentType: 'image/png' });
    const blob = container.getBlobClient('a/0.png');
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe('image/png');
    expect(properties.cacheControl).toBe('private, max-age=86400, immutable');
    expect(properties.metadata).toEqual({ model: 'gpt-image-1.5', requestid: 'a' });
    expect(Buffer.from(properties.contentMD5 ?? new Uint8Array())).toEqual(createHash('md5').update(image).digest());
    expect(await blob.downloadToBuffer()).toEqual(image);
  });

  it('leaves no blob behind when an image is discarded before or after commit', async () => {
    const store = storeWith();
    const before = store.stageImage('b/0.png', { keepBytes: false });
    await before.write(bigImage());
    await before.discard();
    const after = store.stageImage('b/1.png', { keepBytes: false });
    await after.write(makePng(4, 4));
    await after.commit({ metadata: {} });
    expect(await names('b/')).toEqual(['b/1.png']);
    await after.discard();
    expect(await names('b/')).toEqual([]);
  });

  it('starts uploading the last partial block of an image when the image ends, before commit', async () => {
    const image = bigImage();
    const staged = storeWith().stageImage('tail/0.png', { keepBytes: false });
    await staged.write(image);
    await staged.end();

    // Nothing awaits the uploads until commit, so wait for Azurite to hold every byte as uncommitted blocks.
    const blob = container.getBlockBlobClient('tail/0.png');
    const stagedBytes = async () => ((await blob.getBlockList('uncommitted')).uncommittedBlocks ?? []).reduce((sum, block) => sum + block.size, 0);
    for (let attempt = 0; attempt < 100 && (await stagedBytes()) < image.length; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await stagedBytes()).toBe(image.length);
    expect(await names('tail/')).toEqual([]);

    await staged.commit({ metadata: {} });
    expect(await blob.downloadToBuffer()).toEqual(image);
  });

  it('stores every image whole when more images write at once than the upload budget holds', async () => {
    const store = new BlobImageStore({
      container,
      sasSigner: new SharedKeySasSigner(credential, container.url, { now: () => new Date() }),
      sasLifetimeInMs: DAY,
      clock: { now: () => new Date() },
      blockSizeInBytes: 64 * 1024,
      maxUploadBytesInFlight: 64 * 1024, // one block for the whole store
    });
    const images = [bigImage(), bigImage(), bigImage(), bigImage()];
    await Promise.all(
      images.map(async (image, index) => {
        const staged = store.stageImage(`budget/${index}.png`, { keepBytes: false });
        for (let offset = 0; offset < image.length; offset += 50_000) await staged.write(image.subarray(offset, offset + 50_000));
        await staged.end();
        await staged.commit({ metadata: {} });
      }),
    );
    for (const [index, image] of images.entries()) {
      expect((await container.getBlobClient(`budget/${index}.png`).downloadToBuffer()).equals(image)).toBe(true);
    }
  });

  it('refuses to commit bytes that are not an image', async () => {
    const staged = storeWith().stageImage('c/0.png', { keepBytes: false });
    await staged.write(Buffer.from('<html>not an image</html>'));
    await expect(staged.commit({ metadata: {} })).rejects.toMatchObject({ code: 'StorageError' });
    expect(await names('c/')).toEqual([]);
  });

  it('keeps the bytes for inline base64 when asked', async () => {
    const image = makePng(8, 8);
    const staged = storeWith().stageImage('d/0.png', { keepBytes: true });
    await staged.write(image);
    expect((await staged.commit({ metadata: {} })).base64).toBe(image.toString('base64'));
  });

  it('writes the request record as JSON', async () => {
    await storeWith().saveRecord('e/request.json', { prompt: 'ein Fuchs im Schnee – 雪の狐' });
    const blob = container.getBlobClient('e/request.json');
    expect((await blob.getProperties()).contentType).toBe('application/json; charset=utf-8');
    expect(JSON.parse((await blob.downloadToBuffer()).toString('utf8'))).toEqual({ prompt: 'ein Fuchs im Schnee – 雪の狐' });
  });

  describe('read links', () => {
    const image = makePng(16, 16);
    beforeAll(async () => {
      await container.getBlockBlobClient('links/0.png').uploadData(image);
      await container.getBlockBlobClient('links/1.png').uploadData(makePng(2, 2));
    });

    it('downloads exactly the blob with a fresh link', async () => {
      const link = await storeWith().createReadLink('links/0.png');
      const response = await request(link.url);
      expect(response.statusCode).toBe(200);
      expect(Buffer.from(await response.body.arrayBuffer())).toEqual(image);
      expect(new URL(link.url).searchParams.get('sp')).toBe('r');
    });

    it('refuses a tampered signature, another blob, writes and an expired link', async () => {
      const link = new URL((await storeWith().createReadLink('links/0.png')).url);
      const tampered = new URL(link);
      tampered.searchParams.set('sig', Buffer.alloc(32, 7).toString('base64'));
      const otherBlob = new URL(link);
      otherBlob.pathname = otherBlob.pathname.replace('links/0.png', 'links/1.png');
      const widened = new URL(link);
      widened.searchParams.set('sp', 'rw');
      const twoDaysAgo: Clock = { now: () => new Date(Date.now() - 2 * DAY) };
      const expired = (await storeWith(twoDaysAgo).createReadLink('links/0.png')).url;

      for (const url of [tampered.toString(), otherBlob.toString(), widened.toString(), expired]) {
        const response = await request(url);
        await response.body.dump();
        expect(response.statusCode).toBe(403);
      }
      const write = await request(link.toString(), { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'overwrite' });
      await write.body.dump();
      expect(write.statusCode).toBe(403);
      expect(await container.getBlobClient('links/0.png').downloadToBuffer()).toEqual(image);
    });
  });
});
