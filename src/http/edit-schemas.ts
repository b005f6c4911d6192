import { z } from 'zod';

import { INPUT_FIDELITIES } from '../domain/image-models';
import { imageOptionFields, oneOf, withoutNulls } from './schemas';

/** The edit parameters both encodings share: generation's, plus `input_fidelity`. */
export const editFields = {
  prompt: z
    .string({ error: 'prompt is required: describe the edit to make.' })
    .refine((prompt) => prompt.trim().length > 0, 'prompt must not be empty.'),
  ...imageOptionFields,
  input_fidelity: oneOf('input_fidelity', INPUT_FIDELITIES).optional(),
};

// Multipart carries every value as text; these are numbers on the wire of the JSON encoding.
const NUMERIC_FORM_FIELDS = new Set(['n', 'output_compression']);

/** Form values as the JSON encoding would have them: empty fields absent (form builders send them), whole numbers as numbers. */
function fromFormValues(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, field]) => field !== '')
      .map(([name, field]) => [name, NUMERIC_FORM_FIELDS.has(name) && typeof field === 'string' && /^\d{1,9}$/.test(field) ? Number(field) : field]),
  );
}

/** The text fields of a multipart edit (the files are read separately). */
export const editImagesFormFields = z.preprocess(fromFormValues, z.strictObject(editFields));
export type EditImagesFields = z.infer<typeof editImagesFormFields>;

const IMAGE_SOURCE_HINT =
  'must be a {"$content-type": …, "$content": "<base64>"} object, a base64 data URI, a base64 string or {"blob": "images/<name>"} / {"blob": "inbox/<name>"}';

/**
 * One image of a JSON edit, in any form a caller has it: a Power Automate file object, a data URI, bare
 * base64, or the name of a blob in the app's own images or inbox container. URLs are never fetched.
 */
const imageSource = z.union(
  [
    z.string(),
    // `$content-type` is what the flow declared; the bytes decide what the image is.
    z.strictObject({ $content: z.string(), '$content-type': z.string().optional() }),
    z.strictObject({ blob: z.string() }),
  ],
  { error: IMAGE_SOURCE_HINT },
);
export type ImageSource = z.infer<typeof imageSource>;

/** The body of a JSON edit: the edit fields, `images` (1–16 sources) and an optional `mask` source. */
export const editImagesJsonBody = z.preprocess(
  withoutNulls,
  z.strictObject({
    ...editFields,
    images: z.array(imageSource, { error: `images is required: an array whose items each ${IMAGE_SOURCE_HINT}.` }),
    mask: imageSource.optional(),
  }),
);
export type EditImagesJsonBody = z.infer<typeof editImagesJsonBody>;
