import { createHash } from 'node:crypto';

import type { RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { uniqueContainerName } from '../helpers/azurite';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { appTestEnv, startTestFunctionsHost } from '../helpers/functions-host';

// Finding 2 of the attack run: the token of a job created with an Idempotency-Key was
// base64url(sha256("job-access\0" + jobId + "\0" + key)). The job id is in the path of every SAS link
// the job hands out, so anyone holding a link and able to guess the key could read the job (fresh
// links, the prompt) or cancel it.

interface JobSummary {
  id: string;
  status: string;
  statusUrl: string;
}

interface ImagesBody {
  data: { url: string }[];
}

/** The token as the first version derived it: from public data only. */
const publicDerivation = (jobId: string, key: string) => createHash('sha256').update(`job-access\u0000${jobId}\u0000${key}`).digest('base64url');

const SECRET_A = 'a'.repeat(20) + 'first-job-token-secret-of-this-test';
const SECRET_B = 'b'.repeat(20) + 'second-job-token-secret-of-this-test';

describe('job access tokens', () => {
  let emulator: RunningEmulator;
  const containers = { IMAGES_CONTAINER: uniqueContainerName('sec-tok-images'), JOBS_CONTAINER: uniqueContainerName('sec-tok-jobs') };

  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());

  /** A host over the same containers each time, with these job-token settings; closed by `use`'s end. */
  async function withHost<T>(settings: Record<string, string>, use: (host: TestFunctionsHost) => Promise<T>): Promise<T> {
    const host = await startTestFunctionsHost({ env: { ...appTestEnv({ emulatorUrl: emulator.url }), ...containers, ...settings } });
    try {
      return await use(host);
    } finally {
      await host.close();
    }
  }

  const generate = (host: TestFunctionsHost, body: unknown, headers: Record<string, string>, query = '') =>
    fetch(`${host.url}/api/images/generations${query}`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('cannot be computed from a result link and a guessable Idempotency-Key', async () => {
    await withHost({ JOB_TOKEN_SECRET: SECRET_A }, async (host) => {
      const key = `order-${Date.now()}`;
      const done = await generate(host, { prompt: 'a receipt', quality: 'low' }, { 'idempotency-key': key });
      expect(done.status).toBe(200);
      const { data } = (await done.json()) as ImagesBody;
      // What anyone holding a result link knows: the job id is the link's first folder.
      const jobId = new URL(data[0]?.url ?? '').pathname.split('/').at(-2) ?? '';

      const read = await fetch(`${host.url}/api/jobs/${jobId}?token=${publicDerivation(jobId, key)}`);
      expect(read.status).toBe(404);
      expect(((await read.json()) as { error: { code: string } }).error.code).toBe('JobNotFound');
    });
  });

  it('cannot cancel a queued job with a computed token', async () => {
    await withHost({ JOB_TOKEN_SECRET: SECRET_A }, async (host) => {
      const key = `order-${Date.now()}-queued`;
      // No queue worker runs in this host: the job stays queued.
      const accepted = await generate(host, { prompt: 'wait for me' }, { 'idempotency-key': key }, '?async=true');
      const job = (await accepted.json()) as JobSummary;

      const cancel = await fetch(`${host.url}/api/jobs/${job.id}?token=${publicDerivation(job.id, key)}`, { method: 'DELETE' });
      expect(cancel.status).toBe(404);
      const status = (await (await fetch(job.statusUrl)).json()) as JobSummary;
      expect(status.status).toBe('queued');
    });
  });

  it('gives a replay the same working link, also after the secret was rotated, and says so when it cannot', async () => {
    const key = `rotated-${Date.now()}`;
    const body = { prompt: 'across a rotation' };
    const first = await withHost({ JOB_TOKEN_SECRET: SECRET_A }, async (host) => {
      const accepted = (await (await generate(host, body, { 'idempotency-key': key }, '?async=true')).json()) as JobSummary;
      const replayed = (await (await generate(host, body, { 'idempotency-key': key }, '?async=true')).json()) as JobSummary;
      expect(replayed.statusUrl).toBe(accepted.statusUrl);
      return accepted;
    });
    const token = new URL(first.statusUrl).searchParams.get('token');

    await withHost({ JOB_TOKEN_SECRET: SECRET_B, JOB_TOKEN_PREVIOUS_SECRETS: SECRET_A }, async (host) => {
      const replayed = await generate(host, body, { 'idempotency-key': key }, '?async=true');
      expect(replayed.status).toBe(202);
      expect(new URL(((await replayed.json()) as JobSummary).statusUrl).searchParams.get('token')).toBe(token);
    });

    await withHost({ JOB_TOKEN_SECRET: SECRET_B }, async (host) => {
      // The link handed out first keeps working: tokens are checked against the job, not the secrets.
      expect((await fetch(`${host.url}/api/jobs/${first.id}?token=${token ?? ''}`)).status).toBe(202);
      const replayed = await generate(host, body, { 'idempotency-key': key }, '?async=true');
      expect(replayed.status).toBe(409);
      const { error } = (await replayed.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('IdempotencyKeyUnavailable');
      expect(error.message).not.toContain('JOB_TOKEN');
    });
  });

  it('gives ordinary jobs random tokens', async () => {
    await withHost({ JOB_TOKEN_SECRET: SECRET_A }, async (host) => {
      const tokens = await Promise.all(
        [0, 1].map(async () => {
          const job = (await (await generate(host, { prompt: 'same body' }, {}, '?async=true')).json()) as JobSummary;
          return new URL(job.statusUrl).searchParams.get('token') ?? '';
        }),
      );
      expect(tokens[0]).not.toBe(tokens[1]);
      expect(tokens.every((token) => /^[A-Za-z0-9_-]{32,}$/.test(token))).toBe(true);
    });
  });
});
