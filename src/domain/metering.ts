import type { BudgetDependencies, BudgetReservation, BudgetSubject, SpendAmount } from './budgets';
import { reserveBudget, settleBudget } from './budgets';
import type { Caller } from './callers';
import { callerMatches } from './callers';
import { AppError, BudgetExceededError, UpstreamThrottledError } from './errors';
import type { ImageModel } from './image-models';
import { MODEL_RULES } from './image-models';
import type { Clock, IdGenerator } from './ports';
import type { CallEstimate, PriceTable, TokenUsage } from './pricing';
import { costOf, estimateCost, NO_TOKENS } from './pricing';
import type { UsageRecord, UsageRetryQueue, UsageStore } from './usage';
import { tokensFromUsage, utcDay } from './usage';

/**
 * The one place that meters an upstream call: before it, the caller's budgets (reserve or refuse);
 * after it, the usage record (once per billed call), the budget settled with the real cost, and one
 * telemetry event. Generations and edits call it around their upstream call; jobs and inbox edits go
 * through them, so they are metered the same way.
 */

/** What a request is, for metering: who, which model, and enough to estimate its cost. */
export interface MeteredRequest extends CallEstimate {
  readonly requestId: string;
  readonly operation: 'generate' | 'edit';
  readonly model: ImageModel;
  readonly caller: Caller;
}

/** What the upstream answered, when it answered: the call was billed. */
export interface BilledCall {
  readonly usage?: Readonly<Record<string, unknown>> | undefined;
  readonly images: number;
  readonly size?: string | undefined;
  readonly quality?: string | undefined;
  readonly upstreamRequestId?: string | undefined;
}

export interface MeteringOutcome {
  /** Present when the upstream answered (and billed), even if the request failed afterwards. */
  readonly billed?: BilledCall | undefined;
  /** Why the request failed, if it did. */
  readonly error?: unknown;
  readonly upstreamLatencyInMs?: number | undefined;
}

export interface Meter {
  /** Records and settles; never throws (what it cannot write goes to the log, whole). */
  finish(outcome: MeteringOutcome): Promise<void>;
}

export interface Metering {
  /** Checks and reserves the caller's budgets; throws BudgetExceededError before anything is spent. */
  start(request: MeteredRequest): Promise<Meter>;
}

/** Per request, what Application Insights gets: dimensions and measurements a query can chart. */
export interface ImageRequestEvent {
  readonly requestId: string;
  readonly operation: 'generate' | 'edit';
  readonly model: ImageModel;
  readonly caller: string;
  readonly callerSource: string;
  /** `succeeded` or the error code the caller got. */
  readonly outcome: string;
  readonly images: number;
  readonly tokens: TokenUsage;
  readonly cost: number;
  readonly currency: string;
  readonly upstreamLatencyInMs?: number | undefined;
  /** The upstream answered 429 (after the client's own retries). */
  readonly throttled: boolean;
  /** `none`: no budget applies; `reserved`; `refused` (429 BudgetExceeded); `unchecked`: the counters could not be reached. */
  readonly budget: 'none' | 'reserved' | 'refused' | 'unchecked';
}

export interface RequestTelemetry {
  trackImageRequest(event: ImageRequestEvent): void;
}

export interface MeteringLog {
  warn(message: string): void;
  error(message: string): void;
}

export interface MeteringDependencies {
  readonly usageStore: UsageStore;
  /** Takes what the usage store refused, for the usage-retry worker to write later. */
  readonly retryQueue: UsageRetryQueue;
  /** The budgets; what a new counter starts from is read from the usage store. */
  readonly budgets: Omit<BudgetDependencies, 'spentSince'>;
  readonly prices: PriceTable;
  readonly telemetry: RequestTelemetry;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly log: MeteringLog;
}

/** The prefix of the log line that carries a usage record the store did not take, for reconciliation. */
const UNRECORDED_USAGE_MARKER = 'UsageNotRecorded';

export function createMetering(dependencies: MeteringDependencies): Metering {
  const { clock, prices, log } = dependencies;
  const budgets: BudgetDependencies = { ...dependencies.budgets, spentSince: (subject, from) => spentSince(dependencies.usageStore, subject, from, clock.now()) };
  return {
    async start(request) {
      const startedAt = clock.now();
      const estimate = { images: request.n, cost: estimateCost(request, prices) };
      let reservation: BudgetReservation | undefined;
      let budget: ImageRequestEvent['budget'] = 'none';
      try {
        reservation = await reserveBudget(request.caller, request.requestId, estimate, budgets);
        if (reservation.counters.length > 0) budget = 'reserved';
      } catch (error: unknown) {
        if (error instanceof BudgetExceededError) {
          dependencies.telemetry.trackImageRequest(event(request, { budget: 'refused', outcome: error.code }));
          throw error;
        }
        // The counters are in the usage store; when it is down, requests go on (and say so) rather than all failing.
        budget = 'unchecked';
        log.warn(`Budgets of ${request.caller.id} not checked for request ${request.requestId}: ${describe(error)}`);
      }

      return {
        async finish(outcome) {
          const failed = outcome.error === undefined ? undefined : outcomeCode(outcome.error);
          const record = outcome.billed && usageRecord(request, outcome.billed, failed ?? 'succeeded', startedAt);
          if (record) await recordUsage(record);
          if (reservation && reservation.counters.length > 0) {
            await settleBudget(reservation, record && { images: record.images, cost: record.cost }, budgets).catch((error: unknown) => {
              log.warn(`The budgets of ${request.caller.id} were not settled for request ${request.requestId}; its reservation lapses on its own: ${describe(error)}`);
            });
          }
          dependencies.telemetry.trackImageRequest(
            event(request, {
              budget,
              outcome: failed ?? 'succeeded',
              record,
              upstreamLatencyInMs: outcome.upstreamLatencyInMs,
              throttled: outcome.error instanceof UpstreamThrottledError,
            }),
          );
        },
      };
    },
  };

  function usageRecord(request: MeteredRequest, billed: BilledCall, outcome: string, startedAt: Date): UsageRecord {
    const tokens = tokensFromUsage(billed.usage);
    const isDallE = MODEL_RULES[request.model].family === 'dall-e';
    const size = billed.size ?? request.size ?? (isDallE ? '1024x1024' : 'auto');
    const quality = billed.quality ?? request.quality ?? (isDallE ? 'standard' : 'auto');
    return {
      day: utcDay(startedAt),
      requestId: request.requestId,
      callId: billed.upstreamRequestId ?? dependencies.ids.newId(),
      at: clock.now().toISOString(),
      caller: request.caller.id,
      callerSource: request.caller.source,
      operation: request.operation,
      model: request.model,
      size,
      quality,
      images: billed.images,
      outcome,
      tokens,
      cost: costOf(request.model, { tokens, images: billed.images, size, quality }, prices),
      currency: prices.currency,
      pricesAsOf: prices.asOf,
    };
  }

  async function recordUsage(record: UsageRecord): Promise<void> {
    try {
      await dependencies.usageStore.recordUsage(record);
      return;
    } catch (error: unknown) {
      log.warn(`The usage of request ${record.requestId} goes to the retry queue: ${describe(error)}`);
    }
    try {
      await dependencies.retryQueue.enqueue(record);
    } catch (error: unknown) {
      logUnrecordedUsage(record, error, log);
    }
  }

  function event(
    request: MeteredRequest,
    facts: {
      readonly budget: ImageRequestEvent['budget'];
      readonly outcome: string;
      readonly record?: UsageRecord | undefined;
      readonly upstreamLatencyInMs?: number | undefined;
      readonly throttled?: boolean;
    },
  ): ImageRequestEvent {
    return {
      requestId: request.requestId,
      operation: request.operation,
      model: request.model,
      caller: request.caller.id,
      callerSource: request.caller.source,
      outcome: facts.outcome,
      images: facts.record?.images ?? 0,
      tokens: facts.record?.tokens ?? NO_TOKENS,
      cost: facts.record?.cost ?? 0,
      currency: prices.currency,
      upstreamLatencyInMs: facts.upstreamLatencyInMs,
      throttled: facts.throttled ?? false,
      budget: facts.budget,
    };
  }
}

/**
 * Never lost silently: a record no store took goes to the log whole, where it can be found and written
 * again (writing it twice is harmless: the store keys it by request and call).
 */
export function logUnrecordedUsage(record: UsageRecord, error: unknown, log: MeteringLog): void {
  log.error(`${UNRECORDED_USAGE_MARKER} ${JSON.stringify(record)} (${describe(error)})`);
}

/** A subject's spend from `from` to `now`, summed from the usage records of those days. */
async function spentSince(usageStore: UsageStore, subject: BudgetSubject, from: Date, now: Date): Promise<SpendAmount> {
  let images = 0;
  let cost = 0;
  for await (const record of usageStore.listUsage({ fromDay: utcDay(from), toDay: utcDay(now) })) {
    if (subject.kind === 'caller' ? record.caller !== subject.id : !callerMatches(subject.pattern, record.caller)) continue;
    images += record.images;
    cost += record.cost;
  }
  return { images, cost };
}

function outcomeCode(error: unknown): string {
  return error instanceof AppError ? error.code : 'InternalError';
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : 'unknown error';
}
