import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { odata } from '@azure/data-tables';
import { z } from 'zod';

import { StorageError } from '../domain/errors';
import type { DocumentStore, Versioned } from '../domain/ports';
import type { UsageRange, UsageRecord, UsageStore } from '../domain/usage';
import { usageRecordSchema } from '../domain/usage';

/**
 * Usage records and budget counters in one Table Storage table. A usage record's partition is its
 * UTC day (`2026-11-20`) and its row key `{requestId}|{callId}` (escaped): a day range is a range of partitions,
 * read without touching any other day, and writing a call twice finds its row taken. Budget counters
 * live in partitions named `budget-{period}` (which sort after every day), one row per subject.
 */
export class TableUsageStore implements UsageStore {
  private ready: Promise<void> | undefined;

  constructor(private readonly table: TableClient) {}

  /** Creates the table on first use (a no-op when it exists), so a new deployment needs no set-up step. */
  ensureTable(): Promise<void> {
    this.ready ??= this.table.createTable().catch((error: unknown) => {
      this.ready = undefined;
      throw new StorageError(`Could not create the usage table ${this.table.tableName}.`, error);
    });
    return this.ready;
  }

  async recordUsage(record: UsageRecord): Promise<boolean> {
    await this.ensureTable();
    try {
      await this.table.createEntity({
        partitionKey: record.day,
        // Row keys refuse / \ # ? (an inbox edit's request id is its output prefix, with slashes).
        rowKey: `${encodeURIComponent(record.requestId)}|${encodeURIComponent(record.callId)}`,
        requestId: record.requestId,
        callId: record.callId,
        at: record.at,
        caller: record.caller,
        callerSource: record.callerSource,
        operation: record.operation,
        model: record.model,
        size: record.size,
        quality: record.quality,
        images: record.images,
        outcome: record.outcome,
        textInputTokens: record.tokens.textInput,
        imageInputTokens: record.tokens.imageInput,
        imageOutputTokens: record.tokens.imageOutput,
        textOutputTokens: record.tokens.textOutput,
        // Always a double, even when it is a whole number, so the column keeps one type.
        cost: { value: record.cost.toFixed(6), type: 'Double' },
        currency: record.currency,
        pricesAsOf: record.pricesAsOf,
      });
      return true;
    } catch (error: unknown) {
      if (statusOf(error) === 409) return false;
      throw new StorageError(`Could not record the usage of request ${record.requestId} in the usage table.`, error);
    }
  }

  async *listUsage(range: UsageRange): AsyncIterable<UsageRecord> {
    await this.ensureTable();
    const entities = this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: odata`PartitionKey ge ${range.fromDay} and PartitionKey le ${range.toDay}` },
    });
    const iterator = entities[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Record<string, unknown>>;
      try {
        next = await iterator.next();
      } catch (error: unknown) {
        throw new StorageError(`Could not read usage from ${range.fromDay} to ${range.toDay} from the usage table.`, error);
      }
      if (next.done === true) return;
      // Only usage records live in day partitions: a row that does not read as one would make the
      // report wrong without saying so, so the report fails instead, naming the row.
      const parsed = usageEntitySchema.safeParse(next.value);
      if (!parsed.success) {
        throw new StorageError(`The usage table's row ${String(next.value['partitionKey'])}/${String(next.value['rowKey'])} is not a usage record.`, parsed.error);
      }
      yield parsed.data;
    }
  }
}

const count = z.number().int().nonnegative();
// The record's own schema, with its day as the partition and its tokens as flat columns (a table
// row holds no objects); the row's own columns (rowKey, timestamp, etag) are left out.
const usageEntitySchema = z
  .object({
    ...usageRecordSchema.omit({ day: true, tokens: true }).shape,
    partitionKey: usageRecordSchema.shape.day,
    textInputTokens: count,
    imageInputTokens: count,
    imageOutputTokens: count,
    textOutputTokens: count,
  })
  .transform(
    ({ partitionKey, textInputTokens, imageInputTokens, imageOutputTokens, textOutputTokens, ...fields }): UsageRecord => ({
      ...fields,
      day: partitionKey,
      tokens: { textInput: textInputTokens, imageInput: imageInputTokens, imageOutput: imageOutputTokens, textOutput: textOutputTokens },
    }),
  );

/**
 * Small JSON documents as table rows with ETag conditions: the budget counters. A name
 * `{period}/{subject}` is the row `{subject}` (escaped: row keys refuse `/ \ # ?`) of the partition
 * `budget-{period}`.
 */
export class TableDocumentStore implements DocumentStore {
  constructor(
    private readonly table: TableClient,
    private readonly usage: TableUsageStore,
  ) {}

  async read(name: string): Promise<Versioned<unknown> | undefined> {
    await this.usage.ensureTable();
    const { partitionKey, rowKey } = keysOf(name);
    let entity: TableEntityResult<{ document?: unknown }>;
    try {
      entity = await this.table.getEntity<{ document?: unknown }>(partitionKey, rowKey);
    } catch (error: unknown) {
      if (statusOf(error) === 404) return undefined;
      throw new StorageError(`Could not read ${name} from the usage table.`, error);
    }
    if (typeof entity.document !== 'string' || entity.etag === undefined) throw new StorageError(`${name} in the usage table is not a document.`);
    try {
      return { value: JSON.parse(entity.document) as unknown, etag: entity.etag };
    } catch (error: unknown) {
      throw new StorageError(`${name} in the usage table is not valid JSON.`, error);
    }
  }

  async create(name: string, value: unknown): Promise<string | undefined> {
    await this.usage.ensureTable();
    try {
      return (await this.table.createEntity({ ...keysOf(name), document: JSON.stringify(value) })).etag;
    } catch (error: unknown) {
      if (statusOf(error) === 409) return undefined;
      throw new StorageError(`Could not create ${name} in the usage table.`, error);
    }
  }

  async replace(name: string, value: unknown, etag: string): Promise<string | undefined> {
    try {
      return (await this.table.updateEntity({ ...keysOf(name), document: JSON.stringify(value) }, 'Replace', { etag })).etag;
    } catch (error: unknown) {
      if (statusOf(error) === 412 || statusOf(error) === 404) return undefined;
      throw new StorageError(`Could not update ${name} in the usage table.`, error);
    }
  }
}

function keysOf(name: string): { partitionKey: string; rowKey: string } {
  const slash = name.indexOf('/');
  return { partitionKey: `budget-${name.slice(0, slash)}`, rowKey: encodeURIComponent(name.slice(slash + 1)) };
}

function statusOf(error: unknown): number | undefined {
  const status: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'statusCode') : undefined;
  return typeof status === 'number' ? status : undefined;
}
