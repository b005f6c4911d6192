import type { ErrorDetail } from './errors';

/**
 * What each image model accepts, per the Azure OpenAI images API (see README "Models").
 * Requests are checked against these rules before anything is spent upstream.
 */
export const IMAGE_MODELS = ['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2', 'dall-e-3'] as const;
export type ImageModel = (typeof IMAGE_MODELS)[number];

// The values of the enumerated parameters, for the wire schemas and the model catalogue alike.
export const OUTPUT_FORMATS = ['png', 'jpeg'] as const;
export const BACKGROUNDS = ['transparent', 'opaque', 'auto'] as const;
export const MODERATIONS = ['low', 'auto'] as const;
export const STYLES = ['vivid', 'natural'] as const;
export const INPUT_FIDELITIES = ['low', 'high'] as const;
export const MAX_USER_LENGTH = 256;

export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export type Background = (typeof BACKGROUNDS)[number];

export interface ModelRules {
  readonly family: 'gpt-image' | 'dall-e';
  /** A fixed list, or 'flexible' for models that take any size within the gpt-image-2 rule. */
  readonly sizes: readonly string[] | 'flexible';
  readonly qualities: readonly string[];
  readonly maxImages: number;
  readonly maxPromptLength: number;
  readonly supportsOutputOptions: boolean;
  readonly supportsStyle: boolean;
  readonly supportsEdits: boolean;
  /** Empty when the parameter must not be sent at all. */
  readonly inputFidelities: readonly string[];
}

const GPT_IMAGE_SIZES = ['1024x1024', '1536x1024', '1024x1536', 'auto'];
const GPT_IMAGE_QUALITIES = ['low', 'medium', 'high', 'auto'];

const gptImage = (overrides: Partial<ModelRules>): ModelRules => ({
  family: 'gpt-image',
  sizes: GPT_IMAGE_SIZES,
  qualities: GPT_IMAGE_QUALITIES,
  maxImages: 10,
  maxPromptLength: 32_000,
  supportsOutputOptions: true,
  supportsStyle: false,
  supportsEdits: true,
  inputFidelities: ['low', 'high'],
  ...overrides,
});

export const MODEL_RULES: Readonly<Record<ImageModel, ModelRules>> = {
  'gpt-image-1': gptImage({}),
  'gpt-image-1-mini': gptImage({ inputFidelities: ['low'] }),
  'gpt-image-1.5': gptImage({}),
  // gpt-image-2 always edits at high fidelity and refuses the parameter.
  'gpt-image-2': gptImage({ sizes: 'flexible', inputFidelities: [] }),
  'dall-e-3': {
    family: 'dall-e',
    sizes: ['1024x1024', '1792x1024', '1024x1792'],
    qualities: ['standard', 'hd'],
    maxImages: 1,
    maxPromptLength: 4_000,
    supportsOutputOptions: false,
    supportsStyle: true,
    supportsEdits: false,
    inputFidelities: [],
  },
};

export function isImageModel(value: string): value is ImageModel {
  return (IMAGE_MODELS as readonly string[]).includes(value);
}

const FLEXIBLE_SIZE = /^(\d{2,5})x(\d{2,5})$/;

/** The gpt-image-2 size rule: edges multiples of 16, longest ≤ 3840, ratio ≤ 3:1, 655,360–8,294,400 pixels. */
export function checkFlexibleSize(size: string): string | undefined {
  if (size === 'auto') return undefined;
  const match = FLEXIBLE_SIZE.exec(size);
  if (!match) return `size must be 'auto' or WIDTHxHEIGHT (for example 2048x1152), not '${size}'.`;
  const width = Number(match[1]);
  const height = Number(match[2]);
  if (width % 16 !== 0 || height % 16 !== 0) return `Both edges of size must be multiples of 16; '${size}' is not.`;
  if (Math.max(width, height) > 3840) return `The longest edge of size may be at most 3840 pixels; '${size}' is larger.`;
  if (Math.max(width, height) / Math.min(width, height) > 3) return `size may be at most 3:1 in either direction; '${size}' is wider.`;
  const pixels = width * height;
  if (pixels < 655_360 || pixels > 8_294_400) {
    return `size must have between 655,360 and 8,294,400 pixels; '${size}' has ${pixels.toLocaleString('en-US')}.`;
  }
  return undefined;
}

/** The options every image request shares, as the caller sent them (after the wire schema). */
export interface ImageOptions {
  readonly n?: number | undefined;
  readonly size?: string | undefined;
  readonly quality?: string | undefined;
  readonly outputFormat?: string | undefined;
  readonly outputCompression?: number | undefined;
  readonly background?: string | undefined;
  readonly moderation?: string | undefined;
  readonly style?: string | undefined;
  readonly inputFidelity?: string | undefined;
}

const list = (values: readonly string[]) => values.map((value) => `'${value}'`).join(', ');

/** Every way `options` breaks the rules of `model`, each naming the field (snake_case, as on the wire). */
export function checkImageOptions(
  model: ImageModel,
  prompt: string,
  options: ImageOptions,
  operation: 'generate' | 'edit',
): ErrorDetail[] {
  const rules = MODEL_RULES[model];
  const problems: ErrorDetail[] = [];
  const refuse = (target: string, message: string, code = 'InvalidParameter') => problems.push({ code, target, message });
  const unsupported = (target: string, why: string) => refuse(target, `${target} is not supported by ${model}: ${why}`, 'UnsupportedParameter');

  if (operation === 'edit' && !rules.supportsEdits) {
    refuse('model', `${model} cannot edit images; use a gpt-image model.`, 'OperationNotSupported');
  }
  if (prompt.length > rules.maxPromptLength) {
    refuse('prompt', `prompt may be at most ${rules.maxPromptLength} characters for ${model}; it has ${prompt.length}.`);
  }
  if (options.n !== undefined && options.n > rules.maxImages) {
    refuse('n', rules.maxImages === 1 ? `${model} generates exactly one image per request (n must be 1).` : `n may be at most ${rules.maxImages}.`);
  }
  if (options.size !== undefined) {
    if (rules.sizes === 'flexible') {
      const problem = checkFlexibleSize(options.size);
      if (problem) refuse('size', problem);
    } else if (!rules.sizes.includes(options.size)) {
      refuse('size', `Invalid size '${options.size}' for ${model}. Supported values are: ${list(rules.sizes)}.`);
    }
  }
  if (options.quality !== undefined && !rules.qualities.includes(options.quality)) {
    refuse('quality', `Invalid quality '${options.quality}' for ${model}. Supported values are: ${list(rules.qualities)}.`);
  }
  if (rules.supportsOutputOptions) {
    const format = options.outputFormat ?? 'png';
    if (options.background === 'transparent' && format !== 'png') {
      refuse('background', `A transparent background needs output_format 'png' (Azure OpenAI cannot make transparent ${format}).`);
    }
    if (options.outputCompression !== undefined && format !== 'jpeg') {
      refuse('output_compression', `output_compression applies only to output_format 'jpeg'; this request asks for '${format}'.`);
    }
  } else {
    for (const [target, value] of [
      ['output_format', options.outputFormat],
      ['output_compression', options.outputCompression],
      ['background', options.background],
      ['moderation', options.moderation],
    ] as const) {
      if (value !== undefined) unsupported(target, 'it is a gpt-image parameter.');
    }
  }
  if (options.style !== undefined && !rules.supportsStyle) unsupported('style', 'style is a dall-e-3 parameter.');
  if (options.inputFidelity !== undefined && !rules.inputFidelities.includes(options.inputFidelity)) {
    if (rules.inputFidelities.length === 0) {
      unsupported('input_fidelity', `${model} does not let callers choose the input fidelity; omit it.`);
    } else {
      refuse('input_fidelity', `Invalid input_fidelity '${options.inputFidelity}' for ${model}. Supported values are: ${list(rules.inputFidelities)}.`);
    }
  }
  return problems;
}
