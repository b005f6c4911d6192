import { HttpRequest, InvocationContext } from '@azure/functions';
import { z } from 'zod';

import { loadConfig } from '../../src/config';
import { createServices } from '../../src/create-services';
import { withErrorHandling } from '../../src/http/error-response';
import { createGenerateImagesHandler } from '../../src/http/generate-images-handler';
import type { StorageSettings, UpstreamSettings } from '../protocol';
import type { BenchTarget } from './target';

const successBody = z.object({
  data: z.array(z.object({ url: z.url(), bytes: z.number().int().positive(), width: z.number(), height: z.number() }).loose()).min(1),
});
const errorBody = z.object({ error: z.object({ code: z.string() }).loose() });

/** Our generate path in-process: the real handler and the real clients built by the composition root. */
export function createOursTarget(upstream: UpstreamSettings, storage: StorageSettings): BenchTarget {
  const config = loadConfig({
    AZURE_OPENAI_ENDPOINT: upstream.emulatorUrl,
    AZURE_OPENAI_API_VERSION: upstream.apiVersion,
    AZURE_OPENAI_AUTH: 'key',
    AZURE_OPENAI_API_KEY: upstream.apiKey,
    AZURE_OPENAI_DEPLOYMENTS: upstream.deployment,
    ImagesStorage: storage.connectionString,
    IMAGES_CONTAINER: storage.container,
  });
  const services = createServices(config);
  const handler = withErrorHandling(createGenerateImagesHandler(() => Promise.resolve(services)));

  return {
    async generate(n) {
      const request = new HttpRequest({
        method: 'POST',
        url: 'http://localhost/api/images/generations',
        headers: { 'content-type': 'application/json' },
        body: { string: JSON.stringify({ prompt: upstream.prompt, n, size: upstream.size }) },
      });
      const response = await handler(request, new InvocationContext({ logHandler: () => {} }));
      const status = response.status ?? 200;
      if (status !== 200) {
        const parsed = errorBody.safeParse(response.jsonBody);
        return { ok: false, code: parsed.success ? parsed.data.error.code : `HTTP ${status}` };
      }
      const parsed = successBody.safeParse(response.jsonBody);
      if (!parsed.success) return { ok: false, code: 'UnexpectedResponseShape' };
      if (parsed.data.data.length !== n) return { ok: false, code: 'WrongImageCount' };
      const images = parsed.data.data.map((image) => ({ url: image.url, bytes: image.bytes }));
      return { ok: true, decodedBytes: images.reduce((sum, image) => sum + image.bytes, 0), responseBytes: 0, images };
    },
  };
}
