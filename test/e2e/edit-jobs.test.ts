import type { RunningEmulator } from '../../emulator/server';
import { uniqueContainerName } from '../helpers/azurite';
import type { AppStack } from '../helpers/app-stack';
import { startAppStack } from '../helpers/app-stack';
import type { TestFunctionsHost } from '../helpers/functions-host';
import { pollLikePowerAutomate } from '../helpers/power-automate';
import { downloadPng, expectedMaskedEdit, inputPng, maskPng, sha256 } from './edits-fixtures';

// Edits as jobs: the inputs are checked and kept at once, the worker edits them later, and the poll
// ends with the same answer a synchronous edit gives.

interface ImagesBody {
  id: string;
  data: { url: string }[];
}

/** A file as a flow holds it. */
const fileObject = (bytes: Buffer) => ({ '$content-type': 'image/png', $content: bytes.toString('base64') });

describe('edit jobs through the local stack', () => {
  let stack: AppStack | undefined;
  let emulator: RunningEmulator;
  let host: TestFunctionsHost;

  beforeAll(async () => {
    stack = await startAppStack({
      settings: { JOBS_QUEUE: uniqueContainerName('e2e-editjobs-q'), JOBS_RETRY_AFTER_SECONDS: '1' },
      host: { runQueueTriggers: true },
    });
    ({ emulator, host } = stack);
  });

  afterAll(() => stack?.close());

  beforeEach(() => emulator.reset());

  const postEdit = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${host.url}/api/images/edits?async=true`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('edits a Power-Automate-shaped JSON body with a mask asynchronously, the inputs reaching the upstream intact', async () => {
    const prompt = 'paint the door green';
    const mask = maskPng();
    const start = await postEdit({ prompt, images: [fileObject(inputPng)], mask: fileObject(mask) });

    expect(start.status).toBe(202);
    const { final } = await pollLikePowerAutomate(start);
    expect(final.status).toBe(200);
    const body = (await final.json()) as ImagesBody;
    const result = await downloadPng(body.data[0]?.url ?? '');
    expect(Buffer.from(result.samples).equals(expectedMaskedEdit(prompt))).toBe(true);
    expect(emulator.requests.flatMap((request) => request.files ?? []).map((file) => file.sha256)).toEqual([sha256(inputPng), sha256(mask)]);
  });

  it('replays an idempotent edit without a second upstream call', async () => {
    const key = `edit-${Date.now()}`;
    const body = { prompt: 'a hat', images: [`data:image/png;base64,${inputPng.toString('base64')}`] };

    const { final: first } = await pollLikePowerAutomate(await postEdit(body, { 'idempotency-key': key }));
    const { final: again } = await pollLikePowerAutomate(await postEdit(body, { 'idempotency-key': key }));

    expect([first.status, again.status]).toEqual([200, 200]);
    const [firstBody, againBody] = (await Promise.all([first.json(), again.json()])) as ImagesBody[];
    expect(againBody?.id).toBe(firstBody?.id);
    expect(emulator.requests).toHaveLength(1);
  });

  it('still refuses a bad input at once, without a job', async () => {
    const response = await postEdit({ prompt: 'x', images: [inputPng.toString('base64')], mask: maskPng(10, 10).toString('base64') });

    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('MaskSizeMismatch');
    expect(emulator.requests).toHaveLength(0);
  });
});
