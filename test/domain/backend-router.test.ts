import type { BackendProfile, Selection } from '../../src/domain/backend-router';
import { BackendRouter } from '../../src/domain/backend-router';

/** A clock the test moves by hand. */
function fakeClock(start = Date.parse('2026-11-30T12:00:00Z')) {
  let now = start;
  return { now: () => new Date(now), advance: (ms: number) => (now += ms), at: () => now };
}

const backend = (name: string, overrides: Partial<BackendProfile> = {}): BackendProfile => ({ name, model: 'gpt-image-1.5', priority: 1, weight: 1, ...overrides });

function sent(selection: Selection): Extract<Selection, { kind: 'send' }> {
  if (selection.kind !== 'send') throw new Error(`expected a backend, got a wait until ${selection.at}`);
  return selection;
}

/** Sends `count` requests one after the other, each answered 200 with the given headers; returns the backends used. */
function sendAnswered(router: BackendRouter, count: number, headers: { remainingRequests?: number } = {}): string[] {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const selection = sent(router.select('gpt-image-1.5', 1));
    selection.ticket.complete({ status: 200, ...headers });
    names.push(selection.backend.name);
  }
  return names;
}

describe('BackendRouter', () => {
  it('spreads requests by weight within a priority, in exact proportions', () => {
    const router = new BackendRouter([backend('a', { weight: 3 }), backend('b', { weight: 1 })], { clock: fakeClock() });

    const names = sendAnswered(router, 8);

    expect(names.filter((name) => name === 'a')).toHaveLength(6);
    expect(names.filter((name) => name === 'b')).toHaveLength(2);
  });

  it('prefers the higher priority (the lower number) and falls back when it is throttled', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('standard', { priority: 2 }), backend('provisioned', { priority: 1 })], { clock });

    const first = sent(router.select('gpt-image-1.5', 1));
    first.ticket.complete({ status: 429, retryAfterInMs: 5_000 });
    const second = sent(router.select('gpt-image-1.5', 1));
    second.ticket.complete({ status: 200 });
    clock.advance(5_000);
    const third = sent(router.select('gpt-image-1.5', 1));

    expect([first.backend.name, second.backend.name, third.backend.name]).toEqual(['provisioned', 'standard', 'provisioned']);
  });

  it('answers with the earliest time a backend frees up when every one is throttled, sending nothing', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('a'), backend('b'), backend('other', { model: 'gpt-image-2' })], { clock });

    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 429, retryAfterInMs: 9_000 });
    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 429, retryAfterInMs: 4_000 });

    expect(router.select('gpt-image-1.5', 1)).toEqual({ kind: 'wait', at: clock.at() + 4_000, reason: 'throttled' });
    expect(router.unavailability('gpt-image-1.5', 1)).toEqual({ at: clock.at() + 4_000, reason: 'throttled' });
    expect(router.unavailability('gpt-image-2', 1)).toBeUndefined();
  });

  it('stops at remaining 0 until the announced reset, then lets one request find out how much is free', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('a')], { clock });

    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 200, remainingRequests: 1 });
    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 200, remainingRequests: 0, resetRequestsInMs: 2_500 });
    const blocked = router.select('gpt-image-1.5', 1);
    clock.advance(2_500);
    const afterReset = sent(router.select('gpt-image-1.5', 1));
    const whileItIsOut = router.select('gpt-image-1.5', 1);
    afterReset.ticket.complete({ status: 200, remainingRequests: 2 });

    expect(blocked).toEqual({ kind: 'wait', at: clock.at(), reason: 'throttled' });
    expect(whileItIsOut.kind).toBe('wait');
    expect(sendAnswered(router, 2)).toEqual(['a', 'a']);
    expect(router.select('gpt-image-1.5', 1).kind).toBe('wait');
  });

  it('dates each of its own requests’ return to the window from the announced reset of the oldest', () => {
    const clock = fakeClock();
    const start = clock.at();
    const router = new BackendRouter([backend('a')], { clock });
    // Three requests a second apart fill a window of three; the last answer says the oldest leaves in 3.5 s.
    const tickets = [];
    for (let i = 0; i < 3; i++) {
      tickets.push(sent(router.select('gpt-image-1.5', 1)).ticket);
      clock.advance(1_000);
    }
    clock.advance(-500);
    for (const ticket of tickets) ticket.complete({ status: 200, remainingRequests: 0, limitRequests: 3, resetRequestsInMs: start + 6_000 - clock.at() });

    expect(router.select('gpt-image-1.5', 1)).toEqual({ kind: 'wait', at: start + 6_000, reason: 'throttled' });
    clock.advance(start + 6_000 - clock.at());
    sent(router.select('gpt-image-1.5', 1));
    expect(router.select('gpt-image-1.5', 1)).toEqual({ kind: 'wait', at: start + 7_000, reason: 'throttled' });
    clock.advance(2_000);
    expect(sendAnswered(router, 2)).toEqual(['a', 'a']);
  });

  it('without an announced reset, lets one request find out after a minute divided by the limit', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('a')], { clock });
    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 200, remainingRequests: 0, limitRequests: 6 });

    const blocked = router.select('gpt-image-1.5', 1);
    clock.advance(10_000);

    expect(blocked).toEqual({ kind: 'wait', at: clock.at(), reason: 'throttled' });
    expect(router.select('gpt-image-1.5', 1).kind).toBe('send');
  });

  it('counts what is already on its way against what the last answer said was left', () => {
    const router = new BackendRouter([backend('a')], { clock: fakeClock() });
    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 200, remainingRequests: 2 });

    const inFlight = [router.select('gpt-image-1.5', 1), router.select('gpt-image-1.5', 1), router.select('gpt-image-1.5', 1)];

    expect(inFlight.map((selection) => selection.kind)).toEqual(['send', 'send', 'wait']);
  });

  it('keeps within a known quota by counting its own requests over the minute, and does not count refused ones', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('a', { quota: { unit: 'images', perMinute: 5 } })], { clock });

    const firstAt = clock.at();
    const bigOne = sent(router.select('gpt-image-1.5', 3));
    clock.advance(1_000);
    const refused = sent(router.select('gpt-image-1.5', 2));
    refused.ticket.complete({ status: 429, retryAfterInMs: 1 });
    clock.advance(1);
    const admitted = sent(router.select('gpt-image-1.5', 2));
    bigOne.ticket.complete({ status: 200 });
    admitted.ticket.complete({ status: 200 });

    expect(router.select('gpt-image-1.5', 1)).toEqual({ kind: 'wait', at: firstAt + 60_000, reason: 'throttled' });
    clock.advance(59_000);
    expect(router.select('gpt-image-1.5', 3).kind).toBe('send');
  });

  it('opens the circuit of a backend after three failures in a row, then lets a single probe through', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('a')], { clock, openInMs: 10_000 });

    for (const status of [500, 0, 503]) sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status });
    const open = router.select('gpt-image-1.5', 1);
    clock.advance(10_000);
    const probe = sent(router.select('gpt-image-1.5', 1));
    const besideTheProbe = router.select('gpt-image-1.5', 1);
    probe.ticket.complete({ status: 502 });
    const reopened = router.select('gpt-image-1.5', 1);
    clock.advance(20_000);
    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 200 });

    expect(open).toEqual({ kind: 'wait', at: clock.at() - 20_000, reason: 'failing' });
    expect(besideTheProbe.kind).toBe('wait');
    // A failed probe keeps it open twice as long.
    expect(reopened).toEqual({ kind: 'wait', at: clock.at(), reason: 'failing' });
    expect(sendAnswered(router, 2)).toEqual(['a', 'a']);
  });

  it('forgets failures once the backend answers, and treats a request’s own 4xx as an answer', () => {
    const router = new BackendRouter([backend('a')], { clock: fakeClock() });

    for (const status of [500, 500, 400, 500, 500]) sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status });

    expect(router.select('gpt-image-1.5', 1).kind).toBe('send');
  });

  it('reopens a throttled backend with a probe, and cancels a probe without learning from it', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('a')], { clock });
    sent(router.select('gpt-image-1.5', 1)).ticket.complete({ status: 429 });
    clock.advance(1_000);

    const probe = sent(router.select('gpt-image-1.5', 1));
    const second = router.select('gpt-image-1.5', 1);
    probe.ticket.cancel();
    probe.ticket.complete({ status: 500 });

    expect(second.kind).toBe('wait');
    expect(router.select('gpt-image-1.5', 1).kind).toBe('send');
  });

  it('uses the backends a request avoids only when no other is available', () => {
    const clock = fakeClock();
    const router = new BackendRouter([backend('a', { weight: 100 }), backend('b')], { clock });

    expect(sent(router.select('gpt-image-1.5', 1, new Set(['a']))).backend.name).toBe('b');
    sent(router.select('gpt-image-1.5', 1, new Set(['a']))).ticket.complete({ status: 429, retryAfterInMs: 1_000 });
    expect(sent(router.select('gpt-image-1.5', 1, new Set(['a']))).backend.name).toBe('a');
    expect(router.unavailability('gpt-image-1.5', 1, new Set(['a']))).toEqual({ at: clock.at() + 1_000, reason: 'throttled' });
  });
});
