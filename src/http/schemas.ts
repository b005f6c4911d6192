import { z } from 'zod';

import { BACKGROUNDS, MAX_USER_LENGTH, MODERATIONS, OUTPUT_FORMATS, STYLES } from '../domain/image-models';

// Power Automate sends empty optional fields as null; treat them as absent.
export const withoutNulls = (value: unknown) =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).filter(([, field]) => field !== null))
    : value;

export const oneOf = <const T extends readonly [string, ...string[]]>(name: string, values: T, hint = '') =>
  z.enum(values, { error: `${name} must be one of ${values.map((value) => `'${value}'`).join(', ')}${hint}.` });

const wholeNumber = (name: string, min: number, max: number) =>
  z.number({ error: `${name} must be a number.` }).int(`${name} must be a whole number.`).min(min, `${name} must be at least ${min}.`).max(max, `${name} must be at most ${max}.`);

/** The parameters generations and edits share, named and typed as the upstream names them. */
export const imageOptionFields = {
  model: z.string({ error: 'model must be a string.' }).optional(),
  n: wholeNumber('n', 1, 10).optional(),
  size: z.string({ error: "size must be a string such as '1024x1024'." }).optional(),
  quality: z.string({ error: 'quality must be a string.' }).optional(),
  user: z.string({ error: 'user must be a string.' }).max(MAX_USER_LENGTH, `user may be at most ${MAX_USER_LENGTH} characters.`).optional(),
  output_format: oneOf('output_format', OUTPUT_FORMATS, ' (Azure OpenAI does not produce WebP)').optional(),
  output_compression: wholeNumber('output_compression', 0, 100).optional(),
  background: oneOf('background', BACKGROUNDS).optional(),
  moderation: oneOf('moderation', MODERATIONS).optional(),
  response_format: oneOf('response_format', ['url', 'b64_json']).optional(),
};

export type ImageOptionFields = z.infer<z.ZodObject<typeof imageOptionFields>>;

/** The body of POST /images/generations: the upstream's shape, so existing clients work unchanged. */
export const generateImagesBody = z.preprocess(
  withoutNulls,
  z.strictObject({
    prompt: z
      .string({ error: 'prompt is required: describe the image to generate.' })
      .refine((prompt) => prompt.trim().length > 0, 'prompt must not be empty.'),
    ...imageOptionFields,
    style: oneOf('style', STYLES).optional(),
  }),
);
export type GenerateImagesBody = z.infer<typeof generateImagesBody>;
