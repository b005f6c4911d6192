import { setTimeout as sleep } from 'node:timers/promises';

import { EmulatorConfigError, emulatorOptionsFromEnv } from '../../emulator/config';
import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { call, errorOf, generate } from './helpers';

const ok = { prompt: 'a quiet pond', quality: 'low' };
const header = (result: { headers: Record<string, string | string[] | undefined> }, name: string): string => String(result.headers[name]);

describe('emulator quotas', () => {
  let emulator: RunningEmulator;
  let running: RunningEmulator | undefined;
  const start = async (options: Parameters<typeof startEmulator>[0]): Promise<RunningEmulator> => {
    running = await startEmulator(options);
    return running;
  };

  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('admits a deployment its images per minute, then answers 429 in Azure’s shape until the window frees a slot', async () => {
    // A "minute" of two seconds, so the window slides within the test.
    emulator = await start({ deployments: { east: 'gpt-image-1.5' }, quotas: { east: { imagesPerMinute: 3 } }, minuteMs: 2_000 });

    const admitted = [await generate(emulator.url, ok, 'east'), await generate(emulator.url, { ...ok, n: 2 }, 'east')];
    const throttled = await generate(emulator.url, ok, 'east');

    expect(admitted.map((result) => result.status)).toEqual([200, 200]);
    expect(admitted.map((result) => header(result, 'x-ratelimit-remaining-requests'))).toEqual(['2', '0']);
    expect(header(admitted[1] ?? admitted[0]!, 'x-ratelimit-limit-requests')).toBe('3');
    expect(throttled.status).toBe(429);
    expect(errorOf(throttled).code).toBe('429');
    expect(errorOf(throttled).message).toMatch(/exceeded call rate limit .* Please retry after \d+ seconds?\./);
    const waitInMs = Number(header(throttled, 'retry-after-ms'));
    expect(waitInMs).toBeGreaterThan(0);
    expect(waitInMs).toBeLessThanOrEqual(2_000);
    expect(header(throttled, 'retry-after')).toBe(String(Math.ceil(waitInMs / 1000)));
    expect(Number(header(throttled, 'x-ratelimit-reset-requests'))).toBeGreaterThan(0);

    await sleep(waitInMs);
    expect((await generate(emulator.url, ok, 'east')).status).toBe(200);
  });

  it('counts images under an images quota and requests under a requests quota', async () => {
    emulator = await start({
      deployments: { images: 'gpt-image-1', requests: 'gpt-image-2' },
      quotas: { images: { imagesPerMinute: 4 }, requests: { requestsPerMinute: 2 } },
    });

    const byImages = [await generate(emulator.url, { ...ok, n: 3 }, 'images'), await generate(emulator.url, { ...ok, n: 2 }, 'images'), await generate(emulator.url, ok, 'images')];
    const byRequests = [
      await generate(emulator.url, { ...ok, n: 5 }, 'requests'),
      await generate(emulator.url, { ...ok, n: 5 }, 'requests'),
      await generate(emulator.url, ok, 'requests'),
    ];

    expect(byImages.map((result) => result.status)).toEqual([200, 429, 200]);
    expect(byRequests.map((result) => result.status)).toEqual([200, 200, 429]);
  });

  it('keeps a quota per deployment, so several deployments of one model add up', async () => {
    emulator = await start({
      deployments: { east: 'gpt-image-1.5', west: 'gpt-image-1.5' },
      quotas: { east: { imagesPerMinute: 1 }, west: { imagesPerMinute: 1 } },
    });

    const statuses = [
      (await generate(emulator.url, ok, 'east')).status,
      (await generate(emulator.url, ok, 'east')).status,
      (await generate(emulator.url, ok, 'west')).status,
      (await generate(emulator.url, ok, 'west')).status,
    ];

    expect(statuses).toEqual([200, 429, 200, 429]);
    expect(emulator.requests.map((request) => [request.deployment, request.model, request.status])).toEqual([
      ['east', 'gpt-image-1.5', 200],
      ['east', 'gpt-image-1.5', 429],
      ['west', 'gpt-image-1.5', 200],
      ['west', 'gpt-image-1.5', 429],
    ]);
  });

  it('adds, lists, re-limits and removes deployments through the control API', async () => {
    emulator = await start({ deployments: { east: 'gpt-image-1.5' } });
    const control = (method: 'GET' | 'PUT', path: string, body?: unknown) =>
      call(`${emulator.url}/_emulator/deployments${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    const added = await control('PUT', '/north', { model: 'gpt-image-1.5', quota: { imagesPerMinute: 1 } });
    const first = await generate(emulator.url, ok, 'north');
    const second = await generate(emulator.url, ok, 'north');
    const listed = await control('GET', '');
    const lifted = await control('PUT', '/north', { model: 'gpt-image-1.5', quota: null });
    const third = await generate(emulator.url, ok, 'north');
    const refused = await control('PUT', '/north', { model: 'gpt-image-9', quota: { imagesPerMinute: 0 } });

    expect(added.status).toBe(200);
    expect(added.json).toEqual({ north: { model: 'gpt-image-1.5', quota: { imagesPerMinute: 1 }, used: 0, remaining: 1 } });
    expect([first.status, second.status, third.status]).toEqual([200, 429, 200]);
    expect(listed.json).toEqual({
      minuteMs: 60_000,
      deployments: {
        east: { model: 'gpt-image-1.5', quota: null, used: 0 },
        north: { model: 'gpt-image-1.5', quota: { imagesPerMinute: 1 }, used: 1, remaining: 0 },
      },
    });
    expect(lifted.status).toBe(200);
    expect(refused.status).toBe(400);
    expect((refused.json as { error: { code: string } }).error.code).toBe('InvalidDeployment');

    const removed = await fetch(`${emulator.url}/_emulator/deployments/north`, { method: 'DELETE' });
    const gone = await generate(emulator.url, ok, 'north');
    expect(removed.status).toBe(204);
    expect(gone.status).toBe(404);
    expect(errorOf(gone).code).toBe('DeploymentNotFound');
  });

  it('sets deployments and quotas in process, checked like the control API', async () => {
    emulator = await start({ deployments: { east: 'gpt-image-1.5' } });

    emulator.setDeployment('south', { model: 'gpt-image-2', quota: { requestsPerMinute: 1 } });

    expect([(await generate(emulator.url, ok, 'south')).status, (await generate(emulator.url, ok, 'south')).status]).toEqual([200, 429]);
    expect(() => emulator.setDeployment('bad', { model: 'gpt-image-9' })).toThrow();
  });

  it('refuses a quota for a deployment it does not have', async () => {
    await expect(startEmulator({ deployments: { east: 'gpt-image-1.5' }, quotas: { west: { imagesPerMinute: 5 } } })).rejects.toThrow(
      "a quota names deployment 'west', which is not one of the deployments",
    );
  });

  it('reads quotas and the length of a minute from EMULATOR_QUOTAS and EMULATOR_MINUTE_MS', () => {
    expect(emulatorOptionsFromEnv({ EMULATOR_DEPLOYMENTS: 'a=gpt-image-1,b=gpt-image-2', EMULATOR_QUOTAS: 'a=5ipm, b = 10RPM', EMULATOR_MINUTE_MS: '6000' })).toMatchObject({
      quotas: { a: { imagesPerMinute: 5 }, b: { requestsPerMinute: 10 } },
      minuteMs: 6000,
    });
    expect(() => emulatorOptionsFromEnv({ EMULATOR_QUOTAS: 'a=5, b=0ipm' })).toThrow(EmulatorConfigError);
  });
});
