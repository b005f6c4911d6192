/**
 * Per-deployment quotas as Azure OpenAI enforces them on image deployments: so many images (gpt-image-1
 * series, 5 by default) or requests (gpt-image-2, 10 by default) per minute, over a sliding window,
 * announced in `x-ratelimit-*` headers and refused with 429 once used up. The minute can be shortened
 * (`minuteMs`) so that tests and benchmarks throttle in seconds.
 */
import { z } from 'zod';

const perMinute = z.number().int().min(1).max(1_000_000);

/** `{"imagesPerMinute": 5}` or `{"requestsPerMinute": 10}`. */
export const quotaSpecSchema = z.union([z.strictObject({ imagesPerMinute: perMinute }), z.strictObject({ requestsPerMinute: perMinute })]);
export type QuotaSpec = z.infer<typeof quotaSpecSchema>;

// Reported, not enforced, for deployments without a quota: generous, like an unthrottled resource.
const REPORTED_REQUESTS = 600;
const REPORTED_TOKENS = 6_000_000;

interface Admitted {
  readonly at: number;
  readonly cost: number;
}

/** What one request spends of its deployment's quota: its images (n) under an images quota, else one. */
export function quotaCost(quota: QuotaSpec | undefined, images: number): number {
  return quota !== undefined && 'imagesPerMinute' in quota ? images : 1;
}

export function quotaLimit(quota: QuotaSpec): number {
  return 'imagesPerMinute' in quota ? quota.imagesPerMinute : quota.requestsPerMinute;
}

/** One deployment's sliding window: what it admitted in the last (emulated) minute. */
export class DeploymentUsage {
  private admitted: Admitted[] = [];
  private tokens: Admitted[] = [];

  constructor(
    private quotaSpec: QuotaSpec | undefined,
    private readonly minuteMs: number,
  ) {}

  get quota(): QuotaSpec | undefined {
    return this.quotaSpec;
  }

  set quota(quota: QuotaSpec | undefined) {
    this.quotaSpec = quota;
  }

  /** Admits a request of `images` images at `now`; returns undefined, or the ms after which it would fit. */
  admit(images: number, now: number): number | undefined {
    this.forget(now);
    const cost = quotaCost(this.quotaSpec, images);
    if (this.quotaSpec !== undefined) {
      const limit = quotaLimit(this.quotaSpec);
      let used = this.used();
      if (used + cost > limit) {
        // The wait until enough of the window's oldest entries have left it; a request larger than the
        // whole quota never fits, and is told to come back in a minute like the service says.
        if (cost > limit) return this.minuteMs;
        for (const entry of this.admitted) {
          used -= entry.cost;
          if (used + cost <= limit) return Math.max(1, entry.at + this.minuteMs - now);
        }
        return this.minuteMs;
      }
    }
    this.admitted.push({ at: now, cost });
    return undefined;
  }

  /** Output tokens of an answered request, for the tokens headers. */
  countTokens(tokens: number, now: number): void {
    this.tokens.push({ at: now, cost: tokens });
  }

  used(now?: number): number {
    if (now !== undefined) this.forget(now);
    return this.admitted.reduce((sum, entry) => sum + entry.cost, 0);
  }

  headers(now: number): Record<string, string> {
    this.forget(now);
    const limit = this.quotaSpec === undefined ? REPORTED_REQUESTS : quotaLimit(this.quotaSpec);
    const oldest = this.admitted[0];
    const tokens = this.tokens.reduce((sum, entry) => sum + entry.cost, 0);
    return {
      'x-ratelimit-limit-requests': String(limit),
      'x-ratelimit-remaining-requests': String(Math.max(0, limit - this.used())),
      // Seconds until the oldest admitted request leaves the window and frees its share.
      'x-ratelimit-reset-requests': oldest === undefined ? '0' : String(Math.max(0, (oldest.at + this.minuteMs - now) / 1000)),
      'x-ratelimit-limit-tokens': String(REPORTED_TOKENS),
      'x-ratelimit-remaining-tokens': String(Math.max(0, REPORTED_TOKENS - tokens)),
    };
  }

  private forget(now: number): void {
    const horizon = now - this.minuteMs;
    while ((this.admitted[0]?.at ?? Infinity) <= horizon) this.admitted.shift();
    while ((this.tokens[0]?.at ?? Infinity) <= horizon) this.tokens.shift();
  }
}
