import { assertValidBlobName, blobNameProblem, MAX_BLOB_NAME_LENGTH, MAX_BLOB_NAME_SEGMENTS } from '../../src/domain/blob-names';

describe('the blob-name check', () => {
  it.each([
    'photo.png',
    'folder/sub/photo.png',
    '_inputs/a.png',
    '%2e%2e/jobs/x.png', // percent signs are part of the name: the SDK escapes them
    'räksmörgås/🦊.png',
    'a..b/c...d.png',
    'x'.repeat(MAX_BLOB_NAME_LENGTH),
    Array.from({ length: MAX_BLOB_NAME_SEGMENTS }, () => 'a').join('/'),
  ])('accepts %j', (name) => {
    expect(blobNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['', 'is empty'],
    ['../jobs/secprobe/probe.png', "has an empty, '.' or '..' path segment"],
    ['photos/../../jobs/x.png', "has an empty, '.' or '..' path segment"],
    ['./photo.png', "has an empty, '.' or '..' path segment"],
    ['photos/./photo.png', "has an empty, '.' or '..' path segment"],
    ['photos//photo.png', "has an empty, '.' or '..' path segment"],
    ['/photo.png', "has an empty, '.' or '..' path segment"],
    ['photos/', "has an empty, '.' or '..' path segment"],
    ['photos/..', "has an empty, '.' or '..' path segment"],
    ['photos\\..\\jobs\\x.png', 'contains a backslash'],
    ['photo\n.png', 'contains a control character'],
    ['photo\u0000.png', 'contains a control character'],
    ['photo\u009b.png', 'contains a control character'],
    ['photo\ud800.png', 'is not well-formed Unicode'],
    ['photo.png.', 'ends with a dot'],
    ['x'.repeat(MAX_BLOB_NAME_LENGTH + 1), `is longer than ${MAX_BLOB_NAME_LENGTH} characters`],
    [Array.from({ length: MAX_BLOB_NAME_SEGMENTS + 1 }, () => 'a').join('/'), `has more than ${MAX_BLOB_NAME_SEGMENTS} path segments`],
  ])('refuses %j: it %s', (name, problem) => {
    expect(blobNameProblem(name)).toBe(problem);
  });

  it('throws a 400 naming the field, with the code asked for, without repeating the name', () => {
    expect(thrown(() => assertValidBlobName('../jobs/x.png', 'images[0].blob', 'InvalidBlobReference'))).toMatchObject({
      status: 400,
      code: 'InvalidBlobReference',
      target: 'images[0].blob',
      message: expect.not.stringContaining('jobs/x.png') as unknown,
    });
    expect(thrown(() => assertValidBlobName('a//b', 'mask'))).toMatchObject({ code: 'InvalidBlobName', target: 'mask' });
  });
});

function thrown(action: () => void): unknown {
  try {
    action();
  } catch (error: unknown) {
    return error;
  }
  throw new Error('nothing was thrown');
}
