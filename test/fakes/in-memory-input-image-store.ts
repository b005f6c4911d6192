import { ValidationError } from '../../src/domain/errors';
import type { ImageUpload, InputBlob, InputContainer, InputImageStore } from '../../src/domain/ports';

/** Input blobs in memory, keyed `container/name`; hands them out in small chunks as a download would. */
export class InMemoryInputImageStore implements InputImageStore {
  readonly blobs = new Map<string, Buffer>();
  readonly reads: string[] = [];

  readInputBlob(container: InputContainer, blobName: string, options: { readonly target: string; readonly checkSize: (bytes: number) => void }): Promise<InputBlob> {
    this.reads.push(`${container}/${blobName}`);
    const bytes = this.blobs.get(`${container}/${blobName}`);
    if (!bytes) return Promise.reject(new ValidationError(`There is no blob '${blobName}' in the ${container} container.`, { code: 'InputBlobNotFound', target: options.target }));
    try {
      options.checkSize(bytes.length);
    } catch (error: unknown) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const content: Buffer[] = [];
    for (let offset = 0; offset < bytes.length; offset += 1000) content.push(bytes.subarray(offset, offset + 1000));
    return Promise.resolve({ size: bytes.length, content });
  }

  saveJobInput(blobName: string, upload: ImageUpload): Promise<void> {
    this.blobs.set(`jobs/${blobName}`, Buffer.concat(upload.content));
    return Promise.resolve();
  }
}
