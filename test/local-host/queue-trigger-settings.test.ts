import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { readQueueTriggerSettings } from '../../local-host/queue-runner';

describe('readQueueTriggerSettings', () => {
  const folder = mkdtempSync(join(tmpdir(), 'queue-settings-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  const read = (queues: unknown) => {
    writeFileSync(join(folder, 'host.json'), JSON.stringify({ version: '2.0', extensions: { queues } }));
    return readQueueTriggerSettings(folder);
  };

  it('reads the delivery count, the batch and both time spans of host.json', () => {
    expect(read({ maxDequeueCount: 3, batchSize: 4, visibilityTimeout: '00:00:10', maxPollingInterval: '00:01:30' })).toEqual({
      maxDequeueCount: 3,
      batchSize: 4,
      visibilityTimeoutInSeconds: 10,
      maxPollingIntervalInMs: 90_000,
    });
  });

  it('refuses a time span it cannot read', () => {
    expect(() => read({ maxPollingInterval: '2s' })).toThrow('host.json extensions.queues.maxPollingInterval must look like "00:00:30", not "2s".');
  });

  it('polls the project’s queues at least every two seconds, so that jobs waiting for quota wake up on time', () => {
    expect(readQueueTriggerSettings(join(__dirname, '..', '..')).maxPollingIntervalInMs).toBe(2_000);
  });
});
