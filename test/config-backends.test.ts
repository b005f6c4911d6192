import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadConfig } from '../src/config';
import { problemsOf } from './helpers/config';

const simple = {
  AZURE_OPENAI_ENDPOINT: 'https://primary.openai.azure.com/',
  AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1.5=img15,gpt-image-2',
  ImagesStorage: 'UseDevelopmentStorage=true',
};

describe('loadConfig: several backends per model', () => {
  it('makes one backend of each AZURE_OPENAI_DEPLOYMENTS entry in the simple form', () => {
    expect(loadConfig(simple).openai.backends).toEqual([
      {
        name: 'primary.openai.azure.com/img15',
        endpoint: 'https://primary.openai.azure.com',
        deployment: 'img15',
        model: 'gpt-image-1.5',
        auth: { mode: 'managed-identity' },
        priority: 1,
        weight: 1,
      },
      {
        name: 'primary.openai.azure.com/gpt-image-2',
        endpoint: 'https://primary.openai.azure.com',
        deployment: 'gpt-image-2',
        model: 'gpt-image-2',
        auth: { mode: 'managed-identity' },
        priority: 1,
        weight: 1,
      },
    ]);
  });

  it('adds the backends of AZURE_OPENAI_BACKENDS, and lets one restate a primary deployment', () => {
    const config = loadConfig({
      ...simple,
      AZURE_OPENAI_BACKENDS: JSON.stringify([
        { deployment: 'img15', model: 'gpt-image-1.5', priority: 2, imagesPerMinute: 5 },
        { name: 'sweden', endpoint: 'https://sweden.openai.azure.com', deployment: 'img15-se', model: 'gpt-image-1.5', weight: 3, imagesPerMinute: 5 },
        { endpoint: 'https://ptu.openai.azure.com/', model: 'gpt-image-2', requestsPerMinute: 60 },
      ]),
    });

    expect(config.openai.backends.map(({ name, model, priority, weight, quota }) => ({ name, model, priority, weight, quota }))).toEqual([
      { name: 'primary.openai.azure.com/img15', model: 'gpt-image-1.5', priority: 2, weight: 1, quota: { unit: 'images', perMinute: 5 } },
      { name: 'primary.openai.azure.com/gpt-image-2', model: 'gpt-image-2', priority: 1, weight: 1, quota: undefined },
      { name: 'sweden', model: 'gpt-image-1.5', priority: 1, weight: 3, quota: { unit: 'images', perMinute: 5 } },
      { name: 'ptu.openai.azure.com/gpt-image-2', model: 'gpt-image-2', priority: 1, weight: 1, quota: { unit: 'requests', perMinute: 60 } },
    ]);
    expect(config.openai.backends[2]).toMatchObject({ endpoint: 'https://sweden.openai.azure.com', deployment: 'img15-se', auth: { mode: 'managed-identity' } });
    // A model's deployment for the simple paths is that of its most preferred backend.
    expect([...config.openai.deployments]).toEqual([
      ['gpt-image-2', 'gpt-image-2'],
      ['gpt-image-1.5', 'img15-se'],
    ]);
  });

  it('serves a model only AZURE_OPENAI_BACKENDS names', () => {
    const config = loadConfig({ ...simple, AZURE_OPENAI_BACKENDS: '[{"model": "gpt-image-1-mini", "deployment": "mini"}]' });

    expect(config.openai.deployments.get('gpt-image-1-mini')).toBe('mini');
    expect(config.openai.defaultModel).toBe('gpt-image-1.5');
  });

  it('takes each key-auth backend’s key from AZURE_OPENAI_API_KEYS, and the primary resource’s from AZURE_OPENAI_API_KEY', () => {
    const config = loadConfig({
      ...simple,
      AZURE_OPENAI_AUTH: 'key',
      AZURE_OPENAI_API_KEY: 'primary-key',
      AZURE_OPENAI_API_KEYS: '{"west": "west-key"}',
      AZURE_OPENAI_BACKENDS: JSON.stringify([
        { name: 'west', endpoint: 'https://west.openai.azure.com', model: 'gpt-image-2' },
        { name: 'same-resource', deployment: 'img15-b', model: 'gpt-image-1.5' },
        { name: 'identity', endpoint: 'https://mi.openai.azure.com', model: 'gpt-image-2', auth: 'managed-identity' },
      ]),
    });

    expect(config.openai.backends.map((backend) => [backend.name, backend.auth])).toEqual([
      ['primary.openai.azure.com/img15', { mode: 'key', apiKey: 'primary-key' }],
      ['primary.openai.azure.com/gpt-image-2', { mode: 'key', apiKey: 'primary-key' }],
      ['west', { mode: 'key', apiKey: 'west-key' }],
      ['same-resource', { mode: 'key', apiKey: 'primary-key' }],
      ['identity', { mode: 'managed-identity' }],
    ]);
  });

  it('lists every problem of the backends, without the keys', () => {
    const problems = problemsOf({
      ...simple,
      AZURE_OPENAI_API_KEYS: '{"other": "secret-value"}',
      AZURE_OPENAI_BACKENDS: JSON.stringify([
        { endpoint: 'ftp://x', model: 'gpt-image-9', weight: 0, imagesPerMinute: 5, requestsPerMinute: 5, colour: 'red' },
        { name: 'lonely', endpoint: 'https://west.openai.azure.com', model: 'gpt-image-2', auth: 'key' },
      ]),
    });

    expect(problems).toEqual([
      'AZURE_OPENAI_BACKENDS[0].endpoint: endpoint must be an http(s) URL such as https://my-other-resource.openai.azure.com',
      'AZURE_OPENAI_BACKENDS[0].model: model must be one of gpt-image-1, gpt-image-1-mini, gpt-image-1.5, gpt-image-2, dall-e-3',
      'AZURE_OPENAI_BACKENDS[0].weight: weight must be at least 1',
      'AZURE_OPENAI_BACKENDS[0]: Unrecognized key: "colour"',
    ]);
    const keyProblems = problemsOf({
      ...simple,
      AZURE_OPENAI_API_KEYS: '{"other": "secret-value"}',
      AZURE_OPENAI_BACKENDS: JSON.stringify([
        { name: 'lonely', endpoint: 'https://west.openai.azure.com', model: 'gpt-image-2', auth: 'key' },
        { deployment: 'img15', model: 'gpt-image-2' },
        { name: 'twin', model: 'gpt-image-2', deployment: 'a' },
        { name: 'twin', model: 'gpt-image-2', deployment: 'b' },
      ]),
    });
    expect(keyProblems).toEqual([
      'AZURE_OPENAI_BACKENDS[0] (lonely) uses key auth: put its key in AZURE_OPENAI_API_KEYS as {"lonely": "..."} (in Azure, a Key Vault reference), or use managed-identity.',
      'AZURE_OPENAI_BACKENDS[1] says img15 serves gpt-image-2, but AZURE_OPENAI_DEPLOYMENTS says gpt-image-1.5.',
      "Backend names must be unique; 'twin' appear twice (give each a \"name\").",
    ]);
    expect(JSON.stringify([...problems, ...keyProblems])).not.toContain('secret-value');
    expect(problemsOf({ ...simple, AZURE_OPENAI_BACKENDS: '{not json' })).toEqual([expect.stringContaining('AZURE_OPENAI_BACKENDS must be a JSON array such as')]);
    expect(problemsOf({ ...simple, AZURE_OPENAI_BACKENDS: '[{"model": "gpt-image-2", "imagesPerMinute": 5, "requestsPerMinute": 5}]' })).toEqual([
      'AZURE_OPENAI_BACKENDS[0]: give imagesPerMinute or requestsPerMinute, not both',
    ]);
  });

  it('accepts the README’s example, with the primary deployment it restates', () => {
    const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
    const example = /### Several deployments per model[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)?.[1];

    const config = loadConfig({ ...simple, AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1.5=my-img15', AZURE_OPENAI_BACKENDS: example ?? '' });

    expect(config.openai.backends.map(({ name, priority, weight }) => [name, priority, weight])).toEqual([
      ['primary.openai.azure.com/my-img15', 2, 2],
      ['sweden', 2, 1],
      ['ptu', 1, 1],
    ]);
  });

  it('reads the jobs’ deadline and lease', () => {
    expect(loadConfig({ ...simple, JOBS_DEADLINE_SECONDS: '600', JOBS_LEASE_SECONDS: '20' }).jobs).toMatchObject({ deadlineInMs: 600_000, leaseInMs: 20_000 });
    expect(problemsOf({ ...simple, JOBS_DEADLINE_SECONDS: '1', JOBS_LEASE_SECONDS: '1' })).toEqual([
      'JOBS_DEADLINE_SECONDS must be at least 5',
      'JOBS_LEASE_SECONDS must be at least 2',
    ]);
  });
});
