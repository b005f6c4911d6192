import { z } from 'zod';

import type { CallerSource } from './callers';
import type { ImageModel } from './image-models';
import { IMAGE_MODELS } from './image-models';
import type { TokenUsage } from './pricing';
import { NO_TOKENS } from './pricing';

/**
 * One billed upstream call, as the usage store keeps it: who, what, how many tokens of each kind,
 * and what it cost at the price table of the day. Stored under the UTC day the request started, so
 * a report over a range of days reads only those days.
 */
export interface UsageRecord {
  /** UTC day (YYYY-MM-DD) the request started: the store's partition. */
  readonly day: string;
  readonly requestId: string;
  /**
   * Which upstream call of the request this is (the upstream's request id when it gave one): a job that
   * had to call the upstream twice was billed twice, and both calls count, each once.
   */
  readonly callId: string;
  readonly at: string;
  readonly caller: string;
  readonly callerSource: CallerSource;
  readonly operation: 'generate' | 'edit';
  readonly model: ImageModel;
  readonly size: string;
  readonly quality: string;
  /** Images the upstream returned (and billed), whether or not they could be stored. */
  readonly images: number;
  /** `succeeded`, or the error code the request ended with after the upstream had answered. */
  readonly outcome: string;
  readonly tokens: TokenUsage;
  readonly cost: number;
  readonly currency: string;
  /** The price table's date. */
  readonly pricesAsOf: string;
}

export interface UsageRange {
  /** First and last UTC day, inclusive (YYYY-MM-DD). */
  readonly fromDay: string;
  readonly toDay: string;
}

/** Where a record goes when the usage store refuses it, to be written again later (a Storage Queue in Azure). */
export interface UsageRetryQueue {
  enqueue(record: UsageRecord): Promise<void>;
}

const tokenCount = z.number().int().nonnegative();

/** A usage record as it travels through the retry queue: checked again, since anything may sit in a queue. */
export const usageRecordSchema = z.strictObject({
  day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  requestId: z.string().min(1),
  callId: z.string().min(1),
  at: z.string(),
  caller: z.string(),
  callerSource: z.enum(['principal', 'user', 'inbox', 'default']),
  operation: z.enum(['generate', 'edit']),
  model: z.enum(IMAGE_MODELS),
  size: z.string(),
  quality: z.string(),
  images: tokenCount,
  outcome: z.string(),
  tokens: z.strictObject({ textInput: tokenCount, imageInput: tokenCount, imageOutput: tokenCount, textOutput: tokenCount }),
  cost: z.number().nonnegative(),
  currency: z.string(),
  pricesAsOf: z.string(),
});

/** The usage store (Table Storage in Azure, Azurite locally). */
export interface UsageStore {
  /**
   * Adds a record unless one with the same day, request id and call id exists: writing the same
   * call twice (a retry, a redelivery) counts it once. Resolves false when it was already there.
   */
  recordUsage(record: UsageRecord): Promise<boolean>;
  /** Every record of the days in the range, day by day; other days are not read. */
  listUsage(range: UsageRange): AsyncIterable<UsageRecord>;
}

const count = z.number().int().nonnegative().catch(0);
const usageSchema = z.looseObject({
  input_tokens: count.optional(),
  output_tokens: count.optional(),
  input_tokens_details: z.looseObject({ text_tokens: count.optional(), image_tokens: count.optional() }).optional().catch(undefined),
  output_tokens_details: z.looseObject({ text_tokens: count.optional(), image_tokens: count.optional() }).optional().catch(undefined),
});

/**
 * The tokens of the upstream's `usage` object by kind. Input tokens without details count as text,
 * output tokens without details as image output (what the images API produces); no usage at all
 * (dall-e-3) is no tokens: such models are priced per image.
 */
export function tokensFromUsage(usage: Readonly<Record<string, unknown>> | undefined): TokenUsage {
  const parsed = usageSchema.safeParse(usage);
  if (usage === undefined || !parsed.success) return NO_TOKENS;
  const { input_tokens_details: inputDetails, output_tokens_details: outputDetails } = parsed.data;
  const input = parsed.data.input_tokens ?? 0;
  const output = parsed.data.output_tokens ?? 0;
  const imageInput = inputDetails?.image_tokens ?? 0;
  const textInput = inputDetails?.text_tokens ?? Math.max(0, input - imageInput);
  const textOutput = outputDetails?.text_tokens ?? 0;
  const imageOutput = outputDetails?.image_tokens ?? Math.max(0, output - textOutput);
  return { textInput, imageInput, imageOutput, textOutput };
}

/** The UTC day of an instant, YYYY-MM-DD. */
export const utcDay = (at: Date) => at.toISOString().slice(0, 10);
