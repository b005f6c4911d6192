import { costOf, DEFAULT_PRICE_TABLE, estimateCost, estimateTokens } from '../../src/domain/pricing';
import { tokensFromUsage } from '../../src/domain/usage';

describe('tokensFromUsage', () => {
  it('splits the usage object the images API returns by kind', () => {
    expect(
      tokensFromUsage({
        input_tokens: 250,
        output_tokens: 4160,
        total_tokens: 4410,
        input_tokens_details: { text_tokens: 50, image_tokens: 200 },
        output_tokens_details: { image_tokens: 4160, text_tokens: 0 },
      }),
    ).toEqual({ textInput: 50, imageInput: 200, imageOutput: 4160, textOutput: 0 });
  });

  it('reads older shapes without details as text in and image out, and no usage as no tokens', () => {
    expect(tokensFromUsage({ input_tokens: 12, output_tokens: 272 })).toEqual({ textInput: 12, imageInput: 0, imageOutput: 272, textOutput: 0 });
    expect(tokensFromUsage(undefined)).toEqual({ textInput: 0, imageInput: 0, imageOutput: 0, textOutput: 0 });
  });
});

describe('costOf', () => {
  it('prices tokens per million at the model’s rates', () => {
    // gpt-image-1: $5 text in, $10 image in, $40 image out per million tokens.
    const tokens = { textInput: 1_000, imageInput: 2_000, imageOutput: 4_160, textOutput: 0 };
    expect(costOf('gpt-image-1', { tokens, images: 1, size: '1024x1024', quality: 'high' }, DEFAULT_PRICE_TABLE)).toBe(0.005 + 0.02 + 0.1664);
  });

  it('prices dall-e-3 per image by quality and size', () => {
    const none = { textInput: 0, imageInput: 0, imageOutput: 0, textOutput: 0 };
    expect(costOf('dall-e-3', { tokens: none, images: 1, size: '1792x1024', quality: 'hd' }, DEFAULT_PRICE_TABLE)).toBe(0.12);
  });
});

describe('estimateTokens', () => {
  it('errs high: auto quality is high, auto size the largest listed, and input images count by tiles', () => {
    expect(estimateTokens({ model: 'gpt-image-1.5', n: 2, promptLength: 30, inputImages: [] })).toEqual({ textInput: 10, imageInput: 0, imageOutput: 12_480, textOutput: 0 });
    expect(estimateTokens({ model: 'gpt-image-1.5', n: 1, quality: 'low', size: '1024x1024', promptLength: 3, inputImages: [{ width: 1024, height: 1024 }] })).toEqual({
      textInput: 1,
      imageInput: 765,
      imageOutput: 272,
      textOutput: 0,
    });
    // gpt-image-2 sizes outside the table scale the square figure by area.
    expect(estimateTokens({ model: 'gpt-image-2', n: 1, quality: 'low', size: '2048x2048', promptLength: 0, inputImages: [] }).imageOutput).toBe(1088);
  });

  it('is never below what the emulator bills for the same request', () => {
    const estimate = estimateCost({ model: 'gpt-image-1.5', n: 1, quality: 'low', size: '1024x1024', promptLength: 20, inputImages: [] }, DEFAULT_PRICE_TABLE);
    const billed = costOf('gpt-image-1.5', { tokens: { textInput: 5, imageInput: 0, imageOutput: 272, textOutput: 0 }, images: 1, size: '1024x1024', quality: 'low' }, DEFAULT_PRICE_TABLE);
    expect(estimate).toBeGreaterThanOrEqual(billed);
  });
});
