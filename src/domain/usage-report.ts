import { callerMatches } from './callers';
import { ValidationError } from './errors';
import type { UsageRange, UsageRecord, UsageStore } from './usage';
import { utcDay } from './usage';
import { roundCost } from './pricing';

/** The longest range one report covers, so that a request cannot make the app read years of rows. */
const MAX_REPORT_DAYS = 366;

export type ReportDimension = 'day' | 'caller' | 'model';
export const REPORT_DIMENSIONS: readonly ReportDimension[] = ['day', 'caller', 'model'];

export interface UsageTotals {
  /** Billed upstream calls. */
  readonly calls: number;
  /** Calls whose request failed after the upstream had answered (and billed). */
  readonly failedCalls: number;
  readonly images: number;
  readonly textInputTokens: number;
  readonly imageInputTokens: number;
  readonly imageOutputTokens: number;
  readonly textOutputTokens: number;
  readonly cost: number;
}

export interface UsageReportRow extends UsageTotals {
  readonly day?: string | undefined;
  readonly caller?: string | undefined;
  readonly model?: string | undefined;
}

export interface UsageReport {
  readonly from: string;
  readonly to: string;
  readonly groupBy: readonly ReportDimension[];
  readonly currency: string;
  /** Every price table the records were costed with (a table changed within the range shows twice). */
  readonly pricesAsOf: readonly string[];
  readonly totals: UsageTotals;
  readonly rows: readonly UsageReportRow[];
}

export interface UsageQuery {
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  /** A caller id or pattern with `*`. */
  readonly caller?: string | undefined;
  readonly groupBy: readonly ReportDimension[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The range asked for, checked: by default the current month up to today (UTC). */
function reportRange(query: Pick<UsageQuery, 'from' | 'to'>, now: Date): UsageRange {
  const today = utcDay(now);
  const fromDay = query.from ?? `${today.slice(0, 8)}01`;
  const toDay = query.to ?? today;
  for (const [name, value] of [['from', fromDay], ['to', toDay]] as const) {
    if (!DAY.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`)) || utcDay(new Date(`${value}T00:00:00Z`)) !== value) {
      throw new ValidationError(`${name} must be a day as YYYY-MM-DD, such as ${today}.`, { code: 'InvalidParameter', target: name });
    }
  }
  const days = (Date.parse(`${toDay}T00:00:00Z`) - Date.parse(`${fromDay}T00:00:00Z`)) / 86_400_000 + 1;
  if (days < 1) throw new ValidationError('from must not be after to.', { code: 'InvalidParameter', target: 'from' });
  if (days > MAX_REPORT_DAYS) {
    throw new ValidationError(`A report covers at most ${MAX_REPORT_DAYS} days; ask for a shorter range.`, { code: 'InvalidParameter', target: 'to' });
  }
  return { fromDay, toDay };
}

const ZERO: UsageTotals = {
  calls: 0,
  failedCalls: 0,
  images: 0,
  textInputTokens: 0,
  imageInputTokens: 0,
  imageOutputTokens: 0,
  textOutputTokens: 0,
  cost: 0,
};

function add(totals: UsageTotals, record: UsageRecord): UsageTotals {
  return {
    calls: totals.calls + 1,
    failedCalls: totals.failedCalls + (record.outcome === 'succeeded' ? 0 : 1),
    images: totals.images + record.images,
    textInputTokens: totals.textInputTokens + record.tokens.textInput,
    imageInputTokens: totals.imageInputTokens + record.tokens.imageInput,
    imageOutputTokens: totals.imageOutputTokens + record.tokens.imageOutput,
    textOutputTokens: totals.textOutputTokens + record.tokens.textOutput,
    cost: roundCost(totals.cost + record.cost),
  };
}

/**
 * Totals per day, caller and model (or any of them) over a range of days: the store reads only
 * those days' partitions, and the rows come sorted by day, then caller, then model.
 */
export async function buildUsageReport(query: UsageQuery, dependencies: { readonly usageStore: UsageStore; readonly now: Date; readonly currency: string }): Promise<UsageReport> {
  const range = reportRange(query, dependencies.now);
  const groups = new Map<string, { key: Partial<Record<ReportDimension, string>>; totals: UsageTotals }>();
  let totals = ZERO;
  const pricesAsOf = new Set<string>();
  const currencies = new Set<string>();
  for await (const record of dependencies.usageStore.listUsage(range)) {
    if (query.caller !== undefined && !callerMatches(query.caller, record.caller)) continue;
    const key = Object.fromEntries(query.groupBy.map((dimension) => [dimension, record[dimension]])) as Partial<Record<ReportDimension, string>>;
    const id = JSON.stringify(query.groupBy.map((dimension) => record[dimension]));
    const group = groups.get(id) ?? { key, totals: ZERO };
    groups.set(id, { key, totals: add(group.totals, record) });
    totals = add(totals, record);
    pricesAsOf.add(record.pricesAsOf);
    currencies.add(record.currency);
  }
  const rows = [...groups.values()]
    .map(({ key, totals: rowTotals }) => ({ ...key, ...rowTotals }))
    .sort((a, b) => compareBy(a, b, query.groupBy));
  return {
    from: range.fromDay,
    to: range.toDay,
    groupBy: query.groupBy,
    currency: currencies.size === 1 ? ([...currencies][0] ?? dependencies.currency) : currencies.size === 0 ? dependencies.currency : [...currencies].sort().join('+'),
    pricesAsOf: [...pricesAsOf].sort(),
    totals,
    rows,
  };
}

function compareBy(a: UsageReportRow, b: UsageReportRow, dimensions: readonly ReportDimension[]): number {
  for (const dimension of REPORT_DIMENSIONS.filter((name) => dimensions.includes(name))) {
    const left = a[dimension] ?? '';
    const right = b[dimension] ?? '';
    if (left !== right) return left < right ? -1 : 1;
  }
  return 0;
}
