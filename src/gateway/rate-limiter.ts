/**
 * Per-partner rate limits: a token bucket per partner, kept in process so the
 * hot path makes no store round trip. Each gateway instance enforces the
 * limit on its own share of traffic, so the effective limit of a fleet is the
 * per-instance limit times the instances a load balancer spreads a partner on.
 */
import { GatewayError } from "../errors.js";

export interface RateLimit {
  /** Sustained calls per second; 0 disables limiting. */
  readonly perSecond: number;
  /** Calls allowed in a burst above the sustained rate. */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    /** Told of every refusal (metrics). */
    private readonly onLimited: (partnerId: string) => void = () => {},
  ) {}

  /** Takes one token for `partnerId`, or throws `rate_limited` with the seconds until one is free. */
  take(partnerId: string, now = Date.now()): void {
    const { perSecond, burst } = this.limit;
    if (perSecond <= 0) return;
    let bucket = this.buckets.get(partnerId);
    if (bucket === undefined) {
      if (this.buckets.size >= 100_000) this.buckets.clear();
      bucket = { tokens: burst, updatedAt: now };
      this.buckets.set(partnerId, bucket);
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * perSecond);
      bucket.updatedAt = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    this.onLimited(partnerId);
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
    throw GatewayError.of("rate_limited", `rate limit of ${perSecond} calls per second exceeded`, { retryAfterSeconds });
  }
}
