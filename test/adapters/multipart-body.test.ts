import { MultipartBody } from '../../src/adapters/multipart-body';

async function read(body: MultipartBody): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body.stream()) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

describe('MultipartBody', () => {
  const image = Buffer.from(Array.from({ length: 300 }, (_, index) => index % 256));
  const body = () =>
    new MultipartBody(
      [
        ['prompt', 'a "quoted"\r\nprompt — ünïcode'],
        ['n', '2'],
      ],
      [
        { field: 'image[]', fileName: 'a.png', contentType: 'image/png', size: image.length, content: [image.subarray(0, 1), image.subarray(1)] },
        { field: 'image[]', fileName: 'we"ird\r\n.png', contentType: 'image/jpeg', size: 0, content: [] },
      ],
      'test-boundary',
    );

  it('declares the length it writes and parses back to the same fields and bytes', async () => {
    const multipart = body();
    const bytes = await read(multipart);

    expect(bytes.length).toBe(multipart.length);
    const form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': multipart.contentType }, body: bytes }).formData();
    expect(form.get('prompt')).toBe('a "quoted"\r\nprompt — ünïcode');
    expect(form.get('n')).toBe('2');
    const files = form.getAll('image[]').filter((value): value is File => typeof value !== 'string');
    expect(files.map((file) => [file.name, file.type, file.size])).toEqual([
      ['a.png', 'image/png', 300],
      // Escaped as browsers escape them, so the header stays intact and the name survives.
      ['we"ird\r\n.png', 'image/jpeg', 0],
    ]);
    expect(Buffer.from(await files[0]!.arrayBuffer()).equals(image)).toBe(true);
  });

  it('gives a fresh stream with the same bytes every time, for retries', async () => {
    const multipart = body();

    expect((await read(multipart)).equals(await read(multipart))).toBe(true);
  });
});
