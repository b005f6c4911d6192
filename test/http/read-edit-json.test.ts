import { AppError } from '../../src/domain/errors';
import { parseBlobReference } from '../../src/http/read-edit-json';

describe('parseBlobReference', () => {
  it.each([
    ['images/3f2a/0.png', 'images', '3f2a/0.png'],
    ['inbox/product-shots/chair.png', 'inbox', 'product-shots/chair.png'],
    ['inbox/with space/ünïcode.png', 'inbox', 'with space/ünïcode.png'],
  ])('reads %s', (reference, container, blobName) => {
    expect(parseBlobReference(reference, 'images[0].blob')).toEqual({ container, blobName });
  });

  it.each([
    ['another container', 'jobs/secret.png'],
    ['no container', 'chair.png'],
    ['an empty name', 'inbox/'],
    ['a parent segment', 'inbox/../jobs/secret.png'],
    ['a dot segment', 'inbox/./chair.png'],
    ['an empty segment', 'inbox//chair.png'],
    ['a backslash', 'inbox/a\\..\\b.png'],
    ['a control character', 'inbox/chair\n.png'],
    ['a URL', 'https://account.blob.core.windows.net/inbox/chair.png'],
    ['a name over 1024 characters', `inbox/${'a'.repeat(1025)}`],
  ])('refuses %s', (_case, reference) => {
    let error: unknown;
    try {
      parseBlobReference(reference, 'mask.blob');
    } catch (caught: unknown) {
      error = caught;
    }
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ status: 400, code: 'InvalidBlobReference', target: 'mask.blob' });
  });
});
