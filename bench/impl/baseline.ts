import { BlobSASPermissions, BlobServiceClient } from '@azure/storage-blob';
import { randomUUID } from 'node:crypto';
import { AzureOpenAI } from 'openai';

import type { StorageSettings, UpstreamSettings } from '../protocol';
import type { BenchTarget } from './target';

const SAS_LIFETIME_IN_MS = 24 * 60 * 60_000;

/**
 * The obvious way, written fairly: the official SDK with its defaults, each image decoded from the
 * response's base64 string and uploaded in one call, the images of one request uploaded in parallel,
 * then one SAS link per image.
 */
export function createBaselineTarget(upstream: UpstreamSettings, storage: StorageSettings): BenchTarget {
  const client = new AzureOpenAI({
    endpoint: upstream.emulatorUrl,
    apiKey: upstream.apiKey,
    apiVersion: upstream.apiVersion,
    deployment: upstream.deployment,
  });
  const container = BlobServiceClient.fromConnectionString(storage.connectionString).getContainerClient(storage.container);
  const size = upstream.size === '1024x1024' ? upstream.size : 'auto';

  return {
    async generate(n) {
      const response = await client.images.generate({ model: upstream.deployment, prompt: upstream.prompt, n, size });
      const requestId = randomUUID();
      const expiresOn = new Date(Date.now() + SAS_LIFETIME_IN_MS);
      const images = await Promise.all(
        (response.data ?? []).map(async (item, index) => {
          if (item.b64_json === undefined) throw new Error(`Image ${index} came without b64_json.`);
          const buffer = Buffer.from(item.b64_json, 'base64');
          const blob = container.getBlockBlobClient(`${requestId}/${index}.png`);
          await blob.uploadData(buffer, { blobHTTPHeaders: { blobContentType: 'image/png' } });
          const url = await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn });
          return { url, bytes: buffer.length };
        }),
      );
      if (images.length !== n) return { ok: false, code: 'WrongImageCount' };
      return { ok: true, decodedBytes: images.reduce((sum, image) => sum + image.bytes, 0), responseBytes: 0, images };
    },
  };
}
