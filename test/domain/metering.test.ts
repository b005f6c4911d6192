import { StorageError } from '../../src/domain/errors';
import { makeTestMetering } from '../fakes/in-memory-usage';

const clock = { now: () => new Date('2026-11-25T12:00:00Z') };
const request = (user: string, requestId: string) => ({
  requestId,
  operation: 'generate' as const,
  model: 'gpt-image-1.5' as const,
  caller: { id: `user:${user}`, source: 'user' as const },
  n: 1,
  quality: 'low',
  size: '1024x1024',
  promptLength: 12,
  inputImages: [],
});
const billed = { usage: { input_tokens: 3, output_tokens: 272, input_tokens_details: { text_tokens: 3, image_tokens: 0 } }, images: 1, upstreamRequestId: 'upstream-1' };

describe('metering', () => {
  it('counts what a caller spent before a budget was set, from the usage records of the period', async () => {
    const before = makeTestMetering({ clock });
    await (await before.metering.start(request('ana', 'r1'))).finish({ billed });
    // The same usage store, now with a budget of one image a day.
    const after = makeTestMetering({ clock, budgets: [{ caller: 'user:ana', scope: 'each', daily: { images: 1 } }], usageStore: before.usageStore });

    await expect(after.metering.start(request('ana', 'r2'))).rejects.toMatchObject({ code: 'BudgetExceeded', details: { spent: 1, limit: 1 } });
    expect(after.events).toEqual([expect.objectContaining({ requestId: 'r2', outcome: 'BudgetExceeded', budget: 'refused', images: 0, cost: 0 })]);
  });

  it('records a billed call whose request then failed, with the failure as its outcome', async () => {
    const { metering, usageStore, events } = makeTestMetering({ clock });

    await (await metering.start(request('ana', 'r1'))).finish({ billed, error: new StorageError('Blob Storage is down.'), upstreamLatencyInMs: 1234 });

    expect([...usageStore.records.values()]).toEqual([
      expect.objectContaining({ requestId: 'r1', callId: 'upstream-1', outcome: 'StorageError', images: 1, tokens: { textInput: 3, imageInput: 0, imageOutput: 272, textOutput: 0 }, cost: 0.008719 }),
    ]);
    expect(events).toEqual([expect.objectContaining({ outcome: 'StorageError', cost: 0.008719, upstreamLatencyInMs: 1234, throttled: false })]);
  });

  it('lets requests through when the usage table cannot be reached, and queues their usage to be written later', async () => {
    const { metering, usageStore, retryQueue, events, logs } = makeTestMetering({ clock, budgets: [{ caller: '*', scope: 'each', daily: { images: 1 } }] });
    usageStore.failure = new StorageError('The table service is down.');

    await (await metering.start(request('ana', 'r1'))).finish({ billed });

    expect(events).toEqual([expect.objectContaining({ budget: 'unchecked', outcome: 'succeeded' })]);
    expect(retryQueue.sent).toEqual([expect.objectContaining({ requestId: 'r1', caller: 'user:ana', cost: 0.008719 })]);
    expect(logs.map((line) => line.level)).toEqual(['warn', 'warn']);
  });

  it('puts the whole record in the log when the retry queue refuses it too', async () => {
    const { metering, usageStore, retryQueue, logs } = makeTestMetering({ clock });
    usageStore.failure = new StorageError('The table service is down.');
    retryQueue.failure = new StorageError('The queue service is down.');

    await (await metering.start(request('ana', 'r1'))).finish({ billed });

    expect(logs.map((line) => line.level)).toEqual(['warn', 'error']);
    expect(logs[1]?.message).toMatch(/^UsageNotRecorded \{"day":"2026-11-25","requestId":"r1",.*\} \(StorageError: The queue service is down\.\)$/);
  });
});
