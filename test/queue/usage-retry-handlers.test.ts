import { createUsageRetryPoisonHandler, createUsageRetryWorker } from '../../src/queue/usage-retry-handlers';
import { makeFakeServices } from '../fakes/services';
import { makeContext } from '../helpers/http';

const record = {
  day: '2026-11-25',
  requestId: 'r1',
  callId: 'upstream-1',
  at: '2026-11-25T12:00:01.000Z',
  caller: 'user:ana',
  callerSource: 'user',
  operation: 'generate',
  model: 'gpt-image-1.5',
  size: '1024x1024',
  quality: 'low',
  images: 1,
  outcome: 'succeeded',
  tokens: { textInput: 3, imageInput: 0, imageOutput: 272, textOutput: 0 },
  cost: 0.008719,
  currency: 'USD',
  pricesAsOf: '2026-11-05',
};

describe('the usage retry queue', () => {
  it('writes a queued record once, however often it is delivered', async () => {
    const services = makeFakeServices();
    const worker = createUsageRetryWorker(() => Promise.resolve(services));

    await worker(record, makeContext());
    await worker(JSON.stringify(record), makeContext());

    expect([...services.usageStore.records.values()]).toEqual([record]);
  });

  it('throws while the table is still down, so that the host delivers the record again', async () => {
    const services = makeFakeServices();
    services.usageStore.failure = new Error('still down');

    await expect(createUsageRetryWorker(() => Promise.resolve(services))(record, makeContext())).rejects.toThrow('still down');
  });

  it('drops what is not a usage record, and logs a record whose retries ran out whole', async () => {
    const services = makeFakeServices();
    const dropped = makeContext();
    await createUsageRetryWorker(() => Promise.resolve(services))({ requestId: 'r1' }, dropped);
    expect(dropped.logs).toEqual([['error', 'Dropping a queue message that is not a usage record.']]);

    const poisoned = makeContext();
    await createUsageRetryPoisonHandler()(record, poisoned);
    expect(poisoned.logs).toEqual([['error', `UsageNotRecorded ${JSON.stringify(record)} (Error: every retry failed)`]]);
  });
});
