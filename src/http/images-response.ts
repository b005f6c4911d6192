import type { GenerateImagesResult } from '../domain/generate-images';

/** The upstream's response shape (`created`, `data[]`, `usage`) with our links and per-image facts added. */
export function toImagesResponse(result: GenerateImagesResult) {
  return {
    created: result.created,
    id: result.requestId,
    model: result.model,
    size: result.size,
    quality: result.quality,
    output_format: result.outputFormat,
    ...(result.background === undefined ? {} : { background: result.background }),
    data: result.images.map((image) => ({
      url: image.url,
      ...(image.base64 === undefined ? {} : { b64_json: image.base64 }),
      ...(image.revisedPrompt === undefined ? {} : { revised_prompt: image.revisedPrompt }),
      blob_name: image.blobName,
      content_type: image.contentType,
      bytes: image.bytes,
      width: image.width,
      height: image.height,
      expires_at: image.expiresOn.toISOString(),
    })),
    ...(result.usage === undefined ? {} : { usage: result.usage }),
  };
}
