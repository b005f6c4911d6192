import { createCallbackPoisonHandler } from '../../src/queue/callback-queue-handlers';
import { makeContext } from '../helpers/http';

describe('the callbacks poison queue', () => {
  it('says which delivery was given up and what the receiver can still do, without the callback URL', async () => {
    const job = makeContext();
    await createCallbackPoisonHandler()(JSON.stringify({ kind: 'job', jobId: 'job-1', attempt: 3 }), job);
    expect(job.logs).toEqual([['error', 'Gave up on the callback of job job-1 after every delivery of its queue message failed; its caller can still read job job-1.']]);

    const inbox = makeContext();
    await createCallbackPoisonHandler()({ kind: 'inbox', subscriptionId: 'sub-1', manifestName: 'shots/a.png.manifest.json', attempt: 1 }, inbox);
    expect(inbox.logs).toEqual([
      ['error', 'Gave up on the manifest "shots/a.png.manifest.json" to subscription sub-1 after every delivery of its queue message failed; the manifest stays in the outputs container.'],
    ]);
  });

  it('drops what is not a callback delivery', async () => {
    const context = makeContext();
    await createCallbackPoisonHandler()('not json', context);
    expect(context.logs).toEqual([['error', 'Dropping a queue message that is not a callback delivery.']]);
  });
});
