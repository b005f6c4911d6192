import type { ImageModel, ImageOptions, OutputFormat } from '../../src/domain/image-models';
import { checkImageOptions, IMAGE_MODELS, MODEL_RULES } from '../../src/domain/image-models';
import type { ImageOperation, OptionName, OptionRule } from '../../src/domain/model-options';
import { describeModel, optionRules, outputFormatsOf } from '../../src/domain/model-options';

// What the catalogue and the connector's form offer comes from the same rules request validation
// uses: every combination offered must pass, and what is left out must be refused.

type WireOptions = Partial<Record<OptionName, string | number>>;

function toImageOptions(wire: WireOptions, outputFormat: OutputFormat | undefined): ImageOptions {
  const text = (name: OptionName) => (wire[name] === undefined ? undefined : String(wire[name]));
  return {
    n: wire.n === undefined ? undefined : Number(wire.n),
    size: text('size'),
    quality: text('quality'),
    outputFormat,
    outputCompression: wire.output_compression === undefined ? undefined : Number(wire.output_compression),
    background: text('background'),
    moderation: text('moderation'),
    style: text('style'),
    inputFidelity: text('input_fidelity'),
  };
}

/** Every value each rule offers (integers at both ends), combined with every other's. */
function everyCombination(rules: readonly OptionRule[]): WireOptions[] {
  let combinations: WireOptions[] = [{}];
  for (const rule of rules) {
    const values: (string | number)[] = rule.kind === 'choice' ? [...rule.values] : rule.kind === 'integer' ? [rule.minimum, rule.maximum] : ['end-user-1'];
    combinations = combinations.flatMap((combination) => values.map((value) => ({ ...combination, [rule.name]: value })));
  }
  return combinations;
}

const cases = IMAGE_MODELS.flatMap((model) =>
  describeModel(model, model).operations.flatMap((operation) =>
    [undefined, ...outputFormatsOf(model)].map((format) => [model, operation, format ?? '(default)'] as [ImageModel, ImageOperation, string]),
  ),
);

describe('optionRules', () => {
  it.each(cases)('%s %s %s: every combination offered passes request validation', (model, operation, formatName) => {
    const format = formatName === '(default)' ? undefined : (formatName as OutputFormat);
    const combinations = everyCombination(optionRules(model, operation, format));

    expect(combinations.length).toBeGreaterThan(1);
    for (const combination of combinations) {
      expect([combination, checkImageOptions(model, 'a prompt', toImageOptions(combination, format), operation)]).toEqual([combination, []]);
    }
  });

  // Values the server refuses for some model, operation or format: each must be left out exactly there.
  const probes: readonly [OptionName, string | number][] = [
    ['background', 'transparent'],
    ['output_compression', 50],
    ['moderation', 'low'],
    ['style', 'vivid'],
    ['input_fidelity', 'low'],
    ['input_fidelity', 'high'],
    ['quality', 'hd'],
    ['quality', 'high'],
    ['size', '1792x1024'],
    ['size', '2048x2048'],
    ['n', 2],
  ];

  it.each(cases)('%s %s %s: what is not offered is refused', (model, operation, formatName) => {
    const format = formatName === '(default)' ? undefined : (formatName as OutputFormat);
    const offered = optionRules(model, operation, format);
    for (const [name, value] of probes) {
      // Generation's wire schema has no input_fidelity at all; a model with flexible sizes takes sizes it does not list.
      if ((name === 'input_fidelity' && operation === 'generate') || (name === 'size' && describeModel(model, model).customSizes)) continue;
      const rule = offered.find((candidate) => candidate.name === name);
      const isOffered =
        rule !== undefined &&
        (rule.kind === 'choice' ? rule.values.includes(String(value)) : rule.kind === 'integer' ? Number(value) >= rule.minimum && Number(value) <= rule.maximum : true);
      const problems = checkImageOptions(model, 'a prompt', toImageOptions({ [name]: value }, format), operation);

      expect([name, value, problems.length > 0]).toEqual([name, value, !isOffered]);
    }
  });

  it('offers no transparent background with jpeg, and compression only with jpeg', () => {
    const values = (format: OutputFormat) => optionRules('gpt-image-1.5', 'generate', format);

    expect(values('jpeg').find((rule) => rule.name === 'background')).toEqual({ kind: 'choice', name: 'background', values: ['opaque', 'auto'] });
    expect(values('png').some((rule) => rule.name === 'output_compression')).toBe(false);
    expect(values('jpeg').some((rule) => rule.name === 'output_compression')).toBe(true);
  });

  it('offers input_fidelity only on edits of models that take it, with their values', () => {
    const fidelity = (model: ImageModel) => optionRules(model, 'edit').find((rule) => rule.name === 'input_fidelity');

    expect(fidelity('gpt-image-1')).toMatchObject({ values: ['low', 'high'] });
    expect(fidelity('gpt-image-1-mini')).toMatchObject({ values: ['low'] });
    expect(fidelity('gpt-image-2')).toBeUndefined();
    expect(optionRules('gpt-image-1', 'generate').some((rule) => rule.name === 'input_fidelity')).toBe(false);
  });
});

describe('describeModel', () => {
  it('describes each model from its rules', () => {
    expect(describeModel('dall-e-3', 'gpt-image-1')).toMatchObject({
      id: 'dall-e-3',
      title: 'dall-e-3',
      isDefault: false,
      operations: ['generate'],
      sizes: MODEL_RULES['dall-e-3'].sizes,
      outputFormats: [],
      styles: ['vivid', 'natural'],
      maxImages: 1,
    });
    expect(describeModel('gpt-image-2', 'gpt-image-2')).toMatchObject({ title: 'gpt-image-2 (default)', isDefault: true, customSizes: true, inputFidelities: [] });
  });
});
