/**
 * The per-model parameter rules of image-api.md §3.1–§3.3 and §4.2, as zod schemas, with zod's issues
 * turned into the service's own 400 bodies (`invalid_request_error` with `param` and `code`).
 */
import { z } from 'zod';

import type { EmulatorHttpError } from './errors';
import { invalidRequest } from './errors';
import type { Dimensions, ModelProfile, Quality } from './models';
import { DALL_E_3_SIZES, flexibleSizeProblem, parseSize } from './models';
import type { ApiFlavour, ImageOperation } from './routes';

export interface ImageParameters {
  readonly prompt: string;
  readonly n: number;
  /** The size to draw; undefined for an edit whose size is 'auto' (it takes the first input's size). */
  readonly size: Dimensions | undefined;
  /** The values as requested (defaults filled in), which streamed partial events echo. */
  readonly requestedSize: string;
  readonly requestedQuality: string;
  /** `auto` resolved per model (gpt-image) or the DALL-E quality. */
  readonly quality: Quality | 'standard' | 'hd';
  readonly outputFormat: 'png' | 'jpeg';
  readonly outputCompression: number | undefined;
  readonly background: 'transparent' | 'opaque' | 'auto';
  readonly responseFormat: 'b64_json' | 'url';
  readonly stream: boolean;
  readonly partialImages: number;
  readonly inputFidelity: 'low' | 'high' | undefined;
}

export interface ValidationContext {
  readonly model: ModelProfile;
  readonly operation: ImageOperation;
  readonly flavour: ApiFlavour;
}

// Multipart fields arrive as text; these become numbers or booleans before validation, as the service parses them.
const INTEGER_FIELDS = new Set(['n', 'output_compression', 'partial_images']);
const BOOLEAN_FIELDS = new Set(['stream']);

/** Converts multipart text values the way the service reads them; values that do not parse stay strings and fail as such. */
export function coerceFormFields(fields: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (INTEGER_FIELDS.has(key) && /^-?\d+(\.\d+)?$/.test(value)) out[key] = Number(value);
    else if (BOOLEAN_FIELDS.has(key) && (value === 'true' || value === 'false')) out[key] = value === 'true';
    else out[key] = value;
  }
  return out;
}

function sizeSchema(model: ModelProfile): z.ZodType<string> {
  if (model.sizes !== 'flexible') return z.enum(model.sizes);
  return z.string().superRefine((size, context) => {
    const problem = flexibleSizeProblem(size);
    if (problem) {
      context.addIssue({
        code: 'custom',
        input: size,
        message: `Invalid value: '${size}'. The size must be 'auto' or WIDTHxHEIGHT with both edges multiples of 16, the longest edge at most 3840 pixels, an aspect ratio of at most 3:1 and between 655360 and 8294400 pixels in total; here ${problem}.`,
      });
    }
  });
}

function gptImageSchema(context: ValidationContext): z.ZodType<Record<string, unknown>> {
  const { model, operation } = context;
  const fidelity =
    operation === 'edits' && model.inputFidelities !== 'refused' ? { input_fidelity: z.enum(model.inputFidelities).optional() } : {};
  return z.strictObject({
    prompt: z.string().min(1).max(model.maxPromptLength),
    model: z.string().optional(),
    n: z.int().min(1).max(model.maxImages).optional(),
    size: sizeSchema(model).optional(),
    quality: z.enum(['low', 'medium', 'high', 'auto']).optional(),
    // WebP is OpenAI-only; Azure documents "WEBP images aren't supported".
    output_format: z.enum(context.flavour === 'openai' ? ['png', 'jpeg', 'webp'] : ['png', 'jpeg']).optional(),
    output_compression: z.int().min(0).max(100).optional(),
    background: z.enum(['transparent', 'opaque', 'auto']).optional(),
    moderation: z.enum(['low', 'auto']).optional(),
    stream: z.boolean().optional(),
    partial_images: z.int().min(0).max(3).optional(),
    user: z.string().optional(),
    safety_identifier: z.string().optional(),
    ...fidelity,
  });
}

function dallE3Schema(model: ModelProfile): z.ZodType<Record<string, unknown>> {
  return z.strictObject({
    prompt: z.string().min(1).max(model.maxPromptLength),
    model: z.string().optional(),
    n: z.int().min(1).max(1).optional(),
    size: z.enum(DALL_E_3_SIZES).optional(),
    quality: z.enum(['standard', 'hd']).optional(),
    style: z.enum(['vivid', 'natural']).optional(),
    response_format: z.enum(['url', 'b64_json']).optional(),
    user: z.string().optional(),
  });
}

// The parsed values, read back with their types; the schemas above guarantee these shapes.
const parsedFields = z.object({
  prompt: z.string(),
  n: z.number().optional(),
  size: z.string().optional(),
  quality: z.enum(['low', 'medium', 'high', 'auto', 'standard', 'hd']).optional(),
  output_format: z.enum(['png', 'jpeg', 'webp']).optional(),
  output_compression: z.number().optional(),
  background: z.enum(['transparent', 'opaque', 'auto']).optional(),
  response_format: z.enum(['url', 'b64_json']).optional(),
  stream: z.boolean().optional(),
  partial_images: z.number().optional(),
  input_fidelity: z.enum(['low', 'high']).optional(),
});

const schemaCache = new Map<string, z.ZodType<Record<string, unknown>>>();

function schemaFor(context: ValidationContext): z.ZodType<Record<string, unknown>> {
  const key = `${context.model.id}|${context.operation}|${context.flavour}`;
  let schema = schemaCache.get(key);
  if (!schema) {
    schema = context.model.family === 'dall-e' ? dallE3Schema(context.model) : gptImageSchema(context);
    schemaCache.set(key, schema);
  }
  return schema;
}

/**
 * Checks a request's parameters for its model and fills in the defaults, or throws the 400 the
 * service would send for the first problem (unknown parameters first, then field by field).
 */
export function validateParameters(body: Readonly<Record<string, unknown>>, context: ValidationContext): ImageParameters {
  const { model, operation } = context;
  // JSON null means "use the default" for the optional parameters, as in the OpenAI API.
  const input = Object.fromEntries(Object.entries(body).filter(([key, value]) => value !== null || key === 'prompt'));

  if (operation === 'edits' && model.inputFidelities === 'refused' && 'input_fidelity' in input) {
    throw invalidRequest("Unsupported parameter: 'input_fidelity' is not supported with this model.", 'input_fidelity', 'unsupported_parameter');
  }
  const result = schemaFor(context).safeParse(input, { reportInput: true });
  if (!result.success) throw toServiceError(result.error.issues);
  const fields = parsedFields.parse(result.data);

  if (fields.output_format === 'webp') {
    throw invalidRequest("Invalid value: 'webp'. The emulator does not produce WebP images; ask for 'png' or 'jpeg'.", 'output_format', 'invalid_value');
  }
  const outputFormat = fields.output_format ?? 'png';
  if (fields.background === 'transparent' && outputFormat !== 'png') {
    const supported = context.flavour === 'openai' ? "'png' or 'webp'" : "'png'";
    throw invalidRequest(
      `Transparent background is not supported for the '${outputFormat}' output format. Use ${supported}.`,
      'background',
      'invalid_value',
    );
  }
  if (fields.output_compression !== undefined && outputFormat === 'png') {
    throw invalidRequest(
      "Invalid 'output_compression': compression is only supported for the 'jpeg' and 'webp' output formats.",
      'output_compression',
      'invalid_value',
    );
  }

  const isDallE = model.family === 'dall-e';
  const requestedSize = fields.size ?? (isDallE ? '1024x1024' : 'auto');
  const requestedQuality = fields.quality ?? (isDallE ? 'standard' : 'auto');
  let size: Dimensions | undefined = parseSize(requestedSize);
  // 'auto' is square for generations; an edit keeps the size of what it edits.
  if (!size && operation === 'generations') size = { width: 1024, height: 1024 };
  const quality = requestedQuality === 'auto' ? model.autoQuality : requestedQuality;

  return {
    prompt: fields.prompt,
    n: fields.n ?? 1,
    size,
    requestedSize,
    requestedQuality,
    quality,
    outputFormat,
    outputCompression: fields.output_compression,
    background: fields.background ?? 'auto',
    responseFormat: isDallE ? (fields.response_format ?? 'url') : 'b64_json',
    stream: fields.stream ?? false,
    partialImages: fields.partial_images ?? 0,
    inputFidelity: fields.input_fidelity,
  };
}

function toServiceError(issues: readonly z.core.$ZodIssue[]): EmulatorHttpError {
  const issue = issues.find((candidate) => candidate.code === 'unrecognized_keys') ?? issues[0];
  if (!issue) return invalidRequest('The request is invalid.', null, null);
  const param = issue.path.map(String).join('.') || null;

  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = issue.keys[0] ?? '';
      return invalidRequest(`Unknown parameter: '${key}'.`, key, 'unknown_parameter');
    }
    case 'invalid_type':
      if (issue.input === undefined) return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
      return invalidRequest(
        `Invalid type for '${param}': expected ${expectedName(issue.expected)}, but got ${describeValue(issue.input)} instead.`,
        param,
        'invalid_type',
      );
    case 'invalid_value':
      return invalidRequest(
        `Invalid value: '${String(issue.input)}'. Supported values are: ${listValues(issue.values.map(String))}.`,
        param,
        'invalid_value',
      );
    case 'too_small':
      if (issue.origin === 'string') {
        return invalidRequest(
          `Invalid '${param}': empty string. Expected a string with minimum length ${String(issue.minimum)}, but got an empty string instead.`,
          param,
          'empty_string',
        );
      }
      return invalidRequest(
        `Invalid '${param}': integer below minimum value. Expected a value >= ${String(issue.minimum)}, but got ${String(issue.input)} instead.`,
        param,
        'integer_below_min_value',
      );
    case 'too_big':
      if (issue.origin === 'string') {
        const length = typeof issue.input === 'string' ? issue.input.length : 0;
        return invalidRequest(
          `Invalid '${param}': string too long. Expected a string with maximum length ${String(issue.maximum)}, but got a string with length ${length} instead.`,
          param,
          'string_above_max_length',
        );
      }
      return invalidRequest(
        `Invalid '${param}': integer above maximum value. Expected a value <= ${String(issue.maximum)}, but got ${String(issue.input)} instead.`,
        param,
        'integer_above_max_value',
      );
    default:
      return invalidRequest(issue.message, param, 'invalid_value');
  }
}

function expectedName(expected: string): string {
  switch (expected) {
    case 'int':
    case 'number':
      // Every numeric image parameter is an integer.
      return 'an integer';
    case 'boolean':
      return 'a boolean';
    case 'string':
      return 'a string';
    default:
      return expected;
  }
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a decimal';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** "'a'", "'a' and 'b'", "'a', 'b', and 'c'" — the service's list style. */
export function listValues(values: readonly string[]): string {
  const quoted = values.map((value) => `'${value}'`);
  if (quoted.length <= 2) return quoted.join(' and ');
  return `${quoted.slice(0, -1).join(', ')}, and ${quoted[quoted.length - 1] ?? ''}`;
}
