import { z } from 'zod';

import type { Caller } from './callers';
import { callerMatches } from './callers';
import { BudgetExceededError } from './errors';
import type { DocumentStore } from './ports';
import { roundCost } from './pricing';

/**
 * Spending limits per caller or caller pattern, checked before the upstream is called. A request
 * reserves what it may cost on a counter per (subject, period) under the counter's ETag, and settles
 * with what it really cost once the upstream has answered; requests in flight count against the limit
 * through their reservations, so concurrent requests cannot overshoot it by more than the amount by
 * which their estimates fall short of their real cost (nothing, for image limits).
 */

export type BudgetPeriod = 'day' | 'month';
export type BudgetUnit = 'images' | 'cost';

export interface BudgetLimits {
  readonly images?: number | undefined;
  readonly cost?: number | undefined;
}

export interface BudgetRule {
  /** A caller id, or a pattern with `*` (see `callerMatches`). */
  readonly caller: string;
  /** `each`: every matching caller has the limits to itself; `shared`: the matching callers share them. */
  readonly scope: 'each' | 'shared';
  readonly daily?: BudgetLimits | undefined;
  readonly monthly?: BudgetLimits | undefined;
}

const limitsSchema = z.strictObject({
  images: z.number({ error: 'images must be a number' }).int('images must be a whole number').nonnegative('images must not be negative').optional(),
  cost: z.number({ error: 'cost must be a number' }).nonnegative('cost must not be negative').optional(),
});

/** BUDGETS: `[{"caller": "user:*", "daily": {"images": 50}, "monthly": {"cost": 20}, "shared": false}]`. */
export const budgetRulesSchema = z.array(
  z
    .strictObject({
      caller: z.string({ error: 'caller is required: a caller id or a pattern with *' }).trim().min(1, 'caller must not be empty'),
      shared: z.boolean({ error: 'shared must be true or false' }).optional(),
      daily: limitsSchema.optional(),
      monthly: limitsSchema.optional(),
    })
    .refine((rule) => rule.daily !== undefined || rule.monthly !== undefined, 'each budget needs daily or monthly limits')
    .transform((rule): BudgetRule => ({ caller: rule.caller, scope: rule.shared === true ? 'shared' : 'each', daily: rule.daily, monthly: rule.monthly })),
);

/** What one counter holds: spent so far in its period, and the reservations of requests in flight. */
interface Counter {
  readonly images: number;
  readonly cost: number;
  readonly reservations: Readonly<Record<string, Reservation>>;
}

interface Reservation {
  readonly images: number;
  readonly cost: number;
  /** A reservation its request never settled (a crash) stops counting after this instant. */
  readonly until: string;
}

const counterSchema = z.object({
  images: z.number(),
  cost: z.number(),
  reservations: z.record(z.string(), z.object({ images: z.number(), cost: z.number(), until: z.string() })),
});

const EMPTY: Counter = { images: 0, cost: 0, reservations: {} };

/** Whose spend a counter holds: one caller's, or every caller's that a shared budget's pattern matches. */
export type BudgetSubject = { readonly kind: 'caller'; readonly id: string } | { readonly kind: 'shared'; readonly pattern: string };

export interface BudgetDependencies {
  readonly rules: readonly BudgetRule[];
  /**
   * What the subject spent from the start of the period until now, from the usage records: a counter
   * starts from it, so that a budget set during a day or month counts what was spent before it.
   */
  readonly spentSince: (subject: BudgetSubject, from: Date) => Promise<SpendAmount>;
  /** The counters (the usage table's budget partitions in Azure). */
  readonly counters: DocumentStore;
  readonly now: () => Date;
  /** How long an unsettled reservation counts: the longest an upstream call may take, and some. */
  readonly reservationTtlInMs: number;
  readonly currency: string;
}

/** One limit on one counter, as it applies to a request. */
interface AppliedLimit {
  readonly period: BudgetPeriod;
  readonly unit: BudgetUnit;
  readonly limit: number;
  readonly rule: BudgetRule;
}

interface CounterPlan {
  readonly name: string;
  readonly period: BudgetPeriod;
  readonly subject: BudgetSubject;
  readonly limits: readonly AppliedLimit[];
}

/** The counters a request moves, each with the limits that apply to it. */
function plan(caller: Caller, rules: readonly BudgetRule[], at: Date): CounterPlan[] {
  const counters = new Map<string, { period: BudgetPeriod; subject: BudgetSubject; limits: AppliedLimit[] }>();
  for (const rule of rules) {
    if (!callerMatches(rule.caller, caller.id)) continue;
    const subject: BudgetSubject = rule.scope === 'shared' ? { kind: 'shared', pattern: rule.caller } : { kind: 'caller', id: caller.id };
    const subjectKey = subject.kind === 'shared' ? `shared:${subject.pattern}` : `caller:${subject.id}`;
    for (const [period, limits] of [['day', rule.daily], ['month', rule.monthly]] as const) {
      if (!limits) continue;
      const name = `${periodKey(period, at)}/${subjectKey}`;
      const entry = counters.get(name) ?? { period, subject, limits: [] };
      if (limits.images !== undefined) entry.limits.push({ period, unit: 'images', limit: limits.images, rule });
      if (limits.cost !== undefined) entry.limits.push({ period, unit: 'cost', limit: limits.cost, rule });
      counters.set(name, entry);
    }
  }
  // A fixed order, so that two requests never take each other's counters the other way round.
  return [...counters].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, entry]) => ({ name, ...entry }));
}

/** `day-2026-11-20` or `month-2026-11`, in UTC. */
function periodKey(period: BudgetPeriod, at: Date): string {
  const iso = at.toISOString();
  return period === 'day' ? `day-${iso.slice(0, 10)}` : `month-${iso.slice(0, 7)}`;
}

/** When the period that contains `at` starts: its UTC midnight or the first of its month. */
function periodStart(period: BudgetPeriod, at: Date): Date {
  return period === 'day' ? new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate())) : new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

/** When the period that contains `at` ends: the next UTC midnight or the first of the next month. */
export function periodEnd(period: BudgetPeriod, at: Date): Date {
  return period === 'day'
    ? new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1))
    : new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
}

/** What a request was allowed to spend, to be settled with the real amount. */
export interface BudgetReservation {
  /** Names of the counters holding the reservation (none when no budget applies). */
  readonly counters: readonly string[];
  readonly requestId: string;
}

export interface SpendAmount {
  readonly images: number;
  readonly cost: number;
}

/**
 * Reserves `amount` for the request on every counter a budget of the caller has, or throws
 * BudgetExceededError (after giving back what it reserved) when one of them would go over its limit.
 */
export async function reserveBudget(caller: Caller, requestId: string, amount: SpendAmount, dependencies: BudgetDependencies): Promise<BudgetReservation> {
  const now = dependencies.now();
  const counters = plan(caller, dependencies.rules, now);
  const reserved: string[] = [];
  try {
    for (const counter of counters) {
      const start = () => dependencies.spentSince(counter.subject, periodStart(counter.period, now));
      await update(counter.name, dependencies, start, (current) => {
        const others = liveReservations(current, now, requestId);
        for (const applied of counter.limits) {
          const spent = applied.unit === 'images' ? current.images + sum(others, 'images') : roundCost(current.cost + sum(others, 'cost'));
          const requested = applied.unit === 'images' ? amount.images : amount.cost;
          if (spent + requested > applied.limit + (applied.unit === 'cost' ? 1e-9 : 0)) {
            throw exceeded(caller, applied, spent, requested, now, dependencies.currency);
          }
        }
        const until = new Date(now.getTime() + dependencies.reservationTtlInMs).toISOString();
        return { ...current, reservations: { ...Object.fromEntries(others), [requestId]: { images: amount.images, cost: amount.cost, until } } };
      });
      reserved.push(counter.name);
    }
  } catch (error: unknown) {
    await settleCounters(reserved, requestId, undefined, dependencies).catch(() => undefined);
    throw error;
  }
  return { counters: reserved, requestId };
}

/** Replaces the reservation with what the request really spent (nothing when the upstream did not bill it). */
export async function settleBudget(reservation: BudgetReservation, spent: SpendAmount | undefined, dependencies: BudgetDependencies): Promise<void> {
  await settleCounters(reservation.counters, reservation.requestId, spent, dependencies);
}

async function settleCounters(names: readonly string[], requestId: string, spent: SpendAmount | undefined, dependencies: BudgetDependencies): Promise<void> {
  const now = dependencies.now();
  for (const name of names) {
    // The reservation made the counter; one that is gone since is not made again (its seed from the
    // usage records would already hold this very request).
    await update(name, dependencies, undefined, (current) => ({
      images: current.images + (spent?.images ?? 0),
      cost: roundCost(current.cost + (spent?.cost ?? 0)),
      reservations: Object.fromEntries(liveReservations(current, now, requestId)),
    }));
  }
}

const sum = (reservations: readonly (readonly [string, Reservation])[], unit: BudgetUnit) =>
  reservations.reduce((total, [, reservation]) => total + reservation[unit], 0);

/** The reservations still counting, other than the request's own (which is replaced or removed). */
function liveReservations(counter: Counter, now: Date, requestId: string): (readonly [string, Reservation])[] {
  return Object.entries(counter.reservations).filter(([id, reservation]) => id !== requestId && Date.parse(reservation.until) > now.getTime());
}

const MAX_ATTEMPTS = 20;

/**
 * Read, change, write under the ETag; on a conflict (another request moved the counter), again. A
 * counter that does not exist yet starts from what `start` says was spent before it (or is left alone
 * without `start`).
 */
async function update(
  name: string,
  dependencies: BudgetDependencies,
  start: (() => Promise<SpendAmount>) | undefined,
  change: (current: Counter) => Counter,
): Promise<void> {
  const { counters } = dependencies;
  let initial: Counter | undefined;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const found = await counters.read(name);
    if (found === undefined) {
      if (!start) return;
      if (initial === undefined) {
        const spent = await start();
        initial = { images: spent.images, cost: roundCost(spent.cost), reservations: {} };
      }
      let next: Counter;
      try {
        next = change(initial);
      } catch (error: unknown) {
        // Refused already: keep the counter anyway, so that the next request reads it instead of
        // summing the usage records again.
        await counters.create(name, initial);
        throw error;
      }
      if ((await counters.create(name, next)) !== undefined) return;
    } else {
      const parsed = counterSchema.safeParse(found.value);
      const current = parsed.success ? parsed.data : EMPTY;
      if ((await counters.replace(name, change(current), found.etag)) !== undefined) return;
    }
    // Many requests of one caller at once: spread the retries so that they do not collide again.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * (attempt + 1)));
  }
  throw new Error(`The budget counter ${name} kept changing; gave up after ${MAX_ATTEMPTS} attempts.`);
}

function exceeded(caller: Caller, applied: AppliedLimit, spent: number, requested: number, now: Date, currency: string): BudgetExceededError {
  const resetsAt = periodEnd(applied.period, now);
  const what = applied.unit === 'images' ? 'images' : `${currency} of cost`;
  const per = applied.period === 'day' ? 'daily' : 'monthly';
  return new BudgetExceededError(
    `${caller.id} has used ${formatAmount(spent, applied.unit)} of its ${per} budget of ${formatAmount(applied.limit, applied.unit)} ${what}` +
      ` (requests in flight included); this request needs ${formatAmount(requested, applied.unit)} more. The budget resets at ${resetsAt.toISOString()}.`,
    {
      caller: caller.id,
      budget: applied.rule.caller,
      shared: applied.rule.scope === 'shared',
      period: applied.period,
      unit: applied.unit,
      ...(applied.unit === 'cost' ? { currency } : {}),
      limit: applied.limit,
      spent,
      requested,
      resetsAt: resetsAt.toISOString(),
    },
    Math.max(1, Math.ceil((resetsAt.getTime() - now.getTime()) / 1000)),
  );
}

const formatAmount = (value: number, unit: BudgetUnit) => (unit === 'images' ? String(value) : String(roundCost(value)));
