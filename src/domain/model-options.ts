import type { ImageModel, OutputFormat } from './image-models';
import { BACKGROUNDS, checkFlexibleSize, INPUT_FIDELITIES, MAX_USER_LENGTH, MODEL_RULES, MODERATIONS, OUTPUT_FORMATS, STYLES } from './image-models';

/**
 * What each model accepts, read from MODEL_RULES (the table request validation uses) and told to
 * whoever builds a request: the model catalogue (`GET /models`) and the connector's per-model form.
 * Every value offered here passes `checkImageOptions`, so a form built from it cannot produce a
 * request the server refuses (test/domain/model-options.test.ts tries every combination).
 */

export type ImageOperation = 'generate' | 'edit';

/** The request fields whose allowed values depend on the model (and the output format). */
export type OptionName = 'n' | 'size' | 'quality' | 'background' | 'output_compression' | 'moderation' | 'style' | 'input_fidelity' | 'user';

/** One field a request may carry, with exactly the values the model's rules accept. */
export type OptionRule =
  | { readonly kind: 'choice'; readonly name: OptionName; readonly values: readonly string[] }
  | { readonly kind: 'integer'; readonly name: OptionName; readonly minimum: number; readonly maximum: number }
  | { readonly kind: 'text'; readonly name: OptionName; readonly maxLength: number };

/**
 * Sizes offered for models that take any size within a rule (gpt-image-2): the fixed sizes of the
 * other gpt-image models plus larger ones, each inside the rule.
 */
export const FLEXIBLE_SIZE_CHOICES = ['auto', '1024x1024', '1536x1024', '1024x1536', '2048x2048', '2048x1152', '1152x2048', '3840x2160', '2160x3840'] as const;

export const operationsOf = (model: ImageModel): readonly ImageOperation[] => (MODEL_RULES[model].supportsEdits ? ['generate', 'edit'] : ['generate']);

export const outputFormatsOf = (model: ImageModel): readonly OutputFormat[] => (MODEL_RULES[model].supportsOutputOptions ? OUTPUT_FORMATS : []);

export const sizesOf = (model: ImageModel): readonly string[] => {
  const { sizes } = MODEL_RULES[model];
  return sizes === 'flexible' ? FLEXIBLE_SIZE_CHOICES.filter((size) => checkFlexibleSize(size) === undefined) : sizes;
};

/**
 * The fields `model` accepts for `operation`. With `outputFormat` (jpeg or png) the choices that
 * depend on it are narrowed: a transparent background needs png, compression needs jpeg. Without
 * it, the request goes out as png (the default), and the choices are png's.
 */
export function optionRules(model: ImageModel, operation: ImageOperation, outputFormat?: OutputFormat): OptionRule[] {
  const rules = MODEL_RULES[model];
  const format = outputFormat ?? 'png';
  const options: OptionRule[] = [];
  if (rules.maxImages > 1) options.push({ kind: 'integer', name: 'n', minimum: 1, maximum: rules.maxImages });
  options.push({ kind: 'choice', name: 'size', values: sizesOf(model) });
  options.push({ kind: 'choice', name: 'quality', values: rules.qualities });
  if (rules.supportsOutputOptions) {
    options.push({ kind: 'choice', name: 'background', values: format === 'png' ? BACKGROUNDS : BACKGROUNDS.filter((value) => value !== 'transparent') });
    if (format === 'jpeg') options.push({ kind: 'integer', name: 'output_compression', minimum: 0, maximum: 100 });
    options.push({ kind: 'choice', name: 'moderation', values: MODERATIONS });
  }
  if (rules.supportsStyle && operation === 'generate') options.push({ kind: 'choice', name: 'style', values: STYLES });
  if (operation === 'edit' && rules.inputFidelities.length > 0) {
    options.push({ kind: 'choice', name: 'input_fidelity', values: INPUT_FIDELITIES.filter((value) => rules.inputFidelities.includes(value)) });
  }
  options.push({ kind: 'text', name: 'user', maxLength: MAX_USER_LENGTH });
  return options;
}

/** One model as the catalogue describes it. */
export interface ModelDescription {
  readonly id: ImageModel;
  /** What a picker shows. */
  readonly title: string;
  /** True for the model requests get when they name none. */
  readonly isDefault: boolean;
  readonly operations: readonly ImageOperation[];
  readonly sizes: readonly string[];
  /** True when sizes other than those listed are accepted too (within `sizeRule`). */
  readonly customSizes: boolean;
  readonly sizeRule?: string | undefined;
  readonly qualities: readonly string[];
  /** Objects, so that a picker (x-ms-dynamic-values) can list them. */
  readonly outputFormats: readonly { readonly id: OutputFormat; readonly title: string }[];
  readonly backgrounds: readonly string[];
  readonly moderations: readonly string[];
  readonly styles: readonly string[];
  readonly inputFidelities: readonly string[];
  readonly maxImages: number;
  readonly maxPromptLength: number;
}

const FORMAT_TITLES: Readonly<Record<OutputFormat, string>> = { png: 'PNG (transparency possible)', jpeg: 'JPEG (smaller, no transparency)' };

export function describeModel(model: ImageModel, defaultModel: ImageModel): ModelDescription {
  const rules = MODEL_RULES[model];
  const flexible = rules.sizes === 'flexible';
  return {
    id: model,
    title: model === defaultModel ? `${model} (default)` : model,
    isDefault: model === defaultModel,
    operations: operationsOf(model),
    sizes: sizesOf(model),
    customSizes: flexible,
    ...(flexible ? { sizeRule: 'WIDTHxHEIGHT with both edges multiples of 16, the longest at most 3840, at most 3:1, 655,360 to 8,294,400 pixels' } : {}),
    qualities: rules.qualities,
    outputFormats: outputFormatsOf(model).map((id) => ({ id, title: FORMAT_TITLES[id] })),
    backgrounds: rules.supportsOutputOptions ? BACKGROUNDS : [],
    moderations: rules.supportsOutputOptions ? MODERATIONS : [],
    styles: rules.supportsStyle ? STYLES : [],
    inputFidelities: rules.inputFidelities,
    maxImages: rules.maxImages,
    maxPromptLength: rules.maxPromptLength,
  };
}
