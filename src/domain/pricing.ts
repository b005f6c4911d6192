import type { ImageModel } from './image-models';
import { MODEL_RULES } from './image-models';

/**
 * What a request costs, from the tokens the upstream reports and a dated price table. The defaults
 * are the public list prices per million tokens (USD); agreements differ, so PRICE_TABLE overrides
 * any of them (see README "Usage, cost and budgets").
 */
export interface ModelPrices {
  /** Per million tokens. */
  readonly textInput: number;
  readonly imageInput: number;
  readonly imageOutput: number;
  readonly textOutput: number;
  /** Models billed per image instead of per token (dall-e-3): `quality:size` → price of one image. */
  readonly perImage?: Readonly<Record<string, number>> | undefined;
}

export interface PriceTable {
  /** The day these prices were read from their source (YYYY-MM-DD); every usage record names it. */
  readonly asOf: string;
  readonly currency: string;
  readonly models: Readonly<Record<ImageModel, ModelPrices>>;
}

export const DEFAULT_PRICE_TABLE: PriceTable = {
  asOf: '2026-11-05',
  currency: 'USD',
  models: {
    'gpt-image-1': { textInput: 5, imageInput: 10, imageOutput: 40, textOutput: 0 },
    'gpt-image-1-mini': { textInput: 2, imageInput: 2.5, imageOutput: 8, textOutput: 0 },
    'gpt-image-1.5': { textInput: 5, imageInput: 8, imageOutput: 32, textOutput: 10 },
    'gpt-image-2': { textInput: 5, imageInput: 8, imageOutput: 30, textOutput: 10 },
    'dall-e-3': {
      textInput: 0,
      imageInput: 0,
      imageOutput: 0,
      textOutput: 0,
      perImage: {
        'standard:1024x1024': 0.04,
        'standard:1792x1024': 0.08,
        'standard:1024x1792': 0.08,
        'hd:1024x1024': 0.08,
        'hd:1792x1024': 0.12,
        'hd:1024x1792': 0.12,
      },
    },
  },
};

/** The tokens of one upstream call, by kind, as the price table bills them. */
export interface TokenUsage {
  readonly textInput: number;
  readonly imageInput: number;
  readonly imageOutput: number;
  readonly textOutput: number;
}

export const NO_TOKENS: TokenUsage = { textInput: 0, imageInput: 0, imageOutput: 0, textOutput: 0 };

/** Rounded to a millionth of the currency unit: sums of many small costs stay exact enough to add up. */
export const roundCost = (cost: number) => Math.round(cost * 1_000_000) / 1_000_000;

/** The cost of one call: its tokens at the model's prices, or its images for models billed per image. */
export function costOf(
  model: ImageModel,
  call: { readonly tokens: TokenUsage; readonly images: number; readonly size: string; readonly quality: string },
  prices: PriceTable,
): number {
  const price = prices.models[model];
  const perImage = price.perImage?.[`${call.quality}:${call.size}`];
  if (perImage !== undefined) return roundCost(perImage * call.images);
  const { tokens } = call;
  return roundCost(
    (tokens.textInput * price.textInput + tokens.imageInput * price.imageInput + tokens.imageOutput * price.imageOutput + tokens.textOutput * price.textOutput) /
      1_000_000,
  );
}

// Output tokens per image of the gpt-image family by quality, for 1024x1024, 1024x1536 and 1536x1024
// (the published token table); other sizes scale the square figure by area.
const OUTPUT_TOKENS: Readonly<Record<string, readonly [number, number, number]>> = {
  low: [272, 408, 400],
  medium: [1056, 1584, 1568],
  high: [4160, 6240, 6208],
};
const TABLE_SIZES = ['1024x1024', '1024x1536', '1536x1024'];

/** What a request will be billed at most, as far as can be told before the call: what budgets reserve. */
export interface CallEstimate {
  readonly model: ImageModel;
  readonly n: number;
  readonly size?: string | undefined;
  readonly quality?: string | undefined;
  readonly promptLength: number;
  /** The dimensions of an edit's input images (none for a generation). */
  readonly inputImages: readonly { readonly width: number; readonly height: number }[];
}

/**
 * Tokens a call is expected to use, erring high: `auto` quality counts as high and `auto` size as the
 * largest listed size, every prompt character as a third of a token, and input images by tiles.
 */
export function estimateTokens(call: CallEstimate): TokenUsage {
  const quality = call.quality === undefined || call.quality === 'auto' || !(call.quality in OUTPUT_TOKENS) ? 'high' : call.quality;
  const table = OUTPUT_TOKENS[quality] ?? OUTPUT_TOKENS['high'] ?? [0, 0, 0];
  const listed = TABLE_SIZES.indexOf(call.size ?? 'auto');
  let perImage: number;
  if (listed >= 0) perImage = table[listed] ?? 0;
  else {
    const match = /^(\d+)x(\d+)$/.exec(call.size ?? '');
    perImage = match ? Math.ceil(table[0] * ((Number(match[1]) * Number(match[2])) / (1024 * 1024))) : Math.max(...table);
  }
  const imageInput = call.inputImages.reduce((sum, image) => sum + inputImageTokens(image.width, image.height), 0);
  return { textInput: Math.ceil(call.promptLength / 3), imageInput, imageOutput: perImage * call.n, textOutput: 0 };
}

/** The vision tile rule at high detail: fit within 2048, shortest side to 768, then 170 per 512-pixel tile plus 85. */
function inputImageTokens(width: number, height: number): number {
  const fit = Math.min(1, 2048 / Math.max(width, height));
  const shortest = Math.min(width, height) * fit;
  const scale = fit * Math.min(1, 768 / Math.max(shortest, 1));
  const tiles = Math.ceil((width * scale) / 512) * Math.ceil((height * scale) / 512);
  return 85 + 170 * tiles;
}

/** The estimated cost of a call, for a budget's reservation. */
export function estimateCost(call: CallEstimate, prices: PriceTable): number {
  const quality = MODEL_RULES[call.model].family === 'dall-e' ? (call.quality ?? 'standard') : (call.quality ?? 'auto');
  return costOf(call.model, { tokens: estimateTokens(call), images: call.n, size: call.size ?? '1024x1024', quality }, prices);
}
