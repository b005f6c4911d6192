import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { KEY, call, errorOf, generate, imagesResponseSchema } from './helpers';

describe('emulator parameter validation', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());

  // [rule, deployment, body, expected param, expected code, message fragment]
  const refusals: readonly [string, string, Record<string, unknown>, string | null, string | null, string][] = [
    ['prompt is required', 'gpt-image-1', { n: 1 }, 'prompt', 'missing_required_parameter', "Missing required parameter: 'prompt'."],
    ['prompt must be a string', 'gpt-image-1', { prompt: 42 }, 'prompt', 'invalid_type', 'expected a string, but got an integer'],
    ['prompt must not be empty', 'gpt-image-1', { prompt: '' }, 'prompt', 'empty_string', 'empty string'],
    ['prompt is at most 32000 characters', 'gpt-image-1.5', { prompt: 'a'.repeat(32_001) }, 'prompt', 'string_above_max_length', 'maximum length 32000, but got a string with length 32001'],
    ['dall-e-3 prompt is at most 4000 characters', 'dall-e-3', { prompt: 'a'.repeat(4_001) }, 'prompt', 'string_above_max_length', 'maximum length 4000'],
    ['n is at least 1', 'gpt-image-1', { prompt: 'x', n: 0 }, 'n', 'integer_below_min_value', 'Expected a value >= 1, but got 0'],
    ['n is at most 10', 'gpt-image-1', { prompt: 'x', n: 11 }, 'n', 'integer_above_max_value', 'Expected a value <= 10, but got 11'],
    ['n is an integer', 'gpt-image-1', { prompt: 'x', n: 1.5 }, 'n', 'invalid_type', 'expected an integer, but got a decimal'],
    ['dall-e-3 n must be 1', 'dall-e-3', { prompt: 'x', n: 2 }, 'n', 'integer_above_max_value', 'Expected a value <= 1'],
    [
      'gpt-image-1 sizes are a fixed list',
      'gpt-image-1',
      { prompt: 'x', size: '2560x1440' },
      'size',
      'invalid_value',
      "Invalid value: '2560x1440'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.",
    ],
    ['gpt-image-1-mini sizes are a fixed list', 'gpt-image-1-mini', { prompt: 'x', size: '512x512' }, 'size', 'invalid_value', "Invalid value: '512x512'"],
    ['dall-e-3 has its own sizes', 'dall-e-3', { prompt: 'x', size: '1536x1024' }, 'size', 'invalid_value', "'1024x1024', '1792x1024', and '1024x1792'"],
    ['quality is low, medium, high or auto', 'gpt-image-1', { prompt: 'x', quality: 'hd' }, 'quality', 'invalid_value', "'low', 'medium', 'high', and 'auto'"],
    ['dall-e-3 quality is standard or hd', 'dall-e-3', { prompt: 'x', quality: 'high' }, 'quality', 'invalid_value', "'standard' and 'hd'"],
    ['dall-e-3 style is vivid or natural', 'dall-e-3', { prompt: 'x', style: 'noir' }, 'style', 'invalid_value', "'vivid' and 'natural'"],
    ['dall-e-3 response_format is url or b64_json', 'dall-e-3', { prompt: 'x', response_format: 'png' }, 'response_format', 'invalid_value', "'url' and 'b64_json'"],
    ['GPT models refuse response_format', 'gpt-image-1', { prompt: 'x', response_format: 'b64_json' }, 'response_format', 'unknown_parameter', "Unknown parameter: 'response_format'."],
    ['GPT models refuse style', 'gpt-image-2', { prompt: 'x', style: 'vivid' }, 'style', 'unknown_parameter', "Unknown parameter: 'style'."],
    ['unknown parameters are refused', 'gpt-image-1.5', { prompt: 'x', seed: 3 }, 'seed', 'unknown_parameter', "Unknown parameter: 'seed'."],
    ['dall-e-3 refuses GPT-only parameters', 'dall-e-3', { prompt: 'x', output_format: 'png' }, 'output_format', 'unknown_parameter', "Unknown parameter: 'output_format'."],
    ['input_fidelity is for edits only', 'gpt-image-1', { prompt: 'x', input_fidelity: 'high' }, 'input_fidelity', 'unknown_parameter', 'Unknown parameter'],
    ['Azure refuses webp', 'gpt-image-1', { prompt: 'x', output_format: 'webp' }, 'output_format', 'invalid_value', "Supported values are: 'png' and 'jpeg'."],
    ['transparent needs png', 'gpt-image-1', { prompt: 'x', background: 'transparent', output_format: 'jpeg' }, 'background', 'invalid_value', 'Transparent background is not supported'],
    ['background is transparent, opaque or auto', 'gpt-image-1', { prompt: 'x', background: 'white' }, 'background', 'invalid_value', "Invalid value: 'white'"],
    ['output_compression is at most 100', 'gpt-image-1', { prompt: 'x', output_format: 'jpeg', output_compression: 101 }, 'output_compression', 'integer_above_max_value', '<= 100'],
    ['output_compression is at least 0', 'gpt-image-1', { prompt: 'x', output_format: 'jpeg', output_compression: -1 }, 'output_compression', 'integer_below_min_value', '>= 0'],
    ['output_compression needs jpeg or webp', 'gpt-image-1', { prompt: 'x', output_format: 'png', output_compression: 80 }, 'output_compression', 'invalid_value', "only supported for the 'jpeg' and 'webp'"],
    ['moderation is low or auto', 'gpt-image-1', { prompt: 'x', moderation: 'high' }, 'moderation', 'invalid_value', "'low' and 'auto'"],
    ['stream is a boolean', 'gpt-image-1', { prompt: 'x', stream: 'yes' }, 'stream', 'invalid_type', 'expected a boolean, but got a string'],
    ['partial_images is at most 3', 'gpt-image-1', { prompt: 'x', stream: true, partial_images: 4 }, 'partial_images', 'integer_above_max_value', '<= 3'],
  ];

  it.each(refusals)('returns 400 when the rule "%s" is broken', async (_rule, deployment, body, param, code, fragment) => {
    const result = await generate(emulator.url, body, deployment);
    expect(result.status).toBe(400);
    const error = errorOf(result);
    expect(error).toMatchObject({ type: 'invalid_request_error', param, code });
    expect(error.message).toContain(fragment);
  });

  it('returns 400 with the OpenAI parse message for a body that is not JSON', async () => {
    const result = await call(`${emulator.url}/openai/deployments/gpt-image-1/images/generations?api-version=2025-04-01-preview`, {
      headers: { 'api-key': KEY, 'content-type': 'application/json' },
      body: '{"prompt": "x",',
    });
    expect(result.status).toBe(400);
    expect(errorOf(result)).toMatchObject({ code: null, param: null, type: 'invalid_request_error' });
    expect(errorOf(result).message).toContain('We could not parse the JSON body of your request.');
  });

  it('returns 400 invalid_type for a JSON body that is not an object', async () => {
    const result = await call(`${emulator.url}/openai/deployments/gpt-image-1/images/generations?api-version=2025-04-01-preview`, {
      headers: { 'api-key': KEY, 'content-type': 'application/json' },
      body: '["x"]',
    });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('invalid_type');
  });

  it('reports unknown parameters before other problems, as the service does', async () => {
    const result = await generate(emulator.url, { n: 0, response_format: 'url' });
    expect(errorOf(result)).toMatchObject({ param: 'response_format', code: 'unknown_parameter' });
  });

  it('treats JSON null as "use the default"', async () => {
    const result = await generate(emulator.url, { prompt: 'x', n: null, size: null, quality: 'low' });
    expect(result.status).toBe(200);
    expect(imagesResponseSchema.parse(result.json).size).toBe('1024x1024');
  });

  it('accepts webp on the OpenAI route but says the emulator cannot draw it', async () => {
    const result = await call(`${emulator.url}/v1/images/generations`, {
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-image-1', prompt: 'x', output_format: 'webp' }),
    });
    expect(result.status).toBe(400);
    expect(errorOf(result)).toMatchObject({ param: 'output_format', code: 'invalid_value' });
    expect(errorOf(result).message).toContain('does not produce WebP');
  });

  describe('the gpt-image-2 size rule', () => {
    it.each(['1024x1024', '2048x1152', '3840x2160', '1280x3840', '1024x640', '2880x2880', 'auto'])('accepts %s', async (size) => {
      const result = await generate(emulator.url, { prompt: 'x', size, quality: 'low' }, 'gpt-image-2');
      expect(result.status).toBe(200);
      expect(imagesResponseSchema.parse(result.json).size).toBe(size === 'auto' ? '1024x1024' : size);
    });

    it.each([
      ['1000x1000', 'multiples of 16'],
      ['4096x2048', 'longest edge must be at most 3840'],
      ['3840x1264', 'aspect ratio must be at most 3:1'],
      ['768x768', 'at least 655360 pixels'],
      ['3200x3200', 'at most 8294400 pixels'],
      ['big', 'WIDTHxHEIGHT'],
      ['0x1024', 'positive'],
    ])('refuses %s (%s)', async (size, reason) => {
      const result = await generate(emulator.url, { prompt: 'x', size }, 'gpt-image-2');
      expect(result.status).toBe(400);
      expect(errorOf(result)).toMatchObject({ param: 'size', code: 'invalid_value' });
      expect(errorOf(result).message).toContain(reason);
    });
  });
});
