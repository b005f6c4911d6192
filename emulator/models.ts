/**
 * What each emulated image model accepts and how the service answers for it (image-api.md §1, §3, §4, §5).
 * The validation and the success payloads both read from here, so a model's behaviour lives in one place.
 */

export const MODEL_IDS = ['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2', 'dall-e-3'] as const;
export type ModelId = (typeof MODEL_IDS)[number];

export type Quality = 'low' | 'medium' | 'high';

export interface ModelProfile {
  readonly id: ModelId;
  readonly family: 'gpt-image' | 'dall-e';
  /** The fixed size list, or 'flexible' for the gpt-image-2 rule (§3.3). */
  readonly sizes: readonly string[] | 'flexible';
  readonly maxPromptLength: number;
  readonly maxImages: number;
  /** What `quality: auto` (or no quality) becomes; Azure documents medium for 1-mini, high for the rest. */
  readonly autoQuality: Quality;
  /** Accepted `input_fidelity` values; 'refused' when the model does not allow the parameter at all. */
  readonly inputFidelities: readonly ('low' | 'high')[] | 'refused';
  readonly supportsEdits: boolean;
}

export const GPT_IMAGE_SIZES = ['1024x1024', '1024x1536', '1536x1024', 'auto'] as const;
export const DALL_E_3_SIZES = ['1024x1024', '1792x1024', '1024x1792'] as const;

const gptImage = (id: ModelId, overrides: Partial<ModelProfile> = {}): ModelProfile => ({
  id,
  family: 'gpt-image',
  sizes: GPT_IMAGE_SIZES,
  maxPromptLength: 32_000,
  maxImages: 10,
  autoQuality: 'high',
  inputFidelities: ['high', 'low'],
  supportsEdits: true,
  ...overrides,
});

export const MODEL_PROFILES: Readonly<Record<ModelId, ModelProfile>> = {
  'gpt-image-1': gptImage('gpt-image-1'),
  // The SDK documents "only low" for 1-mini; Azure says "not supported". Accepting only 'low' satisfies both clients.
  'gpt-image-1-mini': gptImage('gpt-image-1-mini', { autoQuality: 'medium', inputFidelities: ['low'] }),
  'gpt-image-1.5': gptImage('gpt-image-1.5'),
  // gpt-image-2 always edits at high fidelity; the API refuses attempts to change it.
  'gpt-image-2': gptImage('gpt-image-2', { sizes: 'flexible', inputFidelities: 'refused' }),
  'dall-e-3': {
    id: 'dall-e-3',
    family: 'dall-e',
    sizes: DALL_E_3_SIZES,
    maxPromptLength: 4_000,
    maxImages: 1,
    autoQuality: 'high',
    inputFidelities: 'refused',
    supportsEdits: false,
  },
};

export function isModelId(value: string): value is ModelId {
  return (MODEL_IDS as readonly string[]).includes(value);
}

export interface Dimensions {
  readonly width: number;
  readonly height: number;
}

const SIZE_PATTERN = /^(\d{1,5})x(\d{1,5})$/;

export function parseSize(size: string): Dimensions | undefined {
  const match = SIZE_PATTERN.exec(size);
  if (!match) return undefined;
  return { width: Number(match[1]), height: Number(match[2]) };
}

export function formatSize({ width, height }: Dimensions): string {
  return `${width}x${height}`;
}

/**
 * The gpt-image-2 size rule (§3.3): edges multiples of 16, longest edge ≤ 3840, ratio ≤ 3:1,
 * 655 360 ≤ pixels ≤ 8 294 400. Returns why a size breaks it, or undefined when it is fine.
 */
export function flexibleSizeProblem(size: string): string | undefined {
  if (size === 'auto') return undefined;
  const dimensions = parseSize(size);
  if (!dimensions) return 'the size must be WIDTHxHEIGHT';
  const { width, height } = dimensions;
  if (width === 0 || height === 0) return 'both edges must be positive';
  if (width % 16 !== 0 || height % 16 !== 0) return 'both edges must be multiples of 16';
  if (Math.max(width, height) > 3840) return 'the longest edge must be at most 3840 pixels';
  if (Math.max(width, height) / Math.min(width, height) > 3) return 'the aspect ratio must be at most 3:1';
  const pixels = width * height;
  if (pixels < 655_360) return 'the image must have at least 655360 pixels';
  if (pixels > 8_294_400) return 'the image must have at most 8294400 pixels';
  return undefined;
}

export interface ImageUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly total_tokens: number;
  readonly input_tokens_details: { readonly text_tokens: number; readonly image_tokens: number };
  readonly output_tokens_details: { readonly image_tokens: number; readonly text_tokens: number };
}

// Output tokens per image for the gpt-image-1 family (§5.1): 1024x1024, 1024x1536, 1536x1024.
const OUTPUT_TOKENS: Readonly<Record<Quality, Readonly<Record<string, number>>>> = {
  low: { '1024x1024': 272, '1024x1536': 408, '1536x1024': 400 },
  medium: { '1024x1024': 1056, '1024x1536': 1584, '1536x1024': 1568 },
  high: { '1024x1024': 4160, '1024x1536': 6240, '1536x1024': 6208 },
};

/** Output tokens for one image; sizes outside the table scale the square figure by area (an approximation). */
export function outputTokensPerImage(quality: Quality, size: Dimensions): number {
  const listed = OUTPUT_TOKENS[quality][formatSize(size)];
  if (listed !== undefined) return listed;
  return Math.round((OUTPUT_TOKENS[quality]['1024x1024'] ?? 0) * ((size.width * size.height) / (1024 * 1024)));
}

/** Input image tokens, approximated with the vision tile rule: a base cost plus a cost per 512-pixel tile. */
export function inputImageTokens(size: Dimensions, fidelity: 'low' | 'high'): number {
  const tiles = Math.ceil(size.width / 512) * Math.ceil(size.height / 512);
  return fidelity === 'high' ? 85 + 170 * tiles : 65 + 129 * tiles;
}

export function computeUsage(options: {
  readonly prompt: string;
  readonly quality: Quality;
  readonly size: Dimensions;
  readonly count: number;
  readonly inputImageTokens?: number;
  readonly partialImages?: number;
}): ImageUsage {
  // Roughly four characters per text token, as for the GPT tokenisers.
  const textTokens = Math.max(1, Math.ceil(options.prompt.length / 4));
  const imageTokens = options.inputImageTokens ?? 0;
  // Each streamed partial image costs 100 extra output tokens (§5.1).
  const perImage = outputTokensPerImage(options.quality, options.size) + 100 * (options.partialImages ?? 0);
  const output = perImage * options.count;
  return {
    input_tokens: textTokens + imageTokens,
    output_tokens: output,
    total_tokens: textTokens + imageTokens + output,
    input_tokens_details: { text_tokens: textTokens, image_tokens: imageTokens },
    output_tokens_details: { image_tokens: output, text_tokens: 0 },
  };
}
