import { TableClient } from '@azure/data-tables';
import { randomBytes } from 'node:crypto';

import { TableDocumentStore, TableUsageStore } from '../../src/adapters/table-usage-store';
import type { UsageRecord } from '../../src/domain/usage';
import { testStorageConnectionString } from '../helpers/azurite';

// The usage store against Azurite's table service: the contract the metering and the report rely on.

const record = (overrides: Partial<UsageRecord> = {}): UsageRecord => ({
  day: '2026-11-20',
  requestId: 'photos/door.png/0x8DD',
  callId: 'call-1',
  at: '2026-11-20T10:00:00.000Z',
  caller: 'inbox:photos',
  callerSource: 'inbox',
  operation: 'edit',
  model: 'gpt-image-1.5',
  size: '1024x1024',
  quality: 'low',
  images: 1,
  outcome: 'succeeded',
  tokens: { textInput: 5, imageInput: 194, imageOutput: 272, textOutput: 0 },
  cost: 1,
  currency: 'USD',
  pricesAsOf: '2026-11-05',
  ...overrides,
});

describe('TableUsageStore and TableDocumentStore in Azurite', () => {
  const table = TableClient.fromConnectionString(testStorageConnectionString(), `usage${randomBytes(6).toString('hex')}`, { allowInsecureConnection: true });
  const usage = new TableUsageStore(table);
  const counters = new TableDocumentStore(table, usage);

  afterAll(() => table.deleteTable());

  const list = async (fromDay: string, toDay: string) => {
    const records: UsageRecord[] = [];
    for await (const found of usage.listUsage({ fromDay, toDay })) records.push(found);
    return records;
  };

  it('records a call once, whatever its request id holds, and reads it back as it was written', async () => {
    expect(await usage.recordUsage(record())).toBe(true);
    expect(await usage.recordUsage(record({ cost: 99 }))).toBe(false);
    expect(await usage.recordUsage(record({ callId: 'call-2' }))).toBe(true);

    expect(await list('2026-11-20', '2026-11-20')).toEqual([record(), record({ callId: 'call-2' })]);
  });

  it('reads only the days asked for, never the budget counters', async () => {
    await usage.recordUsage(record({ day: '2026-11-19', requestId: 'before' }));
    await usage.recordUsage(record({ day: '2026-11-21', requestId: 'after' }));
    await counters.create('day-2026-11-20/caller:inbox:photos', { images: 1 });

    expect((await list('2026-11-21', '2026-12-31')).map((found) => found.requestId)).toEqual(['after']);
    expect((await list('2026-11-19', '2026-11-21')).map((found) => found.day)).toEqual(['2026-11-19', '2026-11-20', '2026-11-20', '2026-11-21']);
  });

  it('keeps counters with create-once and compare-and-swap on their ETags', async () => {
    const name = 'month-2026-11/shared:user:*';
    const created = await counters.create(name, { images: 1 });
    expect(created).toBeDefined();
    expect(await counters.create(name, { images: 2 })).toBeUndefined();

    const replaced = await counters.replace(name, { images: 3 }, created ?? '');
    expect(replaced).toBeDefined();
    expect(await counters.replace(name, { images: 4 }, created ?? '')).toBeUndefined();
    expect(await counters.read(name)).toEqual({ value: { images: 3 }, etag: replaced });
    expect(await counters.read('month-2026-11/nobody')).toBeUndefined();
  });

  it('fails a report on a row in a day partition that is not a usage record, naming it, rather than leave it out', async () => {
    await table.createEntity({ partitionKey: '2026-11-25', rowKey: 'stray', note: 'not usage' });

    await expect(list('2026-11-25', '2026-11-25')).rejects.toMatchObject({ code: 'StorageError', message: expect.stringContaining('2026-11-25/stray') as string });
  });
});
