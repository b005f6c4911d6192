import { StorageError } from '../../src/domain/errors';
import type { GenerateImagesDependencies } from '../../src/domain/generate-images';
import { generateImages } from '../../src/domain/generate-images';
import { FakeImageModelClient } from '../fakes/fake-image-model-client';
import { InMemoryImageStore } from '../fakes/in-memory-image-store';
import { makeTestMetering } from '../fakes/in-memory-usage';
import { makePng } from '../helpers/images';

function makeDependencies() {
  const imageModel = new FakeImageModelClient();
  const imageStore = new InMemoryImageStore();
  const clock = { now: () => new Date('2026-11-25T12:00:00Z') };
  const metered = makeTestMetering({ clock });
  const dependencies: GenerateImagesDependencies = {
    imageModel,
    imageStore,
    clock,
    ids: { newId: () => 'request-1' },
    deploymentFor: (model) => model,
    metering: metered.metering,
  };
  return { imageModel, imageStore, dependencies, metered };
}

const command = { prompt: 'a fox', model: 'gpt-image-1.5', options: { n: 2 }, includeBase64: false, caller: { id: 'user:ana', source: 'user' } } as const;

describe('generateImages', () => {
  it('tells every image when it is complete, then commits it and records the same facts the caller gets', async () => {
    const { imageModel, imageStore, dependencies } = makeDependencies();
    imageModel.willReturn(makePng(64, 48), makePng(64, 48, [1, 2, 3]));

    const result = await generateImages(command, dependencies);

    expect(imageStore.staged.map((image) => image.ended)).toEqual([true, true]);
    expect([...imageStore.blobs.keys()]).toEqual(['request-1/0.png', 'request-1/1.png']);
    expect(imageStore.records.get('request-1/request.json')).toMatchObject({
      id: 'request-1',
      completedAt: '2026-11-25T12:00:00.000Z',
      response: { size: '64x48', quality: 'high', outputFormat: 'png' },
      images: result.images.map(({ blobName, bytes, width, height, contentType }) => ({ blobName, bytes, width, height, contentType })),
    });
  });

  it('writes no record and discards every staged image when a commit fails, but counts the billed call', async () => {
    const { imageModel, imageStore, dependencies, metered } = makeDependencies();
    imageModel.willReturn(makePng(64, 48), makePng(64, 48));
    imageStore.commitError = new StorageError('Blob Storage is down.');

    await expect(generateImages(command, dependencies)).rejects.toBe(imageStore.commitError);

    expect(imageStore.records.size).toBe(0);
    expect(imageStore.blobs.size).toBe(0);
    expect(imageStore.discarded).toBe(2);
    // The upstream answered, so it billed the call: the usage counts even though the request failed.
    expect([...metered.usageStore.records.values()]).toEqual([expect.objectContaining({ requestId: 'request-1', caller: 'user:ana', images: 2, outcome: 'StorageError' })]);
  });
});
