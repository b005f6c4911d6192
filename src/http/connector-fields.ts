import type { ImageModel, OutputFormat } from '../domain/image-models';
import { MODEL_RULES } from '../domain/image-models';
import type { ImageOperation, OptionName, OptionRule } from '../domain/model-options';
import { optionRules } from '../domain/model-options';

/**
 * How the connector names and explains each request field: a Title Case label (`x-ms-summary`), a
 * description, and where the designer shows it (`x-ms-visibility`). The values themselves come from
 * the model's rules (domain/model-options), so the form offers only what the server accepts.
 */

export type Visibility = 'important' | 'advanced' | 'internal';

/** A Swagger 2.0 schema object as this app writes them: plain JSON. */
export type SchemaObject = Record<string, unknown>;

/** A schema field with its label and description, as every connector field must have. */
export const field = (type: string, summary: string, description: string, extra: SchemaObject = {}): SchemaObject => ({
  type,
  'x-ms-summary': summary,
  description,
  ...extra,
});

interface FieldText {
  readonly summary: string;
  readonly description: string;
  readonly visibility?: Visibility;
}

const OPTION_TEXT: Readonly<Record<OptionName, FieldText>> = {
  n: { summary: 'Number of Images', description: 'How many images to make.' },
  size: { summary: 'Size', description: "Width x height in pixels, or 'auto' to let the model choose." },
  quality: { summary: 'Quality', description: 'Higher quality takes longer and uses more tokens.' },
  background: { summary: 'Background', description: 'A transparent background needs the PNG output format.', visibility: 'advanced' },
  output_compression: { summary: 'JPEG Compression', description: 'How much to compress the JPEG, from 0 to 100.', visibility: 'advanced' },
  moderation: { summary: 'Moderation', description: "How strictly the content filter checks the prompt: 'auto' or 'low'.", visibility: 'advanced' },
  style: { summary: 'Style', description: 'Vivid leans towards dramatic images, natural towards realistic ones.' },
  input_fidelity: { summary: 'Input Fidelity', description: 'How closely the result keeps the details of the input images.', visibility: 'advanced' },
  user: { summary: 'End User ID', description: 'An id of the person the image is made for, for abuse monitoring.', visibility: 'advanced' },
};

const visible = (text: FieldText): SchemaObject => (text.visibility === undefined ? {} : { 'x-ms-visibility': text.visibility });

function optionSchema(rule: OptionRule): SchemaObject {
  const text = OPTION_TEXT[rule.name];
  switch (rule.kind) {
    case 'choice':
      return field('string', text.summary, text.description, { enum: [...rule.values], ...visible(text) });
    case 'integer':
      return field('integer', text.summary, `${text.description.replace(/\.$/, '')} (${rule.minimum}-${rule.maximum}).`, {
        format: 'int32',
        minimum: rule.minimum,
        maximum: rule.maximum,
        ...visible(text),
      });
    case 'text':
      return field('string', text.summary, text.description, { maxLength: rule.maxLength, ...visible(text) });
  }
}

/** The prompt, described for the operation. */
export const promptField = (operation: ImageOperation, maxLength?: number): SchemaObject =>
  field('string', 'Prompt', operation === 'generate' ? 'What to draw, in words.' : 'What to change in the images, in words.', {
    'x-ms-visibility': 'important',
    ...(maxLength === undefined ? {} : { maxLength }),
  });

/** An edit's inputs: file content, sent as base64 (`format: byte`), which the designer converts file content to. */
export const editInputFields = (): SchemaObject => ({
  images: field('array', 'Images', 'The PNG or JPEG images to edit (1-16); the mask applies to the first.', {
    'x-ms-visibility': 'important',
    minItems: 1,
    maxItems: 16,
    items: field('string', 'Image File Content', 'The file content of one image, for example from Get file content.', { format: 'byte' }),
  }),
  mask: field('string', 'Mask File Content', 'A PNG the size of the first image whose transparent pixels mark what may change.', { format: 'byte' }),
});

/**
 * The request body for `model`, `operation` and `outputFormat`, as the designer's per-model form
 * (x-ms-dynamic-schema): the prompt, an edit's inputs, and the options the model's rules accept.
 */
export function requestBodySchema(model: ImageModel, operation: ImageOperation, outputFormat?: OutputFormat): SchemaObject {
  const rules = optionRules(model, operation, outputFormat);
  return {
    type: 'object',
    required: operation === 'generate' ? ['prompt'] : ['prompt', 'images'],
    properties: {
      prompt: promptField(operation, MODEL_RULES[model].maxPromptLength),
      ...(operation === 'edit' ? editInputFields() : {}),
      ...Object.fromEntries(rules.map((rule) => [rule.name, optionSchema(rule)])),
    },
  };
}
