import type { ContainerClient } from '@azure/storage-blob';
import { RestError } from '@azure/storage-blob';
import { Readable } from 'node:stream';

import { AppError, StorageError, ValidationError } from '../domain/errors';
import type { ImageUpload, InputBlob, InputContainer, InputImageStore } from '../domain/ports';
import { blobClientIn } from './blob-client';

/** Edit inputs referenced by name in the app's own containers, read with the app's identity; job inputs kept in the jobs container. */
export class BlobInputImageStore implements InputImageStore {
  constructor(private readonly containers: Readonly<Record<InputContainer, ContainerClient>>) {}

  async readInputBlob(
    container: InputContainer,
    blobName: string,
    options: { readonly target: string; readonly checkSize: (bytes: number) => void; readonly abortSignal?: AbortSignal | undefined },
  ): Promise<InputBlob> {
    const blob = blobClientIn(this.containers[container], blobName);
    let body: NodeJS.ReadableStream | undefined;
    let declared: number | undefined;
    try {
      const response = await blob.download(0, undefined, options.abortSignal ? { abortSignal: options.abortSignal } : {});
      body = response.readableStreamBody;
      declared = response.contentLength;
    } catch (error: unknown) {
      if (error instanceof RestError && error.statusCode === 404) {
        throw new ValidationError(`There is no blob '${blobName}' in the ${container} container.`, { code: 'InputBlobNotFound', target: options.target, cause: error });
      }
      throw new StorageError(`Could not read ${container}/${blobName} from Blob Storage.`, error);
    }
    if (!body) throw new StorageError(`Blob Storage sent no content for ${container}/${blobName}.`);

    const content: Uint8Array[] = [];
    let size = 0;
    try {
      options.checkSize(declared ?? 0);
      for await (const chunk of body) {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('The blob download yielded something other than bytes.');
        size += chunk.length;
        options.checkSize(size);
        content.push(chunk);
      }
    } catch (error: unknown) {
      // Stop the download: an oversized or broken blob is not read any further.
      if (body instanceof Readable) body.destroy();
      if (error instanceof AppError) throw error;
      throw new StorageError(`Could not read ${container}/${blobName} from Blob Storage.`, error);
    }
    return { size, content };
  }

  async saveJobInput(blobName: string, upload: ImageUpload): Promise<void> {
    const blob = blobClientIn(this.containers.jobs, blobName);
    try {
      await blob.uploadStream(Readable.from(upload.content), undefined, undefined, {
        blobHTTPHeaders: { blobContentType: upload.contentType },
      });
    } catch (error: unknown) {
      throw new StorageError(`Could not keep ${blobName} for the job.`, error);
    }
  }
}
