import type { BudgetRule } from '../../src/domain/budgets';
import type { ImageRequestEvent, Metering, MeteringLog } from '../../src/domain/metering';
import { createMetering } from '../../src/domain/metering';
import type { Clock } from '../../src/domain/ports';
import { DEFAULT_PRICE_TABLE } from '../../src/domain/pricing';
import type { UsageRange, UsageRecord, UsageRetryQueue, UsageStore } from '../../src/domain/usage';
import { InMemoryDocumentStore } from './in-memory-documents';

/** The usage store's contract (one row per day, request and call; day ranges) in memory. */
export class InMemoryUsageStore implements UsageStore {
  readonly records = new Map<string, UsageRecord>();
  /** Set to make every write fail, as a store that is down would. */
  failure: Error | undefined;

  recordUsage(record: UsageRecord): Promise<boolean> {
    if (this.failure) return Promise.reject(this.failure);
    const key = `${record.day}/${record.requestId}|${record.callId}`;
    if (this.records.has(key)) return Promise.resolve(false);
    this.records.set(key, record);
    return Promise.resolve(true);
  }

  async *listUsage(range: UsageRange): AsyncIterable<UsageRecord> {
    if (this.failure) throw this.failure;
    await Promise.resolve();
    for (const record of [...this.records.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0))) {
      if (record.day >= range.fromDay && record.day <= range.toDay) yield record;
    }
  }
}

/** The retry queue as a list; set `failure` to make it refuse too. */
export class RecordingUsageRetryQueue implements UsageRetryQueue {
  readonly sent: UsageRecord[] = [];
  failure: Error | undefined;

  enqueue(record: UsageRecord): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.sent.push(record);
    return Promise.resolve();
  }
}

export interface TestMetering {
  readonly metering: Metering;
  readonly usageStore: InMemoryUsageStore;
  readonly retryQueue: RecordingUsageRetryQueue;
  readonly counters: InMemoryDocumentStore;
  readonly events: ImageRequestEvent[];
  readonly logs: { level: 'warn' | 'error'; message: string }[];
}

/** The real metering over in-memory stores, recording what it would send to telemetry and the log. */
export function makeTestMetering(options: { readonly clock: Clock; readonly budgets?: readonly BudgetRule[]; readonly usageStore?: InMemoryUsageStore }): TestMetering {
  const usageStore = options.usageStore ?? new InMemoryUsageStore();
  const counters = new InMemoryDocumentStore();
  const events: ImageRequestEvent[] = [];
  const logs: { level: 'warn' | 'error'; message: string }[] = [];
  const log: MeteringLog = {
    warn: (message) => logs.push({ level: 'warn', message }),
    error: (message) => logs.push({ level: 'error', message }),
  };
  let next = 0;
  const retryQueue = new RecordingUsageRetryQueue();
  const metering = createMetering({
    usageStore,
    retryQueue,
    budgets: { rules: options.budgets ?? [], counters, now: () => options.clock.now(), reservationTtlInMs: 600_000, currency: 'USD' },
    prices: DEFAULT_PRICE_TABLE,
    telemetry: { trackImageRequest: (event) => events.push(event) },
    clock: options.clock,
    ids: { newId: () => `call-${++next}` },
    log,
  });
  return { metering, usageStore, retryQueue, counters, events, logs };
}
