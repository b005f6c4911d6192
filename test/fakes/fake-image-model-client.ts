import type { CallOptions, ImageEditRequest, ImageGenerationRequest, ImageGenerationResult, ImageModelClient, ImageSink } from '../../src/domain/ports';

/** Answers each call (generation or edit) with the scripted images (streamed into the sink in small pieces) or error. */
export class FakeImageModelClient implements ImageModelClient {
  readonly calls: { request: ImageGenerationRequest; options: CallOptions }[] = [];
  readonly editCalls: { request: ImageEditRequest; options: CallOptions }[] = [];
  private readonly script: (Buffer[] | Error)[] = [];

  willReturn(...images: Buffer[]): this {
    this.script.push(images);
    return this;
  }

  willFail(error: Error): this {
    this.script.push(error);
    return this;
  }

  generateImages(request: ImageGenerationRequest, sink: ImageSink, options: CallOptions = {}): Promise<ImageGenerationResult> {
    this.calls.push({ request, options });
    return this.answer(sink);
  }

  editImages(request: ImageEditRequest, sink: ImageSink, options: CallOptions = {}): Promise<ImageGenerationResult> {
    this.editCalls.push({ request, options });
    return this.answer(sink);
  }

  private async answer(sink: ImageSink): Promise<ImageGenerationResult> {
    const next = this.script.shift();
    if (next === undefined) throw new Error('FakeImageModelClient: no scripted answer left');
    if (next instanceof Error) throw next;
    for (const [index, image] of next.entries()) {
      const writer = sink.openImage(index);
      for (let offset = 0; offset < image.length; offset += 1000) await writer.write(image.subarray(offset, offset + 1000));
      await writer.end();
    }
    return { created: 1_700_000_000, images: next.map(() => ({})), usage: { total_tokens: 1 }, quality: 'high' };
  }
}
