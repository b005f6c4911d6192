import { checkFlexibleSize, checkImageOptions } from '../../src/domain/image-models';

describe('checkImageOptions', () => {
  it('accepts a typical gpt-image request', () => {
    expect(checkImageOptions('gpt-image-1.5', 'a fox', { n: 4, size: '1536x1024', quality: 'high', outputFormat: 'jpeg', outputCompression: 80 }, 'generate')).toEqual([]);
  });

  it.each([
    ['gpt-image-1', { size: '2048x2048' }, 'size', 'InvalidParameter'],
    ['gpt-image-1', { quality: 'hd' }, 'quality', 'InvalidParameter'],
    ['gpt-image-1', { outputFormat: 'jpeg', background: 'transparent' }, 'background', 'InvalidParameter'],
    ['gpt-image-1', { outputCompression: 50 }, 'output_compression', 'InvalidParameter'],
    ['gpt-image-1', { style: 'vivid' }, 'style', 'UnsupportedParameter'],
    ['gpt-image-1-mini', { inputFidelity: 'high' }, 'input_fidelity', 'InvalidParameter'],
    ['gpt-image-2', { inputFidelity: 'low' }, 'input_fidelity', 'UnsupportedParameter'],
    ['gpt-image-2', { size: '1000x1000' }, 'size', 'InvalidParameter'],
    ['dall-e-3', { n: 2 }, 'n', 'InvalidParameter'],
    ['dall-e-3', { size: '1536x1024' }, 'size', 'InvalidParameter'],
    ['dall-e-3', { quality: 'high' }, 'quality', 'InvalidParameter'],
    ['dall-e-3', { outputFormat: 'png' }, 'output_format', 'UnsupportedParameter'],
    ['dall-e-3', { background: 'opaque' }, 'background', 'UnsupportedParameter'],
  ] as const)('%s refuses %j on %s', (model, options, target, code) => {
    expect(checkImageOptions(model, 'a fox', options, 'generate')).toEqual([expect.objectContaining({ target, code })]);
  });

  it('refuses prompts longer than the model allows', () => {
    expect(checkImageOptions('dall-e-3', 'x'.repeat(4001), {}, 'generate')).toEqual([expect.objectContaining({ target: 'prompt' })]);
    expect(checkImageOptions('gpt-image-1', 'x'.repeat(4001), {}, 'generate')).toEqual([]);
  });

  it('refuses edits on a model that cannot edit', () => {
    expect(checkImageOptions('dall-e-3', 'x', {}, 'edit')).toEqual([expect.objectContaining({ code: 'OperationNotSupported', target: 'model' })]);
  });

  it('reports every problem, not only the first', () => {
    expect(checkImageOptions('dall-e-3', 'x', { n: 3, size: 'auto', quality: 'low' }, 'generate').map((problem) => problem.target)).toEqual(['n', 'size', 'quality']);
  });
});

describe('checkFlexibleSize (gpt-image-2)', () => {
  it.each(['auto', '1024x1024', '2048x1152', '3840x2160', '2160x3840', '1280x720'])('accepts %s', (size) => {
    expect(checkFlexibleSize(size)).toBeUndefined();
  });

  it.each([
    ['1024x1000', 'multiples of 16'],
    ['4096x2048', 'at most 3840'],
    ['3840x1024', '3:1'],
    ['512x512', '655,360'],
    ['big', 'WIDTHxHEIGHT'],
  ])('refuses %s', (size, reason) => {
    expect(checkFlexibleSize(size)).toContain(reason);
  });
});
