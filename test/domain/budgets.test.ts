import type { BudgetDependencies, BudgetRule } from '../../src/domain/budgets';
import { periodEnd, reserveBudget, settleBudget } from '../../src/domain/budgets';
import type { Caller } from '../../src/domain/callers';
import { BudgetExceededError } from '../../src/domain/errors';
import { InMemoryDocumentStore } from '../fakes/in-memory-documents';

const ana: Caller = { id: 'user:ana', source: 'user' };
const ben: Caller = { id: 'user:ben', source: 'user' };

function dependencies(rules: readonly BudgetRule[], start = '2026-11-25T12:00:00Z', spentBefore: Readonly<Record<string, number>> = {}) {
  let now = new Date(start);
  const counters = new InMemoryDocumentStore();
  const asked: string[] = [];
  const budgets: BudgetDependencies = {
    rules,
    counters,
    now: () => now,
    reservationTtlInMs: 60_000,
    currency: 'USD',
    spentSince: (subject, from) => {
      const key = subject.kind === 'caller' ? subject.id : subject.pattern;
      asked.push(`${key} since ${from.toISOString()}`);
      return Promise.resolve({ images: spentBefore[key] ?? 0, cost: 0 });
    },
  };
  return { budgets, counters, asked, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
}

async function refusal(promise: Promise<unknown>): Promise<BudgetExceededError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof BudgetExceededError)) throw new Error('expected BudgetExceeded');
  return error;
}

describe('budgets', () => {
  it('counts reservations in flight, and settles them with what was really spent', async () => {
    const { budgets } = dependencies([{ caller: 'user:*', scope: 'each', daily: { cost: 1 } }]);
    const first = await reserveBudget(ana, 'r1', { images: 1, cost: 0.6 }, budgets);

    // The first request has not settled: its estimate still counts.
    const refused = await refusal(reserveBudget(ana, 'r2', { images: 1, cost: 0.6 }, budgets));
    expect(refused.details).toMatchObject({ caller: 'user:ana', unit: 'cost', limit: 1, spent: 0.6, requested: 0.6, currency: 'USD' });

    // It cost less than estimated: the difference is free again.
    await settleBudget(first, { images: 1, cost: 0.2 }, budgets);
    await reserveBudget(ana, 'r2', { images: 1, cost: 0.6 }, budgets);
  });

  it('gives every matching caller its own counter, unless the budget is shared', async () => {
    const each = dependencies([{ caller: 'user:*', scope: 'each', daily: { images: 1 } }]);
    await reserveBudget(ana, 'r1', { images: 1, cost: 0 }, each.budgets);
    await reserveBudget(ben, 'r2', { images: 1, cost: 0 }, each.budgets);

    const shared = dependencies([{ caller: 'user:*', scope: 'shared', daily: { images: 1 } }]);
    await reserveBudget(ana, 'r1', { images: 1, cost: 0 }, shared.budgets);
    expect((await refusal(reserveBudget(ben, 'r2', { images: 1, cost: 0 }, shared.budgets))).details).toMatchObject({ budget: 'user:*', shared: true, spent: 1 });
  });

  it('gives back what a refused request reserved on its other counters', async () => {
    const { budgets } = dependencies([{ caller: 'user:ana', scope: 'each', daily: { images: 10 }, monthly: { images: 1 } }]);
    await reserveBudget(ana, 'r1', { images: 1, cost: 0 }, budgets);
    await refusal(reserveBudget(ana, 'r2', { images: 1, cost: 0 }, budgets));

    // r2's daily reservation was released: nine more fit the day once the month allows them.
    const error = await refusal(reserveBudget(ana, 'r3', { images: 1, cost: 0 }, budgets));
    expect(error.details).toMatchObject({ period: 'month', spent: 1 });
  });

  it('stops counting a reservation its request never settled, once it lapses', async () => {
    const { budgets, advance } = dependencies([{ caller: 'user:ana', scope: 'each', daily: { images: 1 } }]);
    await reserveBudget(ana, 'crashed', { images: 1, cost: 0 }, budgets);
    await refusal(reserveBudget(ana, 'r2', { images: 1, cost: 0 }, budgets));

    advance(61_000);
    await reserveBudget(ana, 'r2', { images: 1, cost: 0 }, budgets);
  });

  it('releases a request the upstream did not bill, and resets with the period', async () => {
    const { budgets, advance } = dependencies([{ caller: 'user:ana', scope: 'each', daily: { images: 1 } }], '2026-11-25T23:59:00Z');
    const refusedUpstream = await reserveBudget(ana, 'r1', { images: 1, cost: 0 }, budgets);
    await settleBudget(refusedUpstream, undefined, budgets);
    const billed = await reserveBudget(ana, 'r2', { images: 1, cost: 0 }, budgets);
    await settleBudget(billed, { images: 1, cost: 0 }, budgets);

    const error = await refusal(reserveBudget(ana, 'r3', { images: 1, cost: 0 }, budgets));
    expect(error.retryAfterSeconds).toBe(60);
    expect(error.details).toMatchObject({ resetsAt: '2026-11-26T00:00:00.000Z' });
    advance(60_000);
    await reserveBudget(ana, 'r3', { images: 1, cost: 0 }, budgets);
  });

  it('starts a new counter from what the usage records say was spent earlier in its period', async () => {
    const { budgets, asked } = dependencies([{ caller: 'user:ana', scope: 'each', daily: { images: 3 }, monthly: { images: 10 } }], '2026-11-25T12:00:00Z', { 'user:ana': 3 });

    const error = await refusal(reserveBudget(ana, 'r1', { images: 1, cost: 0 }, budgets));

    expect(error.details).toMatchObject({ period: 'day', spent: 3, limit: 3 });
    expect(asked).toEqual(['user:ana since 2026-11-25T00:00:00.000Z']);
    // Once made, a counter is read, not seeded again.
    await refusal(reserveBudget(ana, 'r2', { images: 1, cost: 0 }, budgets));
    expect(asked).toHaveLength(1);
  });

  it('ends months on the first of the next, across a year', () => {
    expect(periodEnd('month', new Date('2026-12-31T10:00:00Z')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });

  it('applies no counter to a caller no budget matches', async () => {
    const { budgets, counters } = dependencies([{ caller: 'user:ana', scope: 'each', daily: { images: 0 } }]);
    expect(await reserveBudget(ben, 'r1', { images: 5, cost: 5 }, budgets)).toEqual({ counters: [], requestId: 'r1' });
    expect(counters.documents.size).toBe(0);
  });
});
