import type { ImageModel } from './image-models';
import type { Clock, UpstreamObservation } from './ports';

/**
 * Chooses which upstream deployment ("backend") gets each request, from what their answers said:
 * `x-ratelimit-remaining-*` and `-reset-*`, `retry-after-ms`/`retry-after`, 429s and failures. Like
 * an API Management backend pool it prefers higher priority, spreads by weight within a priority and
 * opens a circuit for a backend that is throttled or failing (then lets one probe through); like
 * LiteLLM's usage-based routing it never sends a request it already knows would be refused. Plain
 * state and a clock, so it is tested with a fake one.
 */

/** A quota the operator knows: images (gpt-image-1 series) or requests (gpt-image-2) per minute. */
export interface BackendQuota {
  readonly unit: 'images' | 'requests';
  readonly perMinute: number;
}

export interface BackendProfile {
  /** Unique among the backends; names it in logs and errors. */
  readonly name: string;
  readonly model: ImageModel;
  /** Lower goes first (provisioned deployments before standard ones), as in API Management backend pools. */
  readonly priority: number;
  /** Its share of the traffic among the available backends of its priority. */
  readonly weight: number;
  readonly quota?: BackendQuota | undefined;
}

export interface BackendRouterOptions {
  readonly clock: Clock;
  /** Failures in a row (5xx, 408, no answer) that open a backend's circuit. Default 3. */
  readonly failuresToOpen?: number;
  /** How long a circuit opened by failures stays open; doubles while its probes fail, up to `maxOpenInMs`. Default 10 s and 5 min. */
  readonly openInMs?: number;
  readonly maxOpenInMs?: number;
  /** The window of a known quota. Default one minute. */
  readonly quotaWindowInMs?: number;
}

/** Why nothing can be sent now: the earliest backend is throttled (429, quota used up) or failing. */
export type Unavailability = { readonly at: number; readonly reason: 'throttled' | 'failing' };

export type Selection =
  | { readonly kind: 'send'; readonly backend: BackendProfile; readonly ticket: RouteTicket }
  | ({ readonly kind: 'wait' } & Unavailability);

/** One request on its way to a backend: report how it went exactly once. */
export interface RouteTicket {
  /** The request is leaving now (after any bookkeeping of the caller's): its share of the window is dated from here. */
  departs(): void;
  /** Learns from the answer (its status and headers) and frees the request's place. */
  complete(observation: UpstreamObservation): void;
  /** Frees the request's place without learning anything: the caller gave up before an answer came. */
  cancel(): void;
}

// A 429 without retry-after: come back in a second, as Azure's own messages mostly say.
const DEFAULT_THROTTLE_MS = 1_000;
// Used up with no reset announced, or a probe still out: look again this soon.
const LOOK_AGAIN_MS = 1_000;
// Our own requests are remembered this long, to tell when each will leave a window of unknown length.
const SENT_MEMORY_MS = 10 * 60_000;
const SENT_MEMORY_ENTRIES = 2_000;

interface Share {
  at: number;
  /** In the unit of `x-ratelimit-remaining-requests`: images where the operator says the quota counts images, else requests. */
  readonly cost: number;
}

interface Learned {
  /** The answer's `x-ratelimit-remaining-requests`, less what we sent since. */
  remaining: number;
  readonly observedAt: number;
  /** When the window gives shares back, oldest first: estimated from the announced reset and our own requests in it. */
  readonly frees: readonly Share[];
}

class BackendState {
  failuresInARow = 0;
  /** While in the future, the circuit is open: nothing is sent. */
  openUntil = 0;
  openReason: 'throttled' | 'failing' = 'throttled';
  /** The circuit's open time ended; the next request is a probe and the only one until it is answered. */
  halfOpen = false;
  probing = false;
  nextOpenInMs: number;
  learned: Learned | undefined;
  /** Our own requests that were not refused, oldest first, for the last few minutes. */
  readonly sent: Share[] = [];
  /** Smooth weighted round robin: deterministic, and exact in its proportions. */
  currentWeight = 0;

  constructor(
    readonly profile: BackendProfile,
    openInMs: number,
  ) {
    this.nextOpenInMs = openInMs;
  }
}

export class BackendRouter {
  private readonly states: readonly BackendState[];
  private readonly clock: Clock;
  private readonly failuresToOpen: number;
  private readonly openInMs: number;
  private readonly maxOpenInMs: number;
  private readonly quotaWindowInMs: number;

  constructor(backends: readonly BackendProfile[], options: BackendRouterOptions) {
    this.clock = options.clock;
    this.failuresToOpen = options.failuresToOpen ?? 3;
    this.openInMs = options.openInMs ?? 10_000;
    this.maxOpenInMs = options.maxOpenInMs ?? 300_000;
    this.quotaWindowInMs = options.quotaWindowInMs ?? 60_000;
    this.states = backends.map((profile) => new BackendState(profile, this.openInMs));
  }

  /**
   * Picks the backend for a request of `images` images and reserves its place, or says when one will
   * have room. Backends named in `avoid` (they just failed this request) are used only when no
   * other is available.
   */
  select(model: ImageModel, images: number, avoid: ReadonlySet<string> = new Set()): Selection {
    const now = this.clock.now().getTime();
    const candidates = this.candidates(model, images, now);
    const available = candidates.filter((candidate) => candidate.unavailable === undefined).map((candidate) => candidate.state);
    if (available.length === 0) return { kind: 'wait', ...earliest(candidates) };
    const preferred = available.filter((state) => !avoid.has(state.profile.name));
    const pool = preferred.length > 0 ? preferred : available;
    const priority = Math.min(...pool.map((state) => state.profile.priority));
    const chosen = pickByWeight(pool.filter((state) => state.profile.priority === priority));
    return { kind: 'send', backend: chosen.profile, ticket: this.reserve(chosen, images, now) };
  }

  /** Undefined when a request for `images` images of `model` could go now (to a backend not in `except`), else when and why not. */
  unavailability(model: ImageModel, images: number, except: ReadonlySet<string> = new Set()): Unavailability | undefined {
    const now = this.clock.now().getTime();
    const candidates = this.candidates(model, images, now).filter((candidate) => !except.has(candidate.state.profile.name));
    if (candidates.length === 0) return { at: now, reason: 'failing' };
    return candidates.some((candidate) => candidate.unavailable === undefined) ? undefined : earliest(candidates);
  }

  private candidates(model: ImageModel, images: number, now: number): { state: BackendState; unavailable: Unavailability | undefined }[] {
    const states = this.states.filter((state) => state.profile.model === model);
    if (states.length === 0) throw new Error(`No backend serves ${model}; the configuration should have refused this.`);
    return states.map((state) => ({ state, unavailable: this.unavailableUntil(state, images, now) }));
  }

  private unavailableUntil(state: BackendState, images: number, now: number): Unavailability | undefined {
    this.refresh(state, now);
    if (state.openUntil > now) return { at: state.openUntil, reason: state.openReason };
    if (state.probing) return { at: now + LOOK_AGAIN_MS, reason: state.openReason };
    const cost = learnedCost(state.profile, images);
    let at = now;
    const learned = state.learned;
    if (learned) {
      // What the last answer left, plus the shares given back since; when that is not enough, the
      // time enough will be back, or, when no more are known to come, the answers still on their way.
      let left = learned.remaining;
      let enoughAt: number | undefined;
      for (const share of learned.frees) {
        if (left >= cost) break;
        left += share.cost;
        enoughAt = share.at;
      }
      if (left < cost) at = now + LOOK_AGAIN_MS;
      else if (enoughAt !== undefined) at = Math.max(at, enoughAt);
    }
    const quota = state.profile.quota;
    if (quota) {
      // Requests are dated when they depart, which may be out of the order they were chosen in.
      const inWindow = state.sent.filter((entry) => entry.at > now - this.quotaWindowInMs).sort((a, b) => a.at - b.at);
      let used = inWindow.reduce((sum, entry) => sum + entry.cost, 0);
      // The oldest of our own requests leave the window first; wait until enough have.
      for (const entry of inWindow) {
        if (used + cost <= quota.perMinute) break;
        used -= entry.cost;
        at = Math.max(at, entry.at + this.quotaWindowInMs);
      }
    }
    return at > now ? { at, reason: 'throttled' } : undefined;
  }

  /** Moves time forward for one backend: an open circuit turns half-open, a window frees what it announced. */
  private refresh(state: BackendState, now: number): void {
    if (state.openUntil !== 0 && state.openUntil <= now) {
      state.openUntil = 0;
      state.halfOpen = true;
    }
    if (state.learned && now - state.learned.observedAt >= this.quotaWindowInMs) state.learned = undefined;
    while ((state.sent[0]?.at ?? Infinity) <= now - SENT_MEMORY_MS || state.sent.length > SENT_MEMORY_ENTRIES) state.sent.shift();
  }

  private reserve(state: BackendState, images: number, now: number): RouteTicket {
    const probe = state.halfOpen;
    if (probe) state.probing = true;
    const sent = { at: now, cost: learnedCost(state.profile, images) };
    if (state.learned) state.learned.remaining -= sent.cost;
    state.sent.push(sent);
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      if (probe) state.probing = false;
      return true;
    };
    return {
      departs: () => {
        sent.at = this.clock.now().getTime();
      },
      complete: (observation) => {
        if (!settle()) return;
        // A refused request did not count against the quota.
        if (observation.status === 429 && state.sent.includes(sent)) state.sent.splice(state.sent.indexOf(sent), 1);
        this.learn(state, observation);
      },
      cancel: () => {
        settle();
      },
    };
  }

  private learn(state: BackendState, observation: UpstreamObservation): void {
    const now = this.clock.now().getTime();
    const { remainingRequests, resetRequestsInMs, limitRequests } = observation;
    if (remainingRequests !== undefined) {
      state.learned = { remaining: remainingRequests, observedAt: now, frees: this.estimateFrees(state, now, remainingRequests, limitRequests, resetRequestsInMs) };
    }
    const { status } = observation;
    if (status === 429) {
      this.open(state, now + (observation.retryAfterInMs ?? DEFAULT_THROTTLE_MS), 'throttled');
    } else if (status === 0 || status === 408 || status >= 500) {
      state.failuresInARow += 1;
      if (state.halfOpen || state.failuresInARow >= this.failuresToOpen) {
        this.open(state, now + Math.max(state.nextOpenInMs, observation.retryAfterInMs ?? 0), 'failing');
        state.nextOpenInMs = Math.min(state.nextOpenInMs * 2, this.maxOpenInMs);
      }
    } else {
      // Any other answer (a success, or a 4xx that is the request's fault) shows the backend serves.
      state.failuresInARow = 0;
      state.halfOpen = false;
      state.nextOpenInMs = this.openInMs;
    }
  }

  /**
   * When the window will give its shares back. The answer says when the oldest leaves it (the reset)
   * and how much it holds (limit − remaining). Taking those to be our own latest requests, the oldest
   * of them dates the window's length, and each of the others leaves that long after it was sent.
   * Other instances' requests make this an estimate; each answer corrects it.
   */
  private estimateFrees(state: BackendState, now: number, remaining: number, limit: number | undefined, resetInMs: number | undefined): Share[] {
    if (resetInMs === undefined) {
      // Used up and no reset announced: a share comes back every minute/limit on average; then one request may find out.
      return remaining > 0 ? [] : [{ at: now + (limit ? this.quotaWindowInMs / limit : LOOK_AGAIN_MS), cost: 1 }];
    }
    const held = limit === undefined ? 0 : limit - Math.max(remaining, 0);
    let count = 0;
    let units = 0;
    for (let index = state.sent.length - 1; index >= 0 && units < held; index--) {
      units += state.sent[index]?.cost ?? 0;
      count += 1;
    }
    const ours = count === 0 ? [] : state.sent.slice(-count).sort((a, b) => a.at - b.at);
    const oldest = ours[0];
    if (!oldest || oldest.at > now) return [{ at: now + resetInMs, cost: 1 }];
    const windowInMs = now + resetInMs - oldest.at;
    return ours.map((share) => ({ at: share.at + windowInMs, cost: share.cost })).filter((share) => share.at > now);
  }

  private open(state: BackendState, until: number, reason: 'throttled' | 'failing'): void {
    state.openUntil = Math.max(state.openUntil, until);
    state.openReason = reason;
    state.halfOpen = false;
  }
}

function quotaCost(quota: BackendQuota, images: number): number {
  return quota.unit === 'images' ? images : 1;
}

/** `x-ratelimit-remaining-requests` counts in the quota's unit: images where the operator said so, else requests. */
function learnedCost(profile: BackendProfile, images: number): number {
  return profile.quota ? quotaCost(profile.quota, images) : 1;
}

function earliest(candidates: readonly { unavailable: Unavailability | undefined }[]): Unavailability {
  let first: Unavailability | undefined;
  for (const { unavailable } of candidates) {
    if (unavailable && (first === undefined || unavailable.at < first.at)) first = unavailable;
  }
  if (!first) throw new Error('earliest() needs at least one unavailable backend.');
  return first;
}

function pickByWeight(group: readonly BackendState[]): BackendState {
  const total = group.reduce((sum, state) => sum + state.profile.weight, 0);
  let chosen: BackendState | undefined;
  for (const state of group) {
    state.currentWeight += state.profile.weight;
    if (!chosen || state.currentWeight > chosen.currentWeight) chosen = state;
  }
  if (!chosen) throw new Error('pickByWeight() needs at least one backend.');
  chosen.currentWeight -= total;
  return chosen;
}
